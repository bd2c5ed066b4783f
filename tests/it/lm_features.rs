//! The language model's features of a text (`ClassPrediction::features`), through the real
//! model: the learner reads them beside the sentence embedding, so they must be the same
//! however the text was packed, and carry what the text says.
use crate::common;
use wick::engine::cosine;
use wick::tasks::classify::{Classifier, ClassifierOptions};
use wick::tasks::labeler::Task;
use wick::tasks::prompt::PromptTemplate;

fn features(c: &Classifier, texts: &[&str]) -> Vec<Vec<f32>> {
    c.classify(texts)
        .expect("classify")
        .into_iter()
        .map(|p| p.features.expect("features from the language model"))
        .collect()
}

#[test]
fn features_are_unit_length_independent_of_packing_and_follow_the_text() {
    let model = common::model();
    let template = PromptTemplate::builtin(wick::domain::Prompt::Sentiment).expect("prompt");
    let labels = Task::Sentiment.default_labels().expect("labels");
    let c = Classifier::new(model, &template, labels, ClassifierOptions::default())
        .expect("classifier");
    let texts = [
        "an utterly delightful film, warm and funny",
        "a warm, funny and delightful movie",
        "a dull, tedious mess that I regret watching",
    ];
    let packed = features(&c, &texts);
    let d = model.transformer.config().d_model;
    for (text, f) in texts.iter().zip(&packed) {
        assert_eq!(f.len(), d);
        assert!((cosine(f, f) - 1.0).abs() < 1e-4);
        let alone = &features(&c, &[text])[0];
        assert!(
            cosine(f, alone) > 0.999,
            "packing changed the features of {text:?}"
        );
    }
    assert!(
        cosine(&packed[0], &packed[1]) > cosine(&packed[0], &packed[2]),
        "two ways of praising a film are closer than praise and a pan"
    );
}

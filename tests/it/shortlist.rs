//! Large label sets in two stages, through the real model files: the sentence embedder next to
//! the GGUF (models/all-MiniLM-L6-v2) shortlists labels, the language model scores the
//! shortlist, and the answer is still a distribution over every label.
use crate::common;
use wick::engine::{cosine, LoadOptions, LoadedModel};
use wick::tasks::classify::{ClassPrediction, Classifier, ClassifierOptions};
use wick::tasks::labeler::Task;
use wick::tasks::labels::LabelSet;
use wick::tasks::prompt::PromptTemplate;

fn banking_labels() -> LabelSet {
    LabelSet::from_file(&common::shared_data("intent_banking77_dev.labels.json")).unwrap()
}

fn assert_full_distribution(p: &ClassPrediction, n: usize) {
    assert_eq!(p.scores.len(), n);
    let sum: f64 = p.scores.iter().map(|(_, s)| s).sum();
    assert!((sum - 1.0).abs() < 1e-9, "scores sum to {sum}");
    assert!(p.scores.iter().all(|(_, s)| *s > 0.0));
    let best = p.scores.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!((&best.0, best.1), (&p.label, p.confidence));
}

#[test]
fn the_embedder_next_to_the_model_is_loaded_and_recorded_in_the_model_id() {
    let model = common::model();
    let e = model
        .embedder
        .as_ref()
        .expect("models/all-MiniLM-L6-v2 loads");
    assert!(
        model.id.starts_with("SmolLM2-135M-Instruct.Q4_1.gguf@")
            && model.id.contains("+all-MiniLM-L6-v2@"),
        "{}",
        model.id
    );
    let long = "please help me with my account ".repeat(100);
    let (v, cut) = e
        .embed(&[
            "how do I reset my password",
            "I forgot the password to log in",
            "the film was a delight from start to finish",
            &long,
        ])
        .unwrap();
    for x in &v {
        assert_eq!(x.len(), 384);
        assert!((cosine(x, x) - 1.0).abs() < 1e-4);
    }
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.3);
    assert_eq!(cut, [false, false, false, true]);
}

#[test]
fn large_label_sets_are_shortlisted_and_keep_a_distribution_over_every_label() {
    let model = common::model();
    let template = PromptTemplate::builtin(wick::domain::Prompt::Intent).unwrap();
    let labels = banking_labels();
    let c = Classifier::new(model, &template, labels, ClassifierOptions::default()).unwrap();
    assert!(c.shortlists());
    let preds = c
        .classify(&[
            "what is the exchange rate you use for euros",
            "my card was stolen yesterday",
        ])
        .unwrap();
    let got: Vec<&str> = preds.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(got, ["exchange_rate", "lost_or_stolen_card"]);

    // The first 40 Banking77 dev rows: 0.525 measured (all labels scored by the language
    // model alone: 0.425; issue 2's target over 300 rows is 0.45).
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(common::shared_data("intent_banking77_dev.jsonl"))
            .unwrap()
            .lines()
            .take(40)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let preds = c.classify(&texts).unwrap();
    let mut right = 0;
    for (p, r) in preds.iter().zip(&rows) {
        assert_full_distribution(p, 77);
        assert!(!p.truncated);
        right += usize::from(p.label == r["label"].as_str().unwrap());
    }
    assert!(right >= 18, "{right} of 40 right");

    // Two labels are never shortlisted: sentiment is scored by the language model alone.
    let sentiment = Classifier::new(
        model,
        &PromptTemplate::builtin(wick::domain::Prompt::Sentiment).unwrap(),
        Task::Sentiment.default_labels().unwrap(),
        ClassifierOptions::default(),
    )
    .unwrap();
    assert!(!sentiment.shortlists());
}

#[test]
fn without_an_embedder_large_sets_are_scored_by_the_language_model_alone() {
    wick::engine::configure_threads(Some(2));
    let dir = tempfile::tempdir().unwrap();
    let gguf = dir.path().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::os::unix::fs::symlink(common::model_path(), &gguf).unwrap();

    let missing = dir.path().join("no-embedder-here");
    let err = LoadedModel::load(
        &gguf,
        &LoadOptions {
            embedder: Some(missing),
            ..Default::default()
        },
    )
    .err()
    .expect("a named embedder folder that does not exist is an error");
    assert!(err.to_string().contains("no-embedder-here"), "{err}");

    let model = LoadedModel::load(&gguf, &LoadOptions::default()).unwrap();
    assert!(model.embedder.is_none());
    assert!(!model.id.contains('+'), "{}", model.id);
    let template = PromptTemplate::builtin(wick::domain::Prompt::Intent).unwrap();
    let c = Classifier::new(
        &model,
        &template,
        banking_labels(),
        ClassifierOptions::default(),
    )
    .unwrap();
    assert!(!c.shortlists());
    let p = &c.classify(&["my card was stolen yesterday"]).unwrap()[0];
    assert_full_distribution(p, 77);
}

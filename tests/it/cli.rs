//! The `wick` binary as a user runs it: real model file, real input files.
use crate::common;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn wick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .env("WICK_THREADS", "2")
        .env("WICK_MODEL", common::model_path())
        .output()
        .expect("run wick")
}

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.display().to_string()
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn sentiment_labels_are_right_and_rows_keep_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        concat!(
            "{\"id\":\"a\",\"text\":\"i loved this movie , it is wonderful and moving .\",\"meta\":{\"k\":1}}\n",
            "{\"id\":\"b\",\"text\":\"awful , boring , the worst film ever made .\"}\n",
            "{\"text\":\"a masterpiece .\"}\n",
            "{\"text\":\"a complete waste of time .\"}\n",
        ),
    );
    let out = wick(&["label", "--task", "sentiment", &input]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    let labels: Vec<&str> = rows
        .iter()
        .map(|r| r["prediction"]["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["positive", "negative", "positive", "negative"]);
    assert_eq!(rows[0]["id"], "a");
    assert_eq!(rows[0]["meta"]["k"], 1);
    for r in &rows {
        let scores = r["prediction"]["scores"].as_object().unwrap();
        let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        let conf = r["prediction"]["confidence"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&conf));
        assert!(r["model"]
            .as_str()
            .unwrap()
            .starts_with("SmolLM2-135M-Instruct.Q4_1.gguf@b179c9523d0e"));
        assert_eq!(r["prompt_version"].as_str().unwrap().len(), 12);
        assert!(r["prediction"].get("truncated").is_none());
    }
}

#[test]
fn bad_lines_are_reported_by_number_and_the_rest_is_labeled() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"text\":\"great fun .\"}\nnot json at all\n{\"id\":3}\n{\"text\":42}\n{\"text\":\"\"}\n",
    );
    let output = dir.path().join("out.jsonl");
    let out = wick(&[
        "label",
        "--task",
        "sentiment",
        &input,
        "-o",
        output.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2: not valid JSON"), "{err}");
    assert!(err.contains("line 3: missing field \"text\""), "{err}");
    assert!(err.contains("line 4: field \"text\" is a number"), "{err}");
    let rows = json_lines(&std::fs::read(&output).unwrap());
    assert_eq!(
        rows.len(),
        2,
        "the good line and the empty text are labeled"
    );
    assert_eq!(rows[1]["text"], "");
    assert!(rows[1]["prediction"]["label"].is_string());
}

#[test]
fn text_longer_than_the_context_is_cut_and_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let long = "the film is good . ".repeat(1200);
    let input = write(
        dir.path(),
        "in.jsonl",
        &format!("{{\"text\":\"{long}\"}}\n{{\"text\":\"short and sweet .\"}}\n"),
    );
    let out = wick(&[
        "label", "--task", "classify", "--labels", "good,bad", &input,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    assert_eq!(rows[0]["prediction"]["truncated"], true);
    assert!(rows[1]["prediction"].get("truncated").is_none());
}

#[test]
fn intent_with_many_multi_token_labels_gives_a_full_distribution() {
    let labels = common::shared_data("intent_clinc150_dev.labels.json");
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"text\":\"what is the weather like in boston today\"}\n",
    );
    let out = wick(&[
        "label",
        "--task",
        "intent",
        "--labels-file",
        labels.to_str().unwrap(),
        &input,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = &json_lines(&out.stdout)[0];
    let scores = row["prediction"]["scores"].as_object().unwrap();
    assert_eq!(scores.len(), 151);
    let sum: f64 = scores.values().map(|v| v.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-6);
    assert_eq!(row["prediction"]["label"], "weather");
    // The labels were shortlisted by the sentence embedder next to the model, which the
    // recorded model id names.
    assert!(
        row["model"]
            .as_str()
            .unwrap()
            .contains("+all-MiniLM-L6-v2@"),
        "{row}"
    );
}

#[test]
fn ner_spans_point_into_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.jsonl",
        "{\"text\":\"Barack Obama visited Paris with Angela Merkel .\"}\n{\"text\":\"Zoë Ball met José Mourinho in München .\"}\n{\"text\":\"😊 Yuki flew from 東京 to Osaka with Rene\u{301} Dupont 🎉\"}\n",
    );
    let out = wick(&[
        "label",
        "--task",
        "ner",
        "--labels",
        "person,location,organization",
        &input,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = json_lines(&out.stdout);
    let mut found = Vec::new();
    for row in &rows {
        let chars: Vec<char> = row["text"].as_str().unwrap().chars().collect();
        for e in row["prediction"]["entities"].as_array().unwrap() {
            let (s, t) = (
                e["start"].as_u64().unwrap() as usize,
                e["end"].as_u64().unwrap() as usize,
            );
            let span: String = chars[s..t].iter().collect();
            assert_eq!(
                span,
                e["text"].as_str().unwrap(),
                "offsets are Unicode scalar values"
            );
            assert!(["person", "location", "organization"].contains(&e["label"].as_str().unwrap()));
            let c = e["confidence"].as_f64().unwrap();
            assert!(c > 0.0 && c <= 1.0);
            found.push((span, e["label"].as_str().unwrap().to_string()));
        }
    }
    assert!(
        found.contains(&("Barack Obama".into(), "person".into())),
        "{found:?}"
    );
    // After "ë" and "é" byte and scalar offsets differ; the span check above covers it.
    assert!(found.iter().any(|(s, _)| s == "München"), "{found:?}");
    // A combining mark stays with its letter.
    assert!(!found.iter().any(|(s, _)| s.ends_with("Rene")), "{found:?}");
    assert!(
        found
            .iter()
            .any(|(s, _)| s.contains("東京") || s.contains("Osaka")),
        "{found:?}"
    );
}

#[test]
fn eval_prints_the_figures_as_json() {
    let data = common::shared_data("sentiment_sst2_dev.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let head: String = std::fs::read_to_string(data)
        .unwrap()
        .lines()
        .take(12)
        .map(|l| format!("{l}\n"))
        .collect();
    let input = write(dir.path(), "in.jsonl", &head);
    let out = wick(&["eval", "--task", "sentiment", &input, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["task"], "sentiment");
    assert_eq!(report["n"], 12);
    for key in ["accuracy", "macro_f1", "ece", "items_per_s"] {
        let v = report[key].as_f64().unwrap();
        assert!(v >= 0.0, "{key}");
    }
    assert!(report["accuracy"].as_f64().unwrap() >= 0.5);
    assert!(report.get("f1").is_none());
}

#[test]
fn model_problems_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.jsonl", "{\"text\":\"hi\"}\n");
    let run = |model: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(["label", "--task", "sentiment", "--model", model, &input])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "model {model}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("nope.gguf");
    let err = run(missing.to_str().unwrap());
    assert!(
        err.contains("nope.gguf") && err.contains("not found"),
        "{err}"
    );

    // The first megabyte of the real model: a valid header whose tensors run past the end.
    let bytes = std::fs::read(common::model_path()).unwrap();
    let truncated = dir.path().join("truncated.gguf");
    std::fs::write(&truncated, &bytes[..1 << 20]).unwrap();
    let err = run(truncated.to_str().unwrap());
    assert!(
        err.contains("not a valid GGUF file") && err.contains("truncated"),
        "{err}"
    );

    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    assert!(run(garbage.to_str().unwrap()).contains("not a valid GGUF file"));

    // A well-formed GGUF of an architecture the engine does not run.
    let other = dir.path().join("bert.gguf");
    let mut f = std::fs::File::create(&other).unwrap();
    let arch = candle_core::quantized::gguf_file::Value::String("bert".into());
    candle_core::quantized::gguf_file::write(&mut f, &[("general.architecture", &arch)], &[])
        .unwrap();
    drop(f);
    assert!(run(other.to_str().unwrap()).contains("unsupported model architecture 'bert'"));

    assert!(run("hf:justowner").contains("OWNER/REPO/FILE"));
}

#[test]
fn a_model_from_the_hugging_face_cache_labels_like_the_local_file() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir
        .path()
        .join("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(
        dir.path()
            .join("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/refs"),
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("hub/models--HuggingFaceTB--SmolLM2-135M-Instruct-GGUF/refs/main"),
        "0123abcd",
    )
    .unwrap();
    std::os::unix::fs::symlink(
        common::model_path(),
        snapshot.join("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    .unwrap();
    let input = write(dir.path(), "in.jsonl", "{\"text\":\"a masterpiece .\"}\n");
    let out = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "label",
            "--task",
            "sentiment",
            "--model",
            "hf:HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct.Q4_1.gguf",
            &input,
        ])
        .env("HF_HOME", dir.path())
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = &json_lines(&out.stdout)[0];
    assert_eq!(row["prediction"]["label"], "positive");
    // No embedder sits next to the cached file: one warning, and the model id names none.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.matches("no sentence embedder").count(),
        1,
        "{stderr}"
    );
    assert!(row["model"].as_str().unwrap().ends_with("@b179c9523d0e"));
}

#[test]
fn eval_trains_the_learner_on_a_curve_and_across_folds() {
    let data = common::shared_data("sentiment_sst2_dev.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(data)
        .unwrap()
        .lines()
        .take(36)
        .map(|l| format!("{l}\n"))
        .collect();
    let train = write(dir.path(), "train.jsonl", &lines[..24].concat());
    let test = write(dir.path(), "test.jsonl", &lines[24..].concat());
    let all = write(dir.path(), "all.jsonl", &lines.concat());
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        )
    };

    let zero_shot = wick(&["eval", "--task", "sentiment", &all, "--json"]);
    ok(&zero_shot);
    let zero_shot: Value = serde_json::from_slice(&zero_shot.stdout).unwrap();

    let out = wick(&[
        "eval",
        "--task",
        "sentiment",
        "--train",
        &train,
        "--curve",
        "0,12,24",
        "--json",
        &test,
    ]);
    ok(&out);
    let rows = json_lines(&out.stdout);
    let sizes: Vec<u64> = rows.iter().filter_map(|r| r["train_n"].as_u64()).collect();
    assert_eq!(sizes, [0, 12, 24]);
    for r in &rows {
        assert_eq!(r["n"], 12);
        assert_eq!(r["lm"], rows[0]["lm"], "the language model is read once");
        let mix = r["mix"]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&mix), "{r}");
    }
    let trained = &rows[2];
    assert!(trained["learner"].is_object(), "{trained}");
    let w = trained["weight"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&w), "{trained}");

    let out = wick(&[
        "eval",
        "--task",
        "sentiment",
        "--folds",
        "3",
        "--json",
        &all,
    ]);
    ok(&out);
    let folds: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (folds["folds"].as_u64(), folds["n"].as_u64()),
        (Some(3), Some(36))
    );
    assert_eq!(folds["train_n"], 24);
    assert_eq!(folds["weights"].as_array().map(Vec::len), Some(3));
    // Every row is predicted once, so the language model's pooled figure is the zero-shot one.
    let close = |a: &Value, b: &Value| (a.as_f64().unwrap() - b.as_f64().unwrap()).abs() < 1e-9;
    assert!(
        close(&folds["lm"]["accuracy"], &zero_shot["accuracy"]),
        "{folds}"
    );
    assert!(close(&folds["lm"]["ece"], &zero_shot["ece"]), "{folds}");
    for key in ["learner", "mix"] {
        let acc = folds[key]["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{folds}");
    }

    // Too many folds for the rows is a clear error, not a panic.
    let out = wick(&["eval", "--task", "sentiment", "--folds", "99", &test]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--folds needs 2 to 12 folds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

//! The engine against llama.cpp on the same GGUF: token ids and first-step logits.
use crate::common;
use serde_json::Value;
use wick::engine::{log_softmax_rows, KvCache, WeightCopy};

#[test]
fn tokenizer_matches_llama_cpp_on_every_reference_line() {
    let model = common::model();
    let text =
        std::fs::read_to_string(common::shared_data("reference_tokens_smollm2.jsonl")).unwrap();
    let mut checked = 0;
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let row: Value = serde_json::from_str(line).unwrap();
        let input = row["text"].as_str().unwrap();
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let got = model.tokenizer.encode_prompt(input).unwrap();
        assert_eq!(got, want, "line {}: {input:?}", n + 1);
        assert_eq!(
            model.tokenizer.decode(&got),
            input,
            "line {} does not round-trip",
            n + 1
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} reference lines");
}

#[test]
fn chat_template_and_logits_match_llama_cpp() {
    let model = common::model();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(common::shared_data("reference_generation_smollm2.json")).unwrap(),
    )
    .unwrap();
    let run = &reference["runs"]["stop_on_eos"];
    let prompt_ids: Vec<u32> = run["prompt_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    let prompt = reference["prompt"].as_str().unwrap();
    assert_eq!(model.tokenizer.encode_prompt(prompt).unwrap(), prompt_ids);

    // Both weight copies: f32 for scoring, 8-bit for generation.
    for job in [WeightCopy::Scoring, WeightCopy::Generation] {
        let last = prompt_ids.len() - 1;
        let (logits, _) = model
            .transformer
            .forward_chain(job, &KvCache::empty(), &prompt_ids, &[last])
            .unwrap();
        let logits = match job {
            WeightCopy::Scoring => logits,
            // Generation feeds one token at a time, which on the CPU takes the token-step path
            // (engine/decode.rs): it must agree with the whole-prompt forward on the same
            // weights, and both with llama.cpp below.
            WeightCopy::Generation => {
                let stepped = step_by_step(&model.transformer, &prompt_ids);
                let (a, b) = (
                    logits.to_vec2::<f32>().unwrap().remove(0),
                    stepped.to_vec2::<f32>().unwrap().remove(0),
                );
                // Both quantize activations to 8 bits, at different points, so single logits
                // move by up to ~1 over the 49k vocabulary; on average they stay well inside
                // the steps' distance to the f32 copy. How far depends on the CPU (the
                // whole-prompt path's f32 kernels pick their SIMD width at run time): 0.15 vs
                // 0.42 where this was first measured, 0.28 vs 0.42 on an AMD EPYC without
                // AVX-512 (2026-12-08), where llama.cpp agrees with both below.
                let mean =
                    a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
                let f32_copy = model
                    .transformer
                    .forward_chain(WeightCopy::Scoring, &KvCache::empty(), &prompt_ids, &[last])
                    .unwrap()
                    .0
                    .to_vec2::<f32>()
                    .unwrap()
                    .remove(0);
                let to_f32 = b
                    .iter()
                    .zip(&f32_copy)
                    .map(|(x, y)| (x - y).abs())
                    .sum::<f32>()
                    / b.len() as f32;
                assert!(
                    mean < 0.35 && mean < 0.75 * to_f32,
                    "token steps differ from the whole prompt by {mean} on average \
                     (and from the f32 copy by {to_f32})"
                );
                stepped
            }
        };
        let lp = log_softmax_rows(&logits).unwrap().remove(0);
        let logits = logits.to_vec2::<f32>().unwrap().remove(0);
        // Logits relative to the top token are what decide sampling and scoring; llama.cpp
        // quantizes activations to 8 bits, so the levels drift by a few tenths.
        let top = logits[504];
        // The generation copy is re-quantized to 8 bits, which adds a little more drift.
        let tolerance = if job == WeightCopy::Scoring {
            0.3
        } else {
            0.45
        };
        for pair in run["top5_logits_first3"][0].as_array().unwrap() {
            let id = pair[0].as_u64().unwrap() as usize;
            let want = pair[1].as_f64().unwrap() as f32;
            let want_top = run["top5_logits_first3"][0][0][1].as_f64().unwrap() as f32;
            assert!(
                (logits[id] - want).abs() < 1.0,
                "{job:?}: logit of {id} is {} where llama.cpp has {want}",
                logits[id]
            );
            assert!(
                ((logits[id] - top) - (want - want_top)).abs() < tolerance,
                "{job:?}: logit of {id} relative to the top is {} where llama.cpp has {}",
                logits[id] - top,
                want - want_top
            );
        }
        let argmax = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(argmax, 504, "{job:?}: first token should be 'The'");
        // "The" is a clear first choice (llama.cpp: 1.5 logits ahead of the next).
        assert!(lp[504] > -1.0 && lp[504] < 0.0);
        let total: f32 = lp.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-3, "log-softmax sums to {total}");
    }
}

/// The logits after the last of `ids`, feeding them one forward per token.
fn step_by_step(t: &wick::engine::Transformer, ids: &[u32]) -> candle_core::Tensor {
    let mut cache = KvCache::empty();
    let mut logits = None;
    for &id in ids {
        let (l, kv) = t
            .forward_chain(WeightCopy::Generation, &cache, &[id], &[0])
            .unwrap();
        cache = cache.extend(&kv).unwrap();
        logits = Some(l);
    }
    logits.unwrap()
}

#[test]
fn greedy_generation_answers_like_llama_cpp() {
    let model = common::model();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(common::shared_data("reference_generation_smollm2.json")).unwrap(),
    )
    .unwrap();
    let run = &reference["runs"]["stop_on_eos"];
    let prompt = model
        .chat
        .render(&[wick::engine::Message::new(
            "user",
            "What is the capital of France?",
        )])
        .unwrap();
    // The GGUF's template adds SmolLM's default system turn; llama.cpp's reference has none.
    assert!(
        prompt.ends_with(reference["prompt"].as_str().unwrap()),
        "{prompt:?}"
    );
    let ids = model
        .tokenizer
        .encode_prompt(reference["prompt"].as_str().unwrap())
        .unwrap();
    let out = wick::engine::generate(
        model,
        &ids,
        &wick::engine::SamplingParams {
            max_tokens: 32,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(out.stopped);
    assert_eq!(out.text, run["text"].as_str().unwrap());
}

#[test]
fn packed_items_and_label_branches_see_only_their_own_tokens() {
    let model = common::model();
    let t = &model.transformer;
    let encode = |s: &str| model.tokenizer.encode_text(s).unwrap();
    let prefix = t.prefill(&encode("Classify the review.")).unwrap();
    let (a, b) = (
        encode(" A fine, warm film."),
        encode(" Dull and far too long"),
    );
    let label = encode(" positive");
    // One forward: item a, then item b, then a label token branching off a's last token.
    let mut tokens = a.clone();
    tokens.extend(&b);
    tokens.push(label[0]);
    let mut parents: Vec<Option<usize>> = (0..a.len()).map(|i| i.checked_sub(1)).collect();
    parents.extend((0..b.len()).map(|i| i.checked_sub(1).map(|j| a.len() + j)));
    parents.push(Some(a.len() - 1));
    let want = [a.len() - 1, a.len() + b.len() - 1, tokens.len() - 1];
    let packed = t
        .forward_tree(WeightCopy::Scoring, &prefix, &tokens, &parents, &want)
        .unwrap();
    let packed = packed.to_vec2::<f32>().unwrap();

    let alone = |ids: &[u32]| {
        let (l, _) = t
            .forward_chain(WeightCopy::Scoring, &prefix, ids, &[ids.len() - 1])
            .unwrap();
        l.to_vec2::<f32>().unwrap().remove(0)
    };
    let mut a_label = a.clone();
    a_label.push(label[0]);
    for (row, want) in packed.iter().zip([alone(&a), alone(&b), alone(&a_label)]) {
        let worst = row
            .iter()
            .zip(&want)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            worst < 1e-3,
            "a packed row differs from its item alone by {worst}"
        );
    }
}

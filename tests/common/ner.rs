//! Entity sentences shared by the span-learning tests: invented people and places in a few
//! repeated frames, with their gold spans, and span F1 to score what was shown.
use serde_json::Value;

pub type Spans = Vec<(usize, usize, String)>;

/// Sentences of invented people and places in a few frames, and a few with no entity: the
/// frames repeat, so a handful of answers teach the tagger where names sit.
pub fn sentences(n: usize) -> Vec<(String, String, Spans)> {
    let people = [
        "Marta Kowalczyk",
        "Tobias Lindqvist",
        "Amara Okafor",
        "Kenji Watanabe",
        "Lucia Ferreira",
        "Dmitri Volkov",
        "Ines Moreau",
    ];
    let places = ["Gdansk", "Tromso", "Lagos", "Sendai", "Porto", "Kazan"];
    let frames = [
        ("", " flew to ", " on Monday."),
        ("We met ", " at the station in ", "."),
        ("", " said the weather in ", " was cold."),
        ("After lunch ", " drove back to ", "."),
    ];
    let empty = [
        "the meeting was moved to next week.",
        "nobody knew where the keys were.",
        "it rained all afternoon, so we stayed in.",
    ];
    (0..n)
        .map(|i| {
            let id = format!("s{i}");
            if i % 5 == 4 {
                return (id, format!("{} ({i})", empty[i / 5 % 3]), Vec::new());
            }
            let (a, b, c) = frames[i % 4];
            let (p, l) = (people[i % 7], places[i % 6]);
            let text = format!("{a}{p}{b}{l}{c}");
            let chars = |s: &str| s.chars().count();
            let ps = chars(a);
            let ls = ps + chars(p) + chars(b);
            let spans = vec![
                (ps, ps + chars(p), "person".to_string()),
                (ls, ls + chars(l), "location".to_string()),
            ];
            (id, text, spans)
        })
        .collect()
}

pub fn spans_of(v: &Value) -> Spans {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some((
                        s["start"].as_u64()? as usize,
                        s["end"].as_u64()? as usize,
                        s["label"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Micro span F1 of `said` against `gold`, over many sentences.
pub fn f1(pairs: &[(Spans, Spans)]) -> f64 {
    let (mut gold, mut said, mut hit) = (0, 0, 0);
    for (g, s) in pairs {
        gold += g.len();
        said += s.len();
        hit += s.iter().filter(|x| g.contains(x)).count();
    }
    if gold + said == 0 {
        return 1.0;
    }
    2.0 * hit as f64 / (gold + said) as f64
}

//! Label sets and the token trie that scores them. Labels sharing a token prefix share trie
//! nodes, so a label set of 150 costs one forward of its distinct prefixes, not 150.
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("label set is empty")]
    Empty,
    #[error("label {0:?} appears twice")]
    Duplicate(String),
    #[error("labels {0:?} and {1:?} tokenize the same, so they cannot be told apart")]
    SameTokens(String, String),
    #[error("label {0:?} has no tokens")]
    NoTokens(String),
    #[error("labels file {path}: {message}")]
    File { path: String, message: String },
}

/// Names are what predictions report; phrases are what the model scores (a name such as
/// `card_arrival` reads better to a language model as `card arrival`).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    pub names: Vec<String>,
    pub phrases: Vec<String>,
}

impl LabelSet {
    pub fn from_names(names: Vec<String>) -> Result<Self, LabelError> {
        let phrases = names.iter().map(|n| phrase_of(n)).collect();
        Self::new(names, phrases)
    }

    pub fn new(names: Vec<String>, phrases: Vec<String>) -> Result<Self, LabelError> {
        if names.is_empty() {
            return Err(LabelError::Empty);
        }
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            if !seen.insert(n) {
                return Err(LabelError::Duplicate(n.clone()));
            }
        }
        Ok(Self { names, phrases })
    }

    /// `a,b,c` from the command line.
    pub fn parse_list(list: &str) -> Result<Self, LabelError> {
        Self::from_names(
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        )
    }

    /// A JSON list of names, or an object mapping each name to the phrase to score.
    pub fn from_file(path: &Path) -> Result<Self, LabelError> {
        let err = |message: String| LabelError::File {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        match value {
            serde_json::Value::Array(items) => {
                let names = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(err(format!("item {i} is {other}, not a string"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Self::from_names(names)
            }
            serde_json::Value::Object(map) => {
                let mut names = Vec::new();
                let mut phrases = Vec::new();
                for (k, v) in map {
                    let phrase = v
                        .as_str()
                        .ok_or_else(|| err(format!("the phrase for {k:?} is not a string")))?;
                    names.push(k);
                    phrases.push(phrase.to_string());
                }
                Self::new(names, phrases)
            }
            _ => Err(err("expected a JSON list of labels or an object".into())),
        }
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

/// `card_arrival` → `card arrival`.
fn phrase_of(name: &str) -> String {
    name.replace('_', " ").trim().to_string()
}

#[derive(Debug, Clone)]
pub struct TrieNode {
    pub token: u32,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub label: Option<usize>,
}

/// Token sequences of all labels merged on common prefixes. Node order is topological
/// (a parent comes before its children).
#[derive(Debug, Clone)]
pub struct LabelTrie {
    pub nodes: Vec<TrieNode>,
    /// Nodes that follow the prompt directly.
    pub roots: Vec<usize>,
    /// The last node of each label.
    pub ends: Vec<usize>,
}

impl LabelTrie {
    pub fn build(labels: &LabelSet, sequences: &[Vec<u32>]) -> Result<Self, LabelError> {
        let mut trie = LabelTrie {
            nodes: Vec::new(),
            roots: Vec::new(),
            ends: Vec::with_capacity(sequences.len()),
        };
        for (label, seq) in sequences.iter().enumerate() {
            if seq.is_empty() {
                return Err(LabelError::NoTokens(labels.names[label].clone()));
            }
            let mut parent: Option<usize> = None;
            for &token in seq {
                let siblings = match parent {
                    Some(p) => &trie.nodes[p].children,
                    None => &trie.roots,
                };
                let found = siblings
                    .iter()
                    .copied()
                    .find(|&c| trie.nodes[c].token == token);
                let node = match found {
                    Some(n) => n,
                    None => {
                        let n = trie.nodes.len();
                        trie.nodes.push(TrieNode {
                            token,
                            parent,
                            children: Vec::new(),
                            label: None,
                        });
                        match parent {
                            Some(p) => trie.nodes[p].children.push(n),
                            None => trie.roots.push(n),
                        }
                        n
                    }
                };
                parent = Some(node);
            }
            let end = parent.expect("sequence is not empty");
            if let Some(other) = trie.nodes[end].label {
                return Err(LabelError::SameTokens(
                    labels.names[other].clone(),
                    labels.names[label].clone(),
                ));
            }
            trie.nodes[end].label = Some(label);
            trie.ends.push(end);
        }
        Ok(trie)
    }

    /// The trie of the labels in `which` of `labels` (its label `i` is `which[i]`), each
    /// scored as `sequences[which[i]]`.
    pub fn for_subset(
        labels: &LabelSet,
        sequences: &[Vec<u32>],
        which: &[usize],
    ) -> Result<LabelTrie, LabelError> {
        let names = which.iter().map(|&i| labels.names[i].clone()).collect();
        let phrases = which.iter().map(|&i| labels.phrases[i].clone()).collect();
        let sequences: Vec<Vec<u32>> = which.iter().map(|&i| sequences[i].clone()).collect();
        LabelTrie::build(&LabelSet::new(names, phrases)?, &sequences)
    }

    /// Nodes whose output distribution is needed: those with children. Leaves are scored
    /// from their parent's distribution and never fed to the model.
    pub fn inner_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| !self.nodes[n].children.is_empty())
            .collect()
    }

    /// Log-probability of every label given the log-softmax rows at the prompt's end (`root`)
    /// and at each inner node (`at[node]`). A label that is also the start of a longer label
    /// ("gas" / "gas type") is charged the probability of stopping there: one minus the mass
    /// on its continuations, else it could never beat the longer one.
    pub fn score(
        &self,
        root: &[f32],
        at: &dyn Fn(usize) -> Option<usize>,
        rows: &[Vec<f32>],
    ) -> Vec<f64> {
        let dist = |parent: Option<usize>| -> &[f32] {
            match parent.and_then(at) {
                Some(row) => &rows[row],
                None => root,
            }
        };
        let mut node_lp = vec![0f64; self.nodes.len()];
        for (n, node) in self.nodes.iter().enumerate() {
            let base = node.parent.map_or(0.0, |p| node_lp[p]);
            node_lp[n] = base + dist(node.parent)[node.token as usize] as f64;
        }
        self.ends
            .iter()
            .map(|&end| {
                let node = &self.nodes[end];
                let mut lp = node_lp[end];
                if !node.children.is_empty() {
                    let row = dist(Some(end));
                    let cont: f64 = node
                        .children
                        .iter()
                        .map(|&c| (row[self.nodes[c].token as usize] as f64).exp())
                        .sum();
                    lp += (1.0 - cont).max(1e-6).ln();
                }
                lp
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> LabelSet {
        LabelSet::from_names(names.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn shared_prefixes_share_nodes() {
        let labels = set(&["a", "b", "c"]);
        let trie = LabelTrie::build(&labels, &[vec![1, 2], vec![1, 3], vec![4]]).unwrap();
        assert_eq!(trie.nodes.len(), 4);
        assert_eq!(trie.roots.len(), 2);
        assert_eq!(trie.inner_nodes(), vec![0]);
    }

    #[test]
    fn identical_token_sequences_are_refused() {
        let labels = set(&["x", "y"]);
        let err = LabelTrie::build(&labels, &[vec![7], vec![7]]).unwrap_err();
        assert!(matches!(err, LabelError::SameTokens(a, b) if a == "x" && b == "y"));
    }

    #[test]
    fn scores_multiply_along_paths_and_charge_stopping() {
        let labels = set(&["gas", "gas type", "fee"]);
        let trie = LabelTrie::build(&labels, &[vec![0], vec![0, 1], vec![2]]).unwrap();
        let ln = |p: f64| p.ln() as f32;
        let root = vec![ln(0.6), ln(0.1), ln(0.3)];
        // After "gas": continuing with token 1 has probability 0.25.
        let rows = vec![vec![ln(0.5), ln(0.25), ln(0.25)]];
        let at = |n: usize| (n == 0).then_some(0);
        let s = trie.score(&root, &at, &rows);
        assert!((s[0] - (0.6f64 * 0.75).ln()).abs() < 1e-5);
        assert!((s[1] - (0.6f64 * 0.25).ln()).abs() < 1e-5);
        assert!((s[2] - 0.3f64.ln()).abs() < 1e-5);
    }

    #[test]
    fn label_lists_parse_and_reject_duplicates() {
        assert_eq!(
            LabelSet::parse_list("a, b,c").unwrap().names,
            vec!["a", "b", "c"]
        );
        assert!(matches!(
            LabelSet::parse_list("a,a"),
            Err(LabelError::Duplicate(_))
        ));
        assert!(matches!(
            LabelSet::parse_list(" , "),
            Err(LabelError::Empty)
        ));
        assert_eq!(set(&["card_arrival"]).phrases, vec!["card arrival"]);
    }
}

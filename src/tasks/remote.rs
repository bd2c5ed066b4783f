//! Label scoring on an inference server: the same prompt, label phrases, calibration and
//! shortlist as the in-process classifier, with each label's log-probability summed token by
//! token from the server's top next-token log-probabilities. The label trie is walked level by
//! level: every item's prompt end first, then the prefixes of labels still among the top `k`,
//! with requests in parallel and the server's prompt cache keeping the shared prompt prefix.
//! A label that leaves the top `k` is bounded by the least listed log-probability there and
//! not followed further (the model id says `trie-top{k}`, so figures are never mixed up with
//! exact scoring).
use super::classify::{
    argmax, combine, render_for_labels, shortlist_vectors, softmax, text_room, top_k,
    ClassPrediction, TaskError, CONTENT_FREE,
};
use super::labels::{LabelSet, LabelTrie};
use super::prompt::{PromptSettings, PromptTemplate};
use crate::engine::{cosine, ChatTemplate, Message, SentenceEmbedder};
use crate::remote::{Client, Completion, Endpoint, LlamaServer, Policy, RemoteError, TopLogprobs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Next tokens asked for per request. The labels of a set rarely start outside the top 100;
/// a bigger list costs the server a sort and the wire a longer answer.
pub const TOP_K: usize = 100;

/// A model on an inference server, with the local sentence embedder beside it. On llama.cpp's
/// server it labels and writes responses; on a server without `/props` (vLLM, SGLang) it only
/// writes responses, through the chat endpoint.
pub struct RemoteModel {
    pub server: LlamaServer,
    /// The served model's chat template; None on a chat-only server.
    pub chat: Option<ChatTemplate>,
    /// What generated responses record as their prompt version: the template's hash, or
    /// `server:MODEL` where the server applies a template Wick cannot see.
    pub chat_version: String,
    pub embedder: Option<SentenceEmbedder>,
    /// `llama-server:FILE/trie-top100` (or `openai:MODEL` on a chat-only server), then
    /// `+EMBEDDER@HASH`: what predictions and responses record.
    pub id: String,
    pub context: usize,
    pub slots: usize,
}

impl RemoteModel {
    /// Connects and reads the served model's chat template and context size. The API key,
    /// if any, is `WICK_OPENAI_API_KEY`'s.
    pub fn connect(
        endpoint: &Endpoint,
        embedder: Option<SentenceEmbedder>,
    ) -> Result<Self, TaskError> {
        let key = std::env::var("WICK_OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty());
        let mut server = LlamaServer {
            client: Client::new(&endpoint.base, key, Policy::default()),
            model: endpoint.model.clone(),
        };
        let (chat, chat_version, mut id, context, slots) = match server.props() {
            Ok(props) => {
                let chat = ChatTemplate::new(
                    props.chat_template.clone(),
                    props.bos_token,
                    props.eos_token,
                )?;
                let file = props
                    .model_path
                    .rsplit(['/', '\\'])
                    .next()
                    .filter(|f| !f.is_empty())
                    .unwrap_or(endpoint.model.as_str())
                    .to_string();
                let version = chat.version.clone();
                let id = format!("llama-server:{file}/trie-top{TOP_K}");
                let context = props.context.unwrap_or(2048);
                (Some(chat), version, id, context, props.slots)
            }
            // Not llama.cpp: an OpenAI-compatible server, for responses only.
            Err(RemoteError::Refused { status: 404, .. }) => {
                let model = match endpoint.model.as_str() {
                    "" => server.first_model()?,
                    m => m.to_string(),
                };
                let version = format!("server:{model}");
                let id = format!("openai:{model}");
                server.model = model;
                (None, version, id, 2048, Policy::default().concurrency)
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(e) = &embedder {
            id = format!("{id}+{}", e.id);
        }
        Ok(Self {
            server,
            chat,
            chat_version,
            embedder,
            id,
            context,
            slots,
        })
    }

    /// A reply to a conversation; the server renders it with its own chat template.
    pub fn reply(
        &self,
        messages: &[Message],
        max_tokens: usize,
        temperature: f64,
        top_p: Option<f64>,
        seed: u64,
    ) -> Result<Completion, TaskError> {
        let messages = serde_json::to_value(messages).map_err(|e| {
            TaskError::Remote(RemoteError::BadReply {
                url: self.server.client.base().to_string(),
                message: e.to_string(),
            })
        })?;
        Ok(self
            .server
            .chat(&messages, max_tokens, temperature, top_p, seed)?)
    }
}

/// The tokens from the trie's root down to `node`, inclusive.
fn path_to(trie: &LabelTrie, node: usize) -> Vec<u32> {
    let mut path = Vec::new();
    let mut n = Some(node);
    while let Some(k) = n {
        path.push(trie.nodes[k].token);
        n = trie.nodes[k].parent;
    }
    path.reverse();
    path
}

pub struct RemoteClassifier<'m> {
    model: &'m RemoteModel,
    pub labels: LabelSet,
    pub prompt_version: String,
    settings: PromptSettings,
    calibrate: bool,
    prefix: Vec<u32>,
    after: Vec<u32>,
    /// What goes before an item's text (as `RenderedPrompt::lead`).
    lead: String,
    /// Each label's tokens as scored, and the trie of them all.
    sequences: Vec<Vec<u32>>,
    trie: LabelTrie,
    bias: Vec<f64>,
    max_text: usize,
    label_vecs: Option<Vec<Vec<f32>>>,
}

impl<'m> RemoteClassifier<'m> {
    pub fn new(
        model: &'m RemoteModel,
        template: &PromptTemplate,
        labels: LabelSet,
        calibrate: bool,
    ) -> Result<Self, TaskError> {
        let chat = model.chat.as_ref().ok_or_else(|| {
            TaskError::Unsupported(format!(
                "{} serves chat only: label scoring needs llama.cpp's /props and /tokenize, so \
                 this server writes responses but does not label",
                model.server.client.base()
            ))
        })?;
        let (rendered, space) = render_for_labels(template, chat, &labels)?;
        let server = &model.server;
        let prefix = server.tokenize(&rendered.before, true)?;
        let after = server.tokenize(&rendered.after, true)?;
        let sequences = labels
            .phrases
            .iter()
            .map(|p| server.tokenize(&format!("{space}{p}"), false))
            .collect::<Result<Vec<_>, _>>()?;
        // Refuses empty and identical label sequences, as in-process.
        let trie = LabelTrie::build(&labels, &sequences)?;
        let depth = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let overhead = prefix.len() + after.len() + depth + 1;
        let max_text = text_room(model.context, overhead)?;
        let settings = template.settings.clone();
        let label_vecs = shortlist_vectors(model.embedder.as_ref(), &settings, &labels)?;
        let mut this = Self {
            model,
            prompt_version: template.version.clone(),
            calibrate: calibrate && settings.calibrate,
            settings,
            labels,
            prefix,
            after,
            lead: rendered.lead.clone(),
            sequences,
            trie,
            bias: Vec::new(),
            max_text,
            label_vecs,
        };
        this.bias = vec![0.0; this.labels.len()];
        if this.calibrate {
            let items = CONTENT_FREE
                .iter()
                .map(|t| this.item(t).map(|(ids, _)| ids))
                .collect::<Result<Vec<_>, _>>()?;
            let full = vec![&this.trie; items.len()];
            let mut mean = vec![0.0; this.labels.len()];
            for lp in this.label_logprobs(&items, &full)? {
                for (m, p) in mean.iter_mut().zip(softmax(&lp)) {
                    *m += p / CONTENT_FREE.len() as f64;
                }
            }
            this.bias = mean.iter().map(|p| p.max(1e-12).ln()).collect();
        }
        Ok(this)
    }

    /// The whole prompt before the answer for one text, and whether the text was cut.
    fn item(&self, text: &str) -> Result<(Vec<u32>, bool), RemoteError> {
        let mut ids = self
            .model
            .server
            .tokenize(&format!("{}{text}", self.lead), false)?;
        let cut = ids.len() > self.max_text;
        ids.truncate(self.max_text);
        let mut all = self.prefix.clone();
        all.extend(ids);
        all.extend_from_slice(&self.after);
        Ok((all, cut))
    }

    pub fn classify(&self, texts: &[&str]) -> Result<Vec<ClassPrediction>, TaskError> {
        let (prompts, mut cut): (Vec<Vec<u32>>, Vec<bool>) = self
            .in_parallel(texts.len(), |i| self.item(texts[i]))?
            .into_iter()
            .unzip();
        let n = self.labels.len();
        let (which, cosines): (Vec<Vec<usize>>, Option<Vec<Vec<f64>>>) =
            match (&self.label_vecs, &self.model.embedder) {
                (Some(label_vecs), Some(e)) => {
                    let (vecs, embed_cut) = e.embed(texts)?;
                    for (c, e) in cut.iter_mut().zip(embed_cut) {
                        *c |= e;
                    }
                    let cos: Vec<Vec<f64>> = vecs
                        .iter()
                        .map(|v| label_vecs.iter().map(|l| cosine(v, l)).collect())
                        .collect();
                    let short = cos
                        .iter()
                        .map(|c| top_k(c, self.settings.shortlist))
                        .collect();
                    (short, Some(cos))
                }
                _ => (vec![(0..n).collect(); texts.len()], None),
            };
        let subsets = match cosines {
            Some(_) => which
                .iter()
                .map(|w| LabelTrie::for_subset(&self.labels, &self.sequences, w))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        let tries: Vec<&LabelTrie> = match cosines {
            Some(_) => subsets.iter().collect(),
            None => vec![&self.trie; prompts.len()],
        };
        let lps = self.label_logprobs(&prompts, &tries)?;
        Ok(lps
            .iter()
            .enumerate()
            .map(|(i, lp)| {
                let z: Vec<f64> = lp
                    .iter()
                    .zip(&which[i])
                    .map(|(l, &k)| (l - self.bias[k]) / self.settings.temperature)
                    .collect();
                let probs = match &cosines {
                    Some(cos) => combine(&softmax(&z), &which[i], &cos[i], &self.settings),
                    None => softmax(&z),
                };
                let best = argmax(&probs);
                ClassPrediction {
                    label: self.labels.names[best].clone(),
                    confidence: probs[best],
                    scores: self.labels.names.iter().cloned().zip(probs).collect(),
                    truncated: cut[i],
                    features: None,
                }
            })
            .collect())
    }

    /// For each prompt, the log-probability of each label of `tries[i]`, scored by the trie
    /// as in-process (a label that starts a longer one is charged the chance of stopping).
    /// The distributions come from the server level by level: the prompt's end, then each
    /// inner node whose token is among its parent's top `k`. A node outside them gets a row
    /// at its parent's floor, the bound on everything not listed, and is not asked about.
    fn label_logprobs(
        &self,
        prompts: &[Vec<u32>],
        tries: &[&LabelTrie],
    ) -> Result<Vec<Vec<f64>>, TaskError> {
        // Dense rows wide enough for every token a trie holds.
        let width = |t: &LabelTrie| {
            t.nodes
                .iter()
                .map(|n| n.token as usize + 1)
                .max()
                .unwrap_or(0)
        };
        let dense = |top: &TopLogprobs, w: usize| -> Vec<f32> {
            let mut row = vec![top.floor() as f32; w];
            for &(t, l) in &top.0 {
                if let Some(r) = row.get_mut(t as usize) {
                    *r = l as f32;
                }
            }
            row
        };
        let none: Vec<(usize, Vec<u32>)> = (0..prompts.len()).map(|i| (i, Vec::new())).collect();
        let roots = self.ask_all(prompts, &none)?;
        // Per item: its rows, and the row of each inner node.
        let mut rows: Vec<Vec<Vec<f32>>> = vec![Vec::new(); prompts.len()];
        let mut at: Vec<Vec<Option<usize>>> =
            tries.iter().map(|t| vec![None; t.nodes.len()]).collect();
        let mut frontier: Vec<(usize, usize)> = Vec::new();
        // A child of a node whose distribution is `top`: asked about, or bounded with its
        // inner descendants.
        let follow = |i: usize,
                      node: usize,
                      top: &TopLogprobs,
                      rows: &mut Vec<Vec<Vec<f32>>>,
                      at: &mut Vec<Vec<Option<usize>>>,
                      frontier: &mut Vec<(usize, usize)>| {
            let t = tries[i];
            if t.nodes[node].children.is_empty() {
                return;
            }
            if top.get(t.nodes[node].token).is_some() {
                frontier.push((i, node));
                return;
            }
            rows[i].push(vec![top.floor() as f32; width(t)]);
            let row = rows[i].len() - 1;
            let mut stack = vec![node];
            while let Some(n) = stack.pop() {
                if !t.nodes[n].children.is_empty() {
                    at[i][n] = Some(row);
                    stack.extend(&t.nodes[n].children);
                }
            }
        };
        for (i, top) in roots.iter().enumerate() {
            for &r in &tries[i].roots {
                follow(i, r, top, &mut rows, &mut at, &mut frontier);
            }
        }
        while !frontier.is_empty() {
            let asks: Vec<(usize, Vec<u32>)> = frontier
                .iter()
                .map(|&(i, n)| (i, path_to(tries[i], n)))
                .collect();
            let tops = self.ask_all(prompts, &asks)?;
            let mut next = Vec::new();
            for (&(i, n), top) in frontier.iter().zip(&tops) {
                rows[i].push(dense(top, width(tries[i])));
                at[i][n] = Some(rows[i].len() - 1);
                for &c in &tries[i].nodes[n].children {
                    follow(i, c, top, &mut rows, &mut at, &mut next);
                }
            }
            frontier = next;
        }
        Ok(tries
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let root = dense(&roots[i], width(t));
                let at_i = &at[i];
                t.score(&root, &|n| at_i[n], &rows[i])
            })
            .collect())
    }

    /// The top next tokens after each (prompt, label prefix).
    fn ask_all(
        &self,
        prompts: &[Vec<u32>],
        asks: &[(usize, Vec<u32>)],
    ) -> Result<Vec<TopLogprobs>, TaskError> {
        self.in_parallel(asks.len(), |a| {
            let (i, path) = &asks[a];
            let mut ids = prompts[*i].clone();
            ids.extend_from_slice(path);
            self.model.server.top_logprobs(&ids, TOP_K)
        })
    }

    /// `f(0..n)` with up to the policy's concurrency (and no more than the server's slots) at
    /// once, in order. The first failure stops the others taking work and is returned.
    fn in_parallel<T: Send>(
        &self,
        n: usize,
        f: impl Fn(usize) -> Result<T, RemoteError> + Sync,
    ) -> Result<Vec<T>, TaskError> {
        let server = &self.model.server;
        let workers = server
            .client
            .policy
            .concurrency
            .min(self.model.slots)
            .clamp(1, n.max(1));
        let next = AtomicUsize::new(0);
        let out: Mutex<Vec<Option<Result<T, RemoteError>>>> =
            Mutex::new((0..n).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let a = next.fetch_add(1, Ordering::Relaxed);
                    if a >= n {
                        break;
                    }
                    let r = f(a);
                    let failed = r.is_err();
                    out.lock().unwrap_or_else(|p| p.into_inner())[a] = Some(r);
                    if failed {
                        next.store(n, Ordering::Relaxed);
                        break;
                    }
                });
            }
        });
        let mut done = Vec::with_capacity(n);
        for r in out
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
        {
            done.push(r?);
        }
        if done.len() != n {
            return Err(TaskError::Remote(RemoteError::BadReply {
                url: server.client.base().to_string(),
                message: format!("{} of {n} requests went unanswered", n - done.len()),
            }));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Prompt;
    use std::io::{Read, Write};

    /// A stand-in for a server without llama.cpp's endpoints: `/props` is 404, `/v1/models`
    /// lists one model, and the chat endpoint answers "Paris." (what vLLM's shapes look like).
    fn chat_only_server(requests: usize) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut s, _) = l.accept().unwrap();
                let head = read_request(&mut s);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let (status, body) = match path.as_str() {
                    "/v1/models" => ("200 OK", r#"{"data":[{"id":"Qwen/Qwen2.5-7B-Instruct"}]}"#),
                    "/v1/chat/completions" => (
                        "200 OK",
                        r#"{"choices":[{"message":{"content":"Paris."},"finish_reason":"stop"}]}"#,
                    ),
                    _ => ("404 Not Found", r#"{"detail":"Not Found"}"#),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.push(head);
            }
            seen
        });
        (base, handle)
    }

    /// The request's head and body (as far as its Content-Length says).
    fn read_request(s: &mut std::net::TcpStream) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).unwrap_or(0);
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len || n == 0 {
                    return text;
                }
            }
            if n == 0 {
                return text;
            }
        }
    }

    #[test]
    fn a_chat_only_server_writes_responses_and_refuses_to_label() {
        let (base, server) = chat_only_server(3);
        let endpoint: Endpoint = format!("openai:{base}").parse().unwrap();
        let m = RemoteModel::connect(&endpoint, None).unwrap();
        assert!(m.chat.is_none());
        assert_eq!(m.id, "openai:Qwen/Qwen2.5-7B-Instruct");
        assert_eq!(m.chat_version, "server:Qwen/Qwen2.5-7B-Instruct");
        let reply = m
            .reply(
                &[Message::new("user", "Capital of France?")],
                16,
                0.0,
                None,
                1,
            )
            .unwrap();
        assert_eq!((reply.text.as_str(), reply.stopped), ("Paris.", true));
        let requests = server.join().unwrap();
        assert!(
            requests[2].contains("\"model\":\"Qwen/Qwen2.5-7B-Instruct\""),
            "the chat request names the model: {}",
            requests[2]
        );
        let template = PromptTemplate::builtin(Prompt::Sentiment).unwrap();
        let labels = LabelSet::parse_list("positive,negative").unwrap();
        match RemoteClassifier::new(&m, &template, labels, true) {
            Err(TaskError::Unsupported(why)) => assert!(why.contains("serves chat only"), "{why}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a chat-only server labeled"),
        }
    }
}

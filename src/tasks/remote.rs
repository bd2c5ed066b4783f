//! Label scoring on an inference server: the same prompt, label phrases, calibration and
//! shortlist as the in-process classifier, with each label's log-probability summed token by
//! token from the server's top next-token log-probabilities. The label trie is walked level by
//! level: every item's prompt end first, then the prefixes of labels still among the top `k`,
//! with requests in parallel and the server's prompt cache keeping the shared prompt prefix.
//! A label that leaves the top `k` is bounded by the least listed log-probability there and
//! not followed further (the model id says `trie-top{k}`, so figures are never mixed up with
//! exact scoring).
use super::classify::{
    argmax, combine, shortlist_vectors, softmax, top_k, ClassPrediction, TaskError, CONTENT_FREE,
};
use super::labels::LabelSet;
use super::prompt::{PromptError, PromptSettings, PromptTemplate};
use crate::engine::{cosine, ChatTemplate, Message, SentenceEmbedder};
use crate::remote::{Client, Completion, Endpoint, LlamaServer, Policy, RemoteError, TopLogprobs};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Next tokens asked for per request. The labels of a set rarely start outside the top 100;
/// a bigger list costs the server a sort and the wire a longer answer.
pub const TOP_K: usize = 100;

/// Longest text sent, in the server's tokens (as the in-process `MAX_TEXT_TOKENS`).
const MAX_TEXT_TOKENS: usize = super::classify::MAX_TEXT_TOKENS;

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
    /// Each label's tokens as scored.
    sequences: Vec<Vec<u32>>,
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
        let rendered = template.render(chat, &labels.phrases, &[])?;
        if rendered.mention.is_some() {
            return Err(PromptError::Invalid {
                name: template.name.clone(),
                message: "{{ mention }} belongs in entity prompts only".into(),
            }
            .into());
        }
        let server = &model.server;
        let prefix = server.tokenize(&rendered.before, true)?;
        let after = server.tokenize(&rendered.after, true)?;
        let space = match rendered.after.chars().last() {
            Some(c) if !c.is_whitespace() => " ",
            _ => "",
        };
        let sequences = labels
            .phrases
            .iter()
            .map(|p| server.tokenize(&format!("{space}{p}"), false))
            .collect::<Result<Vec<_>, _>>()?;
        let depth = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let overhead = prefix.len() + after.len() + depth + 1;
        let max_text = model
            .context
            .checked_sub(overhead)
            .filter(|&n| n > 0)
            .ok_or(TaskError::NoRoom(model.context))?
            .min(MAX_TEXT_TOKENS);
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
            bias: Vec::new(),
            max_text,
            label_vecs,
        };
        this.bias = vec![0.0; this.labels.len()];
        if this.calibrate {
            let all: Vec<usize> = (0..this.labels.len()).collect();
            let items = CONTENT_FREE
                .iter()
                .map(|t| this.item(t).map(|(ids, _)| ids))
                .collect::<Result<Vec<_>, _>>()?;
            let which = vec![all; items.len()];
            let mut mean = vec![0.0; this.labels.len()];
            for lp in this.label_logprobs(&items, &which)? {
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
        let (prompts, cut): (Vec<Vec<u32>>, Vec<bool>) = self
            .in_parallel(texts.len(), |i| self.item(texts[i]))?
            .into_iter()
            .unzip();
        let n = self.labels.len();
        let (which, cosines): (Vec<Vec<usize>>, Option<Vec<Vec<f64>>>) =
            match (&self.label_vecs, &self.model.embedder) {
                (Some(label_vecs), Some(e)) => {
                    let (vecs, _) = e.embed(texts)?;
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
        let lps = self.label_logprobs(&prompts, &which)?;
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

    /// For each prompt, the log-probability of each label in `which[i]` (in that order),
    /// summed over the label's tokens.
    fn label_logprobs(
        &self,
        prompts: &[Vec<u32>],
        which: &[Vec<usize>],
    ) -> Result<Vec<Vec<f64>>, TaskError> {
        // Per (prompt, label): the log-probability so far, and whether it is still followed.
        let mut lp: Vec<Vec<(f64, bool)>> =
            which.iter().map(|w| vec![(0.0, true); w.len()]).collect();
        let depth = self.sequences.iter().map(Vec::len).max().unwrap_or(0);
        for d in 0..depth {
            // The distinct prefixes this level needs: (prompt, the label tokens before d).
            let mut need: HashMap<(usize, &[u32]), usize> = HashMap::new();
            let mut asks: Vec<(usize, &[u32])> = Vec::new();
            for (i, w) in which.iter().enumerate() {
                for (j, &k) in w.iter().enumerate() {
                    let seq = &self.sequences[k];
                    if lp[i][j].1 && d < seq.len() {
                        need.entry((i, &seq[..d])).or_insert_with(|| {
                            asks.push((i, &seq[..d]));
                            asks.len() - 1
                        });
                    }
                }
            }
            let tops = self.ask_all(prompts, &asks)?;
            for (i, w) in which.iter().enumerate() {
                for (j, &k) in w.iter().enumerate() {
                    let seq = &self.sequences[k];
                    if !(lp[i][j].1 && d < seq.len()) {
                        continue;
                    }
                    let top = &tops[need[&(i, &seq[..d])]];
                    match top.get(seq[d]) {
                        Some(l) => lp[i][j].0 += l,
                        None => lp[i][j] = (lp[i][j].0 + top.floor(), false),
                    }
                }
            }
        }
        Ok(lp
            .into_iter()
            .map(|row| row.into_iter().map(|(l, _)| l).collect())
            .collect())
    }

    /// The top next tokens after each (prompt, label prefix).
    fn ask_all(
        &self,
        prompts: &[Vec<u32>],
        asks: &[(usize, &[u32])],
    ) -> Result<Vec<TopLogprobs>, TaskError> {
        self.in_parallel(asks.len(), |a| {
            let (i, path) = asks[a];
            let mut ids = prompts[i].clone();
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

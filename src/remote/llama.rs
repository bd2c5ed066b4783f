//! The calls Wick makes to an inference server. Tokenizing, the server's properties and the
//! next token's top log-probabilities are llama.cpp's own endpoints (`/tokenize`, `/props`,
//! `/completion` with `n_probs`), which answer with token ids; replies to a conversation use
//! the OpenAI chat endpoint that vLLM and SGLang serve too.
use super::{Client, RemoteError};
use serde_json::{json, Value};

/// What `/props` says about the model being served.
#[derive(Debug, Clone)]
pub struct ServerProps {
    /// The model file the server loaded (its file name identifies it in a model id).
    pub model_path: String,
    pub chat_template: String,
    pub bos_token: String,
    pub eos_token: String,
    /// Parallel slots: requests the server decodes at once.
    pub slots: usize,
    /// Tokens each slot holds.
    pub context: Option<usize>,
}

/// The `k` most likely next tokens with their natural-log probabilities, most likely first.
#[derive(Debug, Clone, PartialEq)]
pub struct TopLogprobs(pub Vec<(u32, f64)>);

impl TopLogprobs {
    pub fn get(&self, token: u32) -> Option<f64> {
        self.0.iter().find(|(t, _)| *t == token).map(|(_, l)| *l)
    }

    /// The least log-probability listed: an upper bound for every token not listed. Never
    /// empty: `top_logprobs` refuses an answer without entries.
    pub fn floor(&self) -> f64 {
        self.0.iter().map(|(_, l)| *l).fold(0.0, f64::min)
    }
}

/// A reply to a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub text: String,
    /// True when the model ended its turn, false when the token limit cut it off.
    pub stopped: bool,
}

pub struct LlamaServer {
    pub client: Client,
    /// The model name sent with OpenAI calls (may be empty when the server has one model).
    pub model: String,
}

impl LlamaServer {
    fn bad(&self, message: String) -> RemoteError {
        RemoteError::BadReply {
            url: self.client.base().to_string(),
            message,
        }
    }

    pub fn props(&self) -> Result<ServerProps, RemoteError> {
        let v = self.client.get("/props")?;
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        if v["chat_template"].as_str().is_none() {
            return Err(self.bad(format!(
                "/props has no chat_template (is this llama.cpp's llama-server?): {}",
                short(&v)
            )));
        }
        Ok(ServerProps {
            model_path: s("model_path"),
            chat_template: s("chat_template"),
            bos_token: s("bos_token"),
            eos_token: s("eos_token"),
            slots: v["total_slots"].as_u64().unwrap_or(1).max(1) as usize,
            context: v["default_generation_settings"]["n_ctx"]
                .as_u64()
                .map(|n| n as usize),
        })
    }

    /// The first model `/v1/models` lists: the one to name when the spec names none.
    pub fn first_model(&self) -> Result<String, RemoteError> {
        let v = self.client.get("/v1/models")?;
        v["data"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad(format!("/v1/models lists no model: {}", short(&v))))
    }

    /// Token ids of `text`, without BOS; special tokens written in the text (`<|im_start|>`)
    /// become their ids when `special`, as the chat template means them.
    pub fn tokenize(&self, text: &str, special: bool) -> Result<Vec<u32>, RemoteError> {
        let v = self.client.post(
            "/tokenize",
            &json!({"content": text, "add_special": false, "parse_special": special}),
        )?;
        v["tokens"]
            .as_array()
            .and_then(|a| a.iter().map(|t| t.as_u64().map(|t| t as u32)).collect())
            .ok_or_else(|| self.bad(format!("/tokenize answered {}", short(&v))))
    }

    /// The `k` most likely tokens after `prompt` (token ids), from the raw logits (before any
    /// sampler). The server's prompt cache keeps the longest shared prefix of earlier calls.
    pub fn top_logprobs(&self, prompt: &[u32], k: usize) -> Result<TopLogprobs, RemoteError> {
        let v = self.client.post(
            "/completion",
            &json!({
                "prompt": prompt,
                "n_predict": 1,
                "n_probs": k,
                "temperature": 0.0,
                "cache_prompt": true,
                "post_sampling_probs": false,
            }),
        )?;
        let top = v["completion_probabilities"][0]["top_logprobs"]
            .as_array()
            .ok_or_else(|| self.bad(format!("/completion has no top_logprobs: {}", short(&v))))?;
        let pairs = top
            .iter()
            .map(|t| Some((t["id"].as_u64()? as u32, t["logprob"].as_f64()?)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| self.bad("a top_logprobs entry without id or logprob".into()))?;
        if pairs.is_empty() {
            return Err(self.bad("/completion listed no top_logprobs".into()));
        }
        Ok(TopLogprobs(pairs))
    }

    /// A reply to `messages` through `/v1/chat/completions`.
    pub fn chat(
        &self,
        messages: &Value,
        max_tokens: usize,
        temperature: f64,
        top_p: Option<f64>,
        seed: u64,
    ) -> Result<Completion, RemoteError> {
        let mut body = json!({
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        });
        if !self.model.is_empty() {
            body["model"] = json!(self.model);
        }
        if let Some(p) = top_p {
            body["top_p"] = json!(p);
        }
        let v = self.client.post("/v1/chat/completions", &body)?;
        let choice = &v["choices"][0];
        let text = choice["message"]["content"]
            .as_str()
            .ok_or_else(|| self.bad(format!("no choices[0].message.content: {}", short(&v))))?;
        Ok(Completion {
            text: text.to_string(),
            stopped: choice["finish_reason"] != "length",
        })
    }
}

/// The start of a JSON value, for error messages.
fn short(v: &Value) -> String {
    v.to_string().chars().take(200).collect()
}

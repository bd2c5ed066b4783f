//! Tokenizer built from GGUF metadata (byte-level BPE), or from a `tokenizer.json` beside the
//! model. candle's own GGUF conversion adds a prefix space for SmolLM2, so `<|im_start|>user`
//! came out as `Ġuser`; this one reproduces llama.cpp's ids (`tests/it/engine_parity.rs`).
use super::{EngineError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use std::path::Path;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

/// GGUF token types (llama.cpp's `llama_token_type`).
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Llama 3's pre-tokenizer split; qwen2's is the same with single digits.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub struct TextTokenizer {
    /// Splits special tokens written in the text (for prompts Wick renders itself).
    with_special: Tokenizer,
    /// Treats everything as plain text (for user data: an item containing `<|im_end|>`
    /// must not end the turn).
    plain: Tokenizer,
    /// Raw bytes of every token id (decoding joins them).
    token_bytes: Vec<Vec<u8>>,
    /// Tokens that end a turn (eos, and `<|im_end|>`/`<|eot_id|>` style tokens).
    stop_ids: Vec<u32>,
}

impl TextTokenizer {
    /// `tokenizer.json` beside the model wins; otherwise the GGUF metadata.
    pub fn for_model(model: &Path, content: &Content) -> Result<Self> {
        let beside = model.with_file_name("tokenizer.json");
        let with_special = if beside.exists() {
            Tokenizer::from_file(&beside)
                .map_err(|e| EngineError::Tokenizer(format!("{}: {e}", beside.display())))?
        } else {
            from_gguf(content)?
        };
        Self::new(with_special, content)
    }

    fn new(with_special: Tokenizer, content: &Content) -> Result<Self> {
        let mut plain = Tokenizer::new(with_special.get_model().clone());
        if let Some(pre) = with_special.get_pre_tokenizer() {
            plain.with_pre_tokenizer(Some(pre.clone()));
        }
        if let Some(norm) = with_special.get_normalizer() {
            let _ = plain.with_normalizer(Some(norm.clone()));
        }
        let vocab_size = with_special.get_vocab_size(true);
        let byte_of: std::collections::HashMap<char, u8> = ByteLevel::alphabet()
            .into_iter()
            .map(|c| (c, byte_level_byte(c)))
            .collect();
        let mut token_bytes = vec![Vec::new(); vocab_size];
        let added: std::collections::HashSet<u32> = with_special
            .get_added_tokens_decoder()
            .keys()
            .copied()
            .collect();
        for (text, id) in with_special.get_vocab(true) {
            let Some(slot) = token_bytes.get_mut(id as usize) else {
                continue;
            };
            *slot = if added.contains(&id) {
                text.into_bytes()
            } else {
                text.chars()
                    .map(|c| byte_of.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| text.into_bytes())
            };
        }
        let mut stop_ids = Vec::new();
        if let Some(eos) = content
            .metadata
            .get("tokenizer.ggml.eos_token_id")
            .and_then(|v| v.to_u32().ok())
        {
            stop_ids.push(eos);
        }
        for name in ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>"] {
            if let Some(id) = with_special.token_to_id(name) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
        Ok(Self {
            with_special,
            plain,
            token_bytes,
            stop_ids,
        })
    }

    /// Ids of a prompt Wick rendered: special tokens written in it are parsed.
    pub fn encode_prompt(&self, text: &str) -> Result<Vec<u32>> {
        encode(&self.with_special, text)
    }

    /// Ids of user text: nothing in it is special.
    pub fn encode_text(&self, text: &str) -> Result<Vec<u32>> {
        encode(&self.plain, text)
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.bytes(id).to_vec()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The raw bytes a token stands for (empty for an id out of range).
    pub fn bytes(&self, id: u32) -> &[u8] {
        self.token_bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }
}

fn encode(tok: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    tok.encode_fast(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| EngineError::Tokenizer(e.to_string()))
}

/// The byte GPT-2's byte-level alphabet maps to `c` (printable bytes map to themselves,
/// the rest were shifted up to U+0100 and beyond).
fn byte_level_byte(c: char) -> u8 {
    let printable = |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
    let cp = c as u32;
    if cp < 256 && printable(cp) {
        return cp as u8;
    }
    let mut n = 0u32;
    for b in 0..256u32 {
        if !printable(b) {
            if 256 + n == cp {
                return b as u8;
            }
            n += 1;
        }
    }
    0
}

fn from_gguf(content: &Content) -> Result<Tokenizer> {
    let md = &content.metadata;
    let err = |m: &str| EngineError::Tokenizer(m.to_string());
    let model = md
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .ok_or_else(|| err("GGUF has no tokenizer.ggml.model"))?;
    if model != "gpt2" {
        return Err(err(&format!(
            "GGUF tokenizer model '{model}' is not byte-level BPE; put the model's tokenizer.json beside the .gguf file"
        )));
    }
    let strings = |key: &str| -> Result<Vec<String>> {
        match md.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.to_string().cloned())
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| err(&format!("{key}: {e}"))),
            _ => Err(err(&format!("GGUF has no {key}"))),
        }
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges: Vec<(String, String)> = strings("tokenizer.ggml.merges")?
        .into_iter()
        .filter_map(|m| {
            let (a, b) = m.split_once(' ')?;
            Some((a.to_string(), b.to_string()))
        })
        .collect();
    let types: Vec<i32> = match md.get("tokenizer.ggml.token_type") {
        Some(Value::Array(items)) => items.iter().map(|v| v.to_i32().unwrap_or(1)).collect(),
        _ => vec![1; tokens.len()],
    };
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(pre_name(content) == "llama-bpe")
        .build()
        .map_err(|e| err(&e.to_string()))?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tokenizer(&pre_name(content))?));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &ty)| ty == TOKEN_TYPE_CONTROL)
        .map(|(t, _)| AddedToken::from(t.clone(), true))
        .collect();
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &ty)| ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    tok.add_special_tokens(special)
        .map_err(|e| err(&e.to_string()))?;
    tok.add_tokens(user).map_err(|e| err(&e.to_string()))?;
    Ok(tok)
}

fn pre_name(content: &Content) -> String {
    content
        .metadata
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_else(|| "default".into())
}

/// The pre-tokenizer llama.cpp uses for each `tokenizer.ggml.pre` name we support.
fn pre_tokenizer(name: &str) -> Result<PreTokenizerWrapper> {
    let split = |re: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(
            tokenizers::pre_tokenizers::split::SplitPattern::Regex(re.into()),
            SplitDelimiterBehavior::Isolated,
            false,
        )
        .map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(Sequence::new(vec![
            split.into(),
            ByteLevel::new(false, true, false).into(),
        ])
        .into())
    };
    match name {
        "smollm" | "starcoder" | "refact" => Ok(Sequence::new(vec![
            Digits::new(true).into(),
            ByteLevel::new(false, true, true).into(),
        ])
        .into()),
        "llama-bpe" | "llama3" | "smaug-bpe" => split(LLAMA3_SPLIT),
        "qwen2" | "deepseek-r1-qwen" => split(QWEN2_SPLIT),
        _ => Ok(ByteLevel::new(false, true, true).into()),
    }
}

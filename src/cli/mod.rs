//! Subcommands. Flags fall back to `WICK_*` environment variables.
mod admin;
mod eval;
mod label;
mod learn;
mod learn_spans;
mod rules;
mod serve;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use wick::engine::{self, Device, LoadOptions, LoadedModel, SentenceEmbedder};
use wick::remote::Endpoint;
use wick::tasks::backend::Backend;
use wick::tasks::classify::ClassifierOptions;
use wick::tasks::labeler::{Labeler, Task};
use wick::tasks::labels::LabelSet;
use wick::tasks::prompt::PromptTemplate;
use wick::tasks::remote::RemoteModel;

#[derive(Parser)]
#[command(
    name = "wick",
    version,
    about = "Labeling server for NLP teams, with an in-process language model"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Label a JSONL file zero-shot with the model.
    Label(label::LabelArgs),
    /// Label a JSONL file with gold labels and report accuracy, macro-F1, ECE or span F1.
    Eval(eval::EvalArgs),
    /// Run the labeling server.
    Serve(serve::ServeArgs),
    /// Import a JSONL or CSV file into a project.
    Import(admin::ImportArgs),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Create an API token for a user and print it.
    Token {
        #[command(subcommand)]
        cmd: TokenCommand,
    },
    /// Manage projects.
    #[command(subcommand)]
    Project(admin::ProjectCommand),
    /// Queue pre-labeling of a project's items (run by `wick serve`).
    Prelabel(admin::PrelabelArgs),
    /// Export a project (labels, spans, instructions or preference votes) in a trainer's format, streamed.
    Export(admin::ExportArgs),
    /// Labeling functions: add, list, measure and apply a project's rules, or label a file.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token.
    Create(admin::TokenArgs),
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Label(args) => label::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Import(args) => admin::import(args),
        Command::User(cmd) => admin::user(cmd),
        Command::Token {
            cmd: TokenCommand::Create(args),
        } => admin::token(args),
        Command::Project(cmd) => admin::project(cmd),
        Command::Prelabel(args) => admin::prelabel(args),
        Command::Export(args) => admin::export(args),
        Command::Rules(cmd) => rules::run(cmd),
    }
}

/// What every model-using command takes.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A .gguf path, hf:OWNER/REPO/FILE.gguf[@REVISION] from the Hugging Face cache, or
    /// openai:http://HOST:PORT#MODEL for llama.cpp's llama-server (an API key comes from
    /// WICK_OPENAI_API_KEY).
    #[arg(long, env = "WICK_MODEL", default_value = engine::source::DEFAULT_MODEL)]
    pub model: String,
    #[arg(long, env = "WICK_DEVICE", value_enum, default_value_t = Device::Cpu)]
    pub device: Device,
    /// CPU threads for the model (default: all cores).
    #[arg(long, env = "WICK_THREADS")]
    pub threads: Option<usize>,
    /// The sentence-embedder folder (config.json, model.safetensors, tokenizer.json) that
    /// shortlists large label sets (default: all-MiniLM-L6-v2 next to the model file; without
    /// it the language model scores every label).
    #[arg(long, env = "WICK_EMBEDDER")]
    pub embedder: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Backend> {
        engine::configure_threads(self.threads);
        if Endpoint::is_remote(&self.model) {
            let endpoint: Endpoint = self.model.parse()?;
            let dir = self
                .embedder
                .clone()
                .unwrap_or_else(|| PathBuf::from("models").join(engine::DEFAULT_EMBEDDER));
            // The embedder is optional here as beside a local model: without it the learner
            // has no embeddings and large label sets are scored in full.
            let embedder = match dir.join("model.safetensors").exists() || self.embedder.is_some() {
                true => Some(
                    SentenceEmbedder::load(&dir, &self.device.candle()?).with_context(|| {
                        format!("loading the sentence embedder {}", dir.display())
                    })?,
                ),
                false => None,
            };
            let remote = RemoteModel::connect(&endpoint, embedder)
                .with_context(|| format!("connecting to {}", endpoint.base))?;
            return Ok(Backend::Remote(remote));
        }
        let path = engine::source::resolve(&self.model)?;
        LoadedModel::load(
            &path,
            &LoadOptions {
                device: self.device,
                embedder: self.embedder.clone(),
            },
        )
        .map(Backend::Local)
        .with_context(|| format!("loading model {}", self.model))
    }
}

/// The task and its label set.
#[derive(Args, Clone)]
pub struct TaskArgs {
    #[arg(long, value_enum)]
    pub task: Task,
    /// Labels (or entity types for ner), comma-separated.
    #[arg(long, conflicts_with = "labels_file")]
    pub labels: Option<String>,
    /// A JSON list of labels, or an object mapping each label to the phrase the model scores.
    #[arg(long)]
    pub labels_file: Option<PathBuf>,
    /// A prompt template file to use instead of the built-in one for the task.
    #[arg(long)]
    pub prompt: Option<PathBuf>,
    /// Skip contextual calibration (for comparison only).
    #[arg(long, hide = true)]
    pub no_calibration: bool,
    /// Recompute the shared prompt prefix for every item (for comparison only).
    #[arg(long, hide = true)]
    pub no_prefix_cache: bool,
}

impl TaskArgs {
    pub fn label_set(&self) -> Result<LabelSet> {
        Ok(
            match (&self.labels, &self.labels_file, self.task.default_labels()) {
                (Some(list), _, _) => LabelSet::parse_list(list)?,
                (None, Some(path), _) => LabelSet::from_file(path)?,
                (None, None, Some(default)) => default,
                (None, None, None) => anyhow::bail!(
                    "--task {} needs --labels a,b,c or --labels-file FILE.json",
                    self.task.name()
                ),
            },
        )
    }

    pub fn labeler<'m>(&self, model: &'m Backend) -> Result<Labeler<'m>> {
        let template = match &self.prompt {
            Some(path) => PromptTemplate::from_file(path)?,
            None => PromptTemplate::builtin(self.task.prompt())?,
        };
        let opts = ClassifierOptions {
            calibrate: !self.no_calibration,
            prefix_cache: !self.no_prefix_cache,
        };
        Ok(Labeler::new(
            model,
            self.task,
            &template,
            self.label_set()?,
            opts,
        )?)
    }
}

/// Progress on stderr with items/s (hidden when stderr is not a terminal).
pub fn progress(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Items per batch handed to the labeler: enough to pack forwards well.
pub const CHUNK: usize = 32;

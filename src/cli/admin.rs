//! Commands that work on the database directly: users, tokens, projects, import.
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::fs::File;
use std::path::PathBuf;
use std::process::ExitCode;
use wick::domain::{NewProject, QueueOrder, TaskKind};
use wick::export::card::Part;
use wick::export::{LabelFilter, LabelSummary, Split};
use wick::formats::import::Format;
use wick::formats::labels::LabelFormat;
use wick::store::projects;
use wick::store::users::{self, Role};
use wick::store::{import, Actor, Store};

#[derive(Args)]
pub struct DbArg {
    #[arg(long, env = "WICK_DB", default_value = "wick.db")]
    db: PathBuf,
}

impl DbArg {
    pub(super) fn open(&self) -> Result<Store> {
        Store::open(&self.db).with_context(|| format!("opening {}", self.db.display()))
    }
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user; the password comes from WICK_PASSWORD or is asked on stdin.
    Add {
        name: String,
        #[arg(long, value_enum, default_value_t = Role::Annotator)]
        role: Role,
        #[command(flatten)]
        db: DbArg,
    },
}

pub fn user(cmd: UserCommand) -> Result<ExitCode> {
    match cmd {
        UserCommand::Add { name, role, db } => {
            let password = match std::env::var("WICK_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    eprint!("password for {name}: ");
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let u = db
                .open()?
                .write(|tx| users::create(tx, &Actor::system(), &name, role, &password))?;
            println!("added {} ({}) with id {}", u.name, u.role.as_str(), u.id);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[derive(Args)]
pub struct TokenArgs {
    /// The user the token acts as.
    name: String,
    #[command(flatten)]
    db: DbArg,
}

/// Prints a new API token (only its hash is stored).
pub fn token(args: TokenArgs) -> Result<ExitCode> {
    let store = args.db.open()?;
    let token = store.write(|tx| {
        let u = users::by_name(tx, &args.name)?;
        users::create_token(tx, &Actor::system(), u.id)
    })?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project.
    Create {
        name: String,
        #[arg(long, value_parser = ["classification", "ner", "preference", "instruction"])]
        task: String,
        /// Labels or entity types, comma-separated (none for preference and instruction projects).
        #[arg(long, default_value = "")]
        labels: String,
        /// Built-in prompt: classify, sentiment, intent (classification) or ner.
        #[arg(long)]
        prompt: Option<String>,
        #[arg(long, value_parser = ["uncertainty", "sequential", "random"])]
        queue_order: Option<String>,
        #[arg(long)]
        overlap: Option<i64>,
        /// A Markdown file with the guidelines.
        #[arg(long)]
        guidelines: Option<PathBuf>,
        /// Users (by name) to add as members.
        #[arg(long, value_delimiter = ',')]
        members: Vec<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

pub fn project(cmd: ProjectCommand) -> Result<ExitCode> {
    let ProjectCommand::Create {
        name,
        task,
        labels,
        prompt,
        queue_order,
        overlap,
        guidelines,
        members,
        db,
    } = cmd;
    let guidelines = guidelines
        .map(|p| std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let parse = |s: &str| serde_json::Value::String(s.to_string());
    let new = NewProject {
        name,
        task: serde_json::from_value::<TaskKind>(parse(&task))?,
        labels: labels
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        prompt,
        guidelines,
        queue_order: queue_order
            .map(|q| serde_json::from_value::<QueueOrder>(parse(&q)))
            .transpose()?,
        overlap,
        generation: None,
        gold_rate: None,
        precision_target: None,
        retrain_every: None,
        near_duplicate_cosine: None,
    };
    let p = db.open()?.write(|tx| {
        let p = projects::create(tx, &Actor::system(), &new)?;
        for m in &members {
            let u = users::by_name(tx, m)?;
            projects::set_member(tx, &Actor::system(), p.id, u.id, true)?;
        }
        Ok(p)
    })?;
    println!("created project {} with id {}", p.name, p.id);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    db: DbArg,
    /// The project's name.
    #[arg(long)]
    project: String,
    /// JSONL, or CSV with a `text` column (by extension).
    file: PathBuf,
}

/// Streams a file into a project; bad rows are listed and the exit code is 2 if there were any.
pub fn import(args: ImportArgs) -> Result<ExitCode> {
    let store = args.db.open()?;
    let project = store.read(|c| projects::by_name(c, &args.project))?;
    let file =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let bar = super::progress(0);
    let report = import::by_task(
        &store,
        &Actor::system(),
        &project,
        Format::from_path(&args.file),
        file,
        |r| bar.set_position(r.inserted + r.duplicates),
    )?;
    bar.finish_and_clear();
    for e in &report.errors {
        eprintln!("{}: line {}: {}", args.file.display(), e.line, e.message);
    }
    println!(
        "imported {} items into {} ({} already there, {} with labels, {} bad rows)",
        report.inserted, project.name, report.duplicates, report.annotations, report.error_count
    );
    Ok(if report.error_count > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Args)]
pub struct PrelabelArgs {
    #[command(flatten)]
    db: DbArg,
    /// The project's name.
    #[arg(long)]
    project: String,
}

/// Queues a pre-labeling job; a running `wick serve` on the same database picks it up.
pub fn prelabel(args: PrelabelArgs) -> Result<ExitCode> {
    let store = args.db.open()?;
    let job = store.write(|tx| {
        let p = projects::by_name(tx, &args.project)?;
        wick::store::jobs::create(tx, &Actor::system(), p.id)
    })?;
    println!("queued pre-labeling job {} for {}", job.id, args.project);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    db: DbArg,
    /// The project's name.
    #[arg(long)]
    project: String,
    /// Preference projects: dpo, dpo-chat, openai-dpo or sft. Classification and NER projects:
    /// labels, spacy, conll (NER), sft, prompt-completion or alpaca.
    #[arg(long)]
    format: String,
    /// Output file (default: stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Preference: leave out pairs with fewer votes.
    #[arg(long, default_value_t = 1)]
    min_votes: u32,
    /// Leave out pairs or items whose answer has a smaller share of the votes or annotators (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    min_agreement: f64,
    /// Labels: leave out items whose only answers were imported.
    #[arg(long)]
    human_only: bool,
    /// Labels: keep only these labels (entity types), comma-separated.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Labels: split by the hash of each id into OUTPUT's `.train` and `.validation` files,
    /// this share (0 to 1) in validation. Needs --output.
    #[arg(long, requires = "output")]
    validation_share: Option<f64>,
}

/// Streams an export; the summary of what was left out goes to stderr.
pub fn export(args: ExportArgs) -> Result<ExitCode> {
    let store = args.db.open()?;
    let project = store.read(|c| projects::by_name(c, &args.project))?;
    let open = |path: &Option<PathBuf>| -> Result<Box<dyn std::io::Write>> {
        Ok(match path {
            Some(p) => Box::new(std::io::BufWriter::new(
                File::create(p).with_context(|| format!("creating {}", p.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        })
    };
    let summary = if project.task == TaskKind::Preference {
        let filter = wick::export::PreferenceFilter {
            min_votes: args.min_votes,
            min_agreement: args.min_agreement,
        };
        let format = args.format.parse().map_err(anyhow::Error::msg)?;
        let mut out = open(&args.output)?;
        wick::export::preferences(&store, project.id, format, filter, &mut out)?.to_string()
    } else {
        let format = args.format.parse().map_err(anyhow::Error::msg)?;
        let filter = LabelFilter {
            human_only: args.human_only,
            min_agreement: args.min_agreement,
            labels: args.labels,
            split: None,
        };
        if let (Some(path), Some(share)) = (&args.output, args.validation_share) {
            return split_export(&store, &project, format, filter, path, share);
        }
        let mut out = open(&args.output)?;
        let summary = wick::export::labels(&store, project.id, format, &filter, &mut out)?;
        drop(out);
        if let Some(path) = &args.output {
            let part = Part {
                split: "train",
                file: file_name(path),
                rows: summary.exported,
            };
            write_card(&project, format, &filter, &summary, &[part], path)?;
        }
        summary.to_string()
    };
    eprintln!("{}: {summary}", project.name);
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `dir/name.jsonl` → `dir/name.train.jsonl` and `dir/name.validation.jsonl`, each streamed.
fn split_export(
    store: &wick::store::Store,
    project: &wick::domain::Project,
    format: LabelFormat,
    filter: LabelFilter,
    path: &std::path::Path,
    share: f64,
) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&share) {
        anyhow::bail!("--validation-share must be at least 0 and below 1");
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_else(|| "jsonl".into());
    let mut parts = Vec::new();
    let mut total = LabelSummary::default();
    for side in [Split::Train, Split::Validation] {
        let file = path.with_file_name(format!("{stem}.{}.{ext}", side.name()));
        let mut out = std::io::BufWriter::new(
            File::create(&file).with_context(|| format!("creating {}", file.display()))?,
        );
        let side_filter = LabelFilter {
            split: Some((side, share)),
            ..filter.clone()
        };
        let summary = wick::export::labels(store, project.id, format, &side_filter, &mut out)?;
        eprintln!("{} ({}): {summary}", project.name, side.name());
        parts.push(Part {
            split: side.name(),
            file: file_name(&file),
            rows: summary.exported,
        });
        total.merge(summary);
    }
    let filter = LabelFilter {
        split: Some((Split::Validation, share)),
        ..filter
    };
    write_card(project, format, &filter, &total, &parts, path)?;
    Ok(ExitCode::SUCCESS)
}

/// `README.md` beside the export.
fn write_card(
    project: &wick::domain::Project,
    format: LabelFormat,
    filter: &LabelFilter,
    summary: &LabelSummary,
    parts: &[Part],
    path: &std::path::Path,
) -> Result<()> {
    let date = time::OffsetDateTime::now_utc().date().to_string();
    let card = wick::export::card::label_card(project, format, filter, summary, parts, &date);
    let readme = wick::export::card::card_path(path);
    std::fs::write(&readme, card).with_context(|| format!("writing {}", readme.display()))?;
    eprintln!("dataset card: {}", readme.display());
    Ok(())
}

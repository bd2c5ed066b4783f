//! `wick rules`: a project's labeling functions from the command line (add, list, stats,
//! apply), and `wick rules apply --rules RULES.json INPUT.jsonl`, which labels a file with rules
//! and the model, no server or database.
use super::{ModelArgs, TaskArgs, CHUNK};
use crate::cli::admin::DbArg;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use wick::formats::jsonl::{rows, TextRow};
use wick::jobs::rules::{self as apply, Method};
use wick::learn::label_model::{majority, FitOptions, LabelModel, Votes};
use wick::rules::matcher::Scratch;
use wick::rules::{Matcher, RuleSet, RuleSpec};
use wick::store::rules::{self as stored, Save};
use wick::store::{projects, Actor};
use wick::tasks::classify::ClassPrediction;
use wick::tasks::labeler::Prediction;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Add rules to a project (or a new version of those that exist) from a JSON file: one rule
    /// or a list, as the API takes them; a lookup rule may name its file with "path".
    Add {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        project: String,
        rules: PathBuf,
    },
    /// The project's current rules.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        project: String,
    },
    /// Every rule's coverage, overlaps, conflicts, agreement with the model and accuracy
    /// against people's answers.
    Stats {
        #[command(flatten)]
        db: DbArg,
        #[arg(long)]
        project: String,
        #[arg(long)]
        json: bool,
    },
    /// Apply the rules: to a project (queued for `wick serve`, or run here with --here), or to
    /// a JSONL file with --rules.
    Apply(Box<ApplyArgs>),
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    LabelModel,
    Majority,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::LabelModel => Method::LabelModel,
            MethodArg::Majority => Method::Majority,
        }
    }
}

#[derive(Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    db: DbArg,
    /// The project whose rules to apply.
    #[arg(long, required_unless_present = "rules", conflicts_with = "rules")]
    project: Option<String>,
    /// Run the job in this process instead of queueing it for `wick serve` (do not run both on
    /// one database).
    #[arg(long, requires = "project")]
    here: bool,
    /// Label a file instead: the rules (a JSON list, as the API takes them).
    #[arg(long, requires = "input")]
    rules: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = MethodArg::LabelModel)]
    method: MethodArg,
    /// File mode: the task and label set the model votes with (the labels also check the rules).
    #[command(flatten)]
    task: Option<TaskArgs>,
    #[command(flatten)]
    model: ModelArgs,
    /// File mode: rules alone, no model voter.
    #[arg(long)]
    no_model: bool,
    /// File mode: the "label" field of the first N rows is taken as people's answers, which
    /// anchor the label model's fit (as answered items do in a project).
    #[arg(long, default_value_t = 0)]
    known_labels: usize,
    /// File mode: JSONL rows with a "text" field.
    input: Option<PathBuf>,
    /// File mode: output JSONL (default: stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn run(cmd: RulesCommand) -> Result<ExitCode> {
    match cmd {
        RulesCommand::Add { db, project, rules } => add(&db, &project, &rules),
        RulesCommand::List { db, project } => list(&db, &project),
        RulesCommand::Stats { db, project, json } => stats(&db, &project, json),
        RulesCommand::Apply(args) => match (&args.project, &args.rules, &args.input) {
            (Some(p), _, _) => apply_project(&args.db, p, args.method.into(), args.here),
            (None, Some(rules), Some(input)) => apply_file(&args, rules, input),
            _ => bail!("give --project P, or --rules RULES.json INPUT.jsonl"),
        },
    }
}

/// The rule specs of a JSON file (one or a list); a lookup rule's "path" is read into "file",
/// relative to the JSON file.
fn read_specs(path: &Path) -> Result<Vec<RuleSpec>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let list = match value {
        Value::Array(list) => list,
        one => vec![one],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            if let Some(file) = v.get("path").and_then(Value::as_str).map(PathBuf::from) {
                let file = path.parent().unwrap_or(Path::new(".")).join(file);
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                v["file"] = json!(String::from_utf8_lossy(&bytes));
                v["file_name"] = json!(file
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default());
                if let Some(o) = v.as_object_mut() {
                    o.remove("path");
                }
            }
            serde_json::from_value(v).with_context(|| format!("{}: rule {}", path.display(), i + 1))
        })
        .collect()
}

fn add(db: &DbArg, project: &str, file: &Path) -> Result<ExitCode> {
    let store = db.open()?;
    let p = store.read(|c| projects::by_name(c, project))?;
    for spec in read_specs(file)? {
        let name = spec.name.clone();
        let rule = spec
            .validated(p.task, &p.labels)
            .with_context(|| format!("rule {name:?}"))?;
        apply::compile_rules(&store, &p, vec![rule.clone()])
            .with_context(|| format!("rule {name:?}"))?;
        let exists = store
            .read(|c| stored::current(c, p.id))?
            .iter()
            .any(|r| r.spec.name == rule.name());
        let how = if exists { Save::Update } else { Save::Add };
        let saved = store.write(|tx| stored::save(tx, &Actor::system(), p.id, &rule, how))?;
        println!(
            "{} {} (version {})",
            if exists { "updated" } else { "added" },
            name,
            saved.version
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(db: &DbArg, project: &str) -> Result<ExitCode> {
    let store = db.open()?;
    let p = store.read(|c| projects::by_name(c, project))?;
    for r in store.read(|c| stored::current(c, p.id))? {
        let what = match &r.spec.matcher {
            Matcher::Keywords { terms, .. } | Matcher::Lookup { terms, .. } => {
                format!("{} terms", terms.len())
            }
            Matcher::Regex { pattern, .. } => pattern.clone(),
            Matcher::Similar {
                examples,
                threshold,
            } => format!("{} examples ≥ {threshold}", examples.len()),
        };
        println!(
            "{}\t{}\t{}\tv{}\t{}",
            r.spec.name,
            r.spec.matcher.kind(),
            r.spec.label,
            r.version,
            what
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn share(v: Option<f64>) -> String {
    v.map_or("—".into(), |s| format!("{:.1}%", 100.0 * s))
}

fn stats(db: &DbArg, project: &str, as_json: bool) -> Result<ExitCode> {
    let store = db.open()?;
    let p = store.read(|c| projects::by_name(c, project))?;
    let table = wick::app::rules::rules_table(&store, p.id)?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&table)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("rule\tlabel\tcoverage\thits\toverlaps\tconflicts\tmodel agreement\taccuracy (correct/annotated)");
    for r in &table.rules {
        let f = &r.figures;
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{} of {}\t{} ({}/{})",
            r.rule.spec.name,
            r.rule.spec.label,
            share(r.coverage),
            f.hits,
            f.overlaps,
            f.conflicts,
            share(r.model_agreement),
            f.with_model,
            share(r.accuracy),
            f.correct,
            f.annotated
        );
    }
    println!(
        "all rules: {} of {} items covered ({}), {} with conflicting votes; {} of {} answered items covered",
        table.covered, table.items, share(table.coverage), table.conflicted, table.annotated_covered, table.annotated
    );
    Ok(ExitCode::SUCCESS)
}

fn apply_project(db: &DbArg, project: &str, method: Method, here: bool) -> Result<ExitCode> {
    let store = db.open()?;
    let p = store.read(|c| projects::by_name(c, project))?;
    if apply::compile(&store, &p)?.is_empty() {
        bail!("project {project} has no rules to apply");
    }
    let job = store.write(|tx| {
        stored::queue_apply(tx, &Actor::system(), p.id, &json!({ "method": method }))
    })?;
    if !here {
        println!(
            "queued rules job {} for {project} (run by wick serve; --here runs it now)",
            job.id
        );
        return Ok(ExitCode::SUCCESS);
    }
    apply::run(&store, &job).map_err(|e| {
        let _ = store.write(|tx| {
            wick::store::jobs::finish(
                tx,
                job.id,
                wick::store::jobs::JobStatus::Failed,
                Some(&e.to_string()),
            )
        });
        anyhow::anyhow!("applying the rules: {e}")
    })?;
    let summary = store.read(|c| stored::job_params(c, job.id))?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(ExitCode::SUCCESS)
}

/// File mode: every row's rule votes (and the model's label), combined over the whole file,
/// written as the input rows with `label`, `confidence`, `scores`, `votes` and `source`.
fn apply_file(args: &ApplyArgs, rules: &Path, input: &Path) -> Result<ExitCode> {
    let specs = read_specs(rules)?;
    let model = if args.no_model {
        None
    } else {
        Some(args.model.load()?)
    };
    let labeler = match (&model, &args.task) {
        (Some(m), Some(task)) => Some(task.labeler(m)?),
        (Some(_), None) => {
            bail!("the model votes over a label set: give --task and --labels (or --no-model)")
        }
        _ => None,
    };
    let labels: Vec<String> = match &args.task {
        Some(task) => task.label_set()?.names,
        None => {
            let mut seen: Vec<String> = Vec::new();
            for s in &specs {
                if !seen.contains(&s.label) {
                    seen.push(s.label.clone());
                }
            }
            seen
        }
    };
    let mut checked = Vec::new();
    for s in specs {
        let name = s.name.clone();
        if matches!(s.matcher, Matcher::Similar { .. }) {
            bail!("rule {name:?}: similarity rules read a project's stored embeddings; use them in a project");
        }
        checked.push(
            s.validated(wick::domain::TaskKind::Classification, &labels)
                .with_context(|| format!("rule {name:?}"))?,
        );
    }
    let set = RuleSet::compile(checked, &labels, &Default::default())?;
    let voters = set.len() + usize::from(labeler.is_some());
    let mut votes = Votes::new(voters, labels.len());
    let mut model_scores: Vec<Option<Value>> = Vec::new();
    let mut kept: Vec<TextRow> = Vec::new();
    let mut bad = 0usize;
    let mut scratch = Scratch::default();
    let mut fired = Vec::new();
    let reader =
        BufReader::new(File::open(input).with_context(|| format!("opening {}", input.display()))?);
    let mut chunk: Vec<TextRow> = Vec::new();
    let known_labels = args.known_labels;
    let mut flush = |chunk: &mut Vec<TextRow>, votes: &mut Votes| -> Result<()> {
        let predicted = match &labeler {
            Some(l) => l
                .label(&chunk.iter().map(|r| r.text.as_str()).collect::<Vec<_>>())?
                .into_iter()
                .map(Some)
                .collect(),
            None => vec![None; chunk.len()],
        };
        for (row, prediction) in chunk.drain(..).zip(predicted) {
            set.fired(&row.text, None, &mut scratch, &mut fired);
            let mut v: Vec<(usize, usize)> = fired.iter().map(|&r| (r, set.label_of(r))).collect();
            let model_json = match prediction {
                Some(Prediction::Class(c)) => {
                    if let Some(i) = labels.iter().position(|l| *l == c.label) {
                        v.push((set.len(), i));
                    }
                    Some(Prediction::Class(c).to_json())
                }
                _ => None,
            };
            votes.push(&v)?;
            if kept.len() < known_labels {
                let gold = row.fields.get("label").and_then(Value::as_str);
                if let Some(i) = gold.and_then(|g| labels.iter().position(|l| l == g)) {
                    votes.know_last(i)?;
                }
            }
            model_scores.push(model_json);
            kept.push(row);
        }
        Ok(())
    };
    for row in rows(reader) {
        match row {
            Ok(r) => {
                chunk.push(r);
                if chunk.len() == CHUNK {
                    flush(&mut chunk, &mut votes)?;
                }
            }
            Err(b) => {
                eprintln!("{}: {b}", input.display());
                bad += 1;
            }
        }
    }
    flush(&mut chunk, &mut votes)?;
    let fitted = match (Method::from(args.method), votes.is_empty()) {
        (Method::LabelModel, false) => Some(LabelModel::fit(
            &votes,
            &FitOptions::balanced(&votes, labeler.as_ref().map(|_| set.len())),
        )?),
        _ => None,
    };
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    for (i, row) in kept.into_iter().enumerate() {
        let v = votes.item(i);
        let rule_votes: serde_json::Map<String, Value> = v
            .iter()
            .filter(|(voter, _)| (*voter as usize) < set.len())
            .map(|&(voter, l)| {
                (
                    set.rules()[voter as usize].name().to_string(),
                    json!(labels[l as usize]),
                )
            })
            .collect();
        let mut fields = row.fields;
        if rule_votes.is_empty() {
            // No rule spoke: the model's own prediction, if there is one.
            fields.insert(
                "source".into(),
                json!(model_scores[i].as_ref().map(|_| "model")),
            );
            if let Some(m) = &model_scores[i] {
                fields.insert("prediction".into(), m.clone());
            }
        } else {
            let p = match &fitted {
                Some(m) => m.posterior(v),
                None => majority(v, labels.len()).unwrap_or_default(),
            };
            let combined = ClassPrediction::from_distribution(&labels, &p);
            fields.insert("prediction".into(), Prediction::Class(combined).to_json());
            fields.insert("votes".into(), Value::Object(rule_votes));
            if let Some(m) = &model_scores[i] {
                fields.insert("model_prediction".into(), m.clone());
            }
            fields.insert("source".into(), json!("rules"));
        }
        fields.insert("rules_hash".into(), json!(set.hash()));
        serde_json::to_writer(&mut out, &Value::Object(fields))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if let Some(m) = &fitted {
        for (i, r) in set.rules().iter().enumerate() {
            eprintln!("{}: estimated accuracy {:.3}", r.name(), m.accuracy(i));
        }
        if labeler.is_some() {
            eprintln!("model: estimated accuracy {:.3}", m.accuracy(set.len()));
        }
    }
    if bad > 0 {
        eprintln!("{bad} bad line(s) skipped; the other rows were labeled");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

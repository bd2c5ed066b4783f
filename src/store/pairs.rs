//! Preference projects: prompts with candidate responses, the pairs of responses people vote
//! on, and the votes (append-only). A pair is shown with its sides in an order fixed per rater,
//! and each vote records which response was on the left, so position bias can be measured.
use super::batches::{in_batches, ImportReport};
use super::projects;
use super::users::User;
use super::{audit, format_ms, now_ms, Actor, Page, Result, Store, StoreError};
use crate::domain::{Project, QueueOrder, TaskKind};
use crate::formats::jsonl::BadLine;
use crate::formats::pairs::{PairRow, Prompt};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A vote as the rater gives it: about what they saw on the left (A) and right (B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    A,
    B,
    Tie,
    BothBad,
}

impl Choice {
    fn as_str(self) -> &'static str {
        match self {
            Choice::A => "a",
            Choice::B => "b",
            Choice::Tie => "tie",
            Choice::BothBad => "both_bad",
        }
    }

    fn swapped(self) -> Self {
        match self {
            Choice::A => Choice::B,
            Choice::B => Choice::A,
            other => other,
        }
    }
}

fn content_id(row: &PairRow) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_string(&row.prompt).unwrap_or_default());
    for r in &row.responses {
        h.update([0u8]);
        h.update(r.as_bytes());
    }
    let d = h.finalize();
    format!(
        "sha256:{}",
        d[..10]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

/// Imports prompts with their responses; each pair of responses becomes a comparison, and a
/// chosen/rejected row also brings its vote (source `import`). Batches as `import::import`.
pub fn import(
    store: &Store,
    actor: &Actor,
    project_id: i64,
    rows: impl Iterator<Item = Result<PairRow, BadLine>>,
) -> Result<ImportReport> {
    let project = store.read(|c| projects::get(c, project_id))?;
    if project.task != TaskKind::Preference {
        return Err(StoreError::invalid(
            "project",
            "pairs go into a preference project",
        ));
    }
    in_batches(
        store,
        rows,
        |tx, batch, report| write_batch(tx, actor, &project, batch, report),
        &mut |_| {},
    )
}

fn write_batch(
    tx: &Transaction,
    actor: &Actor,
    project: &Project,
    batch: &[PairRow],
    report: &mut ImportReport,
) -> Result<()> {
    let now = now_ms();
    let (mut inserted, mut duplicates) = (0u64, 0u64);
    for row in batch {
        let ext_id = row.id.clone().unwrap_or_else(|| content_id(row));
        let meta = row
            .meta
            .as_ref()
            .map(|m| serde_json::Value::Object(m.clone()).to_string());
        let prompt = serde_json::to_string(&row.prompt).unwrap_or_default();
        let added = tx
            .prepare_cached(
                "INSERT INTO items (project_id, ext_id, text, meta, prompt, created_at, priority) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)
                 ON CONFLICT (project_id, ext_id) DO NOTHING",
            )?
            .execute(params![project.id, ext_id, row.prompt.as_text(), meta, prompt, now])?;
        if added == 0 {
            duplicates += 1;
            continue;
        }
        inserted += 1;
        let item_id = tx.last_insert_rowid();
        let mut ids = Vec::with_capacity(row.responses.len());
        for (i, text) in row.responses.iter().enumerate() {
            let source = row
                .sources
                .as_ref()
                .and_then(|s| s.get(i).cloned())
                .unwrap_or_else(|| format!("response {}", i + 1));
            tx.prepare_cached("INSERT INTO responses (item_id, position, text, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![item_id, i as i64, text, source, now])?;
            ids.push(tx.last_insert_rowid());
        }
        let comparisons = insert_comparisons(tx, project, item_id, &ids)?;
        if let Some((winner, loser)) = row.preferred {
            if let Some(&((i, _), cmp)) = comparisons
                .iter()
                .find(|((i, j), _)| (*i, *j) == (winner.min(loser), winner.max(loser)))
            {
                let choice = if winner == i { Choice::A } else { Choice::B };
                tx.prepare_cached(
                    "INSERT INTO votes (comparison_id, user_id, source, choice, guideline_version, created_at)
                     VALUES (?1, NULL, 'import', ?2, ?3, ?4)",
                )?
                .execute(params![cmp, choice.as_str(), project.guidelines.version, now])?;
                tx.prepare_cached(
                    "UPDATE comparisons SET votes = 1, done = (1 >= ?2) WHERE id = ?1",
                )?
                .execute(params![cmp, project.overlap])?;
                report.annotations += 1;
            }
        }
    }
    report.inserted += inserted;
    report.duplicates += duplicates;
    audit::record(
        tx,
        actor,
        "pairs.import",
        &format!("project:{}", project.id),
        &serde_json::json!({"inserted": inserted, "duplicates": duplicates, "lines": [batch[0].line, batch[batch.len() - 1].line]}),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct Side {
    pub id: i64,
    pub text: String,
}

/// A pair as one rater sees it.
#[derive(Debug, Serialize)]
pub struct PairView {
    pub id: i64,
    pub item_id: i64,
    pub ext_id: String,
    pub prompt: Prompt,
    pub left: Side,
    pub right: Side,
    pub guideline_version: i64,
}

/// Which side a rater sees first, fixed per (rater, pair) so a reload shows the same order,
/// and balanced across raters.
fn a_on_left(user_id: i64, comparison_id: i64) -> bool {
    let d = Sha256::digest(format!("{user_id}:{comparison_id}").as_bytes());
    d[0] & 1 == 0
}

fn parse_prompt(json: Option<String>, text: String) -> Prompt {
    json.and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or(Prompt::Text(text))
}

/// The next pair for `user`, leased to them: never one they voted on or one leased to
/// someone else, until it has the votes the project wants.
pub fn next(
    tx: &Transaction,
    user: &User,
    project_id: i64,
    exclude: &[i64],
) -> Result<Option<PairView>> {
    let project = projects::visible(tx, user, project_id)?;
    let now = now_ms();
    let exclude = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into());
    let found: Option<(i64, i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT c.id, c.item_id, c.a, c.b FROM comparisons c INDEXED BY comparisons_queue
             WHERE c.project_id = ?1 AND c.done = 0
               AND (c.lease_until < ?2 OR c.lease_user = ?3)
               AND NOT EXISTS (SELECT 1 FROM votes v WHERE v.comparison_id = c.id AND v.user_id = ?3)
               AND c.id NOT IN (SELECT value FROM json_each(?4))
             ORDER BY c.priority, c.id LIMIT 1",
        )?
        .query_row(params![project_id, now, user.id, exclude], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((id, item_id, a, b)) = found else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE comparisons SET lease_user = ?2, lease_until = ?3 WHERE id = ?1")?
        .execute(params![id, user.id, now + super::queue::LEASE_MS])?;
    let (ext_id, text, prompt): (String, String, Option<String>) = tx
        .prepare_cached("SELECT ext_id, text, prompt FROM items WHERE id = ?1")?
        .query_row([item_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let side = |rid: i64| -> Result<Side> {
        Ok(Side {
            id: rid,
            text: tx
                .prepare_cached("SELECT text FROM responses WHERE id = ?1")?
                .query_row([rid], |r| r.get(0))?,
        })
    };
    let (left, right) = if a_on_left(user.id, id) {
        (side(a)?, side(b)?)
    } else {
        (side(b)?, side(a)?)
    };
    Ok(Some(PairView {
        id,
        item_id,
        ext_id,
        prompt: parse_prompt(prompt, text),
        left,
        right,
        guideline_version: project.guidelines.version,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteIn {
    /// About the displayed sides: `a` is the left response, `b` the right one.
    pub choice: Choice,
    /// The response that was shown on the left.
    pub left: i64,
    /// 1 slightly, 2 clearly, 3 much better; only with `a` or `b`.
    pub strength: Option<u8>,
    pub rationale: Option<String>,
    pub seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Vote {
    pub id: i64,
    pub comparison_id: i64,
    pub user: Option<String>,
    pub source: String,
    /// Canonical: `a` and `b` are the comparison's first and second response.
    pub choice: String,
    pub strength: Option<u8>,
    pub rationale: Option<String>,
    pub left_response: Option<i64>,
    pub seconds: Option<f64>,
    pub guideline_version: Option<i64>,
    pub created_at: String,
}

const MAX_RATIONALE: usize = 5000;

pub fn vote(
    tx: &Transaction,
    actor: &Actor,
    user: &User,
    comparison_id: i64,
    v: VoteIn,
) -> Result<Vote> {
    let (project_id, a, b): (i64, i64, i64) = tx
        .prepare_cached("SELECT project_id, a, b FROM comparisons WHERE id = ?1")?
        .query_row([comparison_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("pair {comparison_id}")))?;
    let project = projects::visible_for(tx, user, project_id, &format!("pair {comparison_id}"))?;
    if v.left != a && v.left != b {
        return Err(StoreError::invalid(
            "left",
            format!("response {} is not in pair {comparison_id}", v.left),
        ));
    }
    match (v.choice, v.strength) {
        (Choice::A | Choice::B, Some(s)) if !(1..=3).contains(&s) => {
            return Err(StoreError::invalid(
                "strength",
                "1 (slightly), 2 (clearly) or 3 (much better)",
            ))
        }
        (Choice::Tie | Choice::BothBad, Some(_)) => {
            return Err(StoreError::invalid("strength", "only for a or b"))
        }
        _ => {}
    }
    if let Some(s) = v.seconds {
        if !(0.0..=86_400.0).contains(&s) {
            return Err(StoreError::invalid("seconds", "between 0 and 86400"));
        }
    }
    let rationale = v
        .rationale
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    if rationale
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_RATIONALE)
    {
        return Err(StoreError::invalid(
            "rationale",
            format!("at most {MAX_RATIONALE} characters"),
        ));
    }
    let already: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM votes WHERE comparison_id = ?1 AND user_id = ?2)",
        )?
        .query_row(params![comparison_id, user.id], |r| r.get(0))?;
    if already {
        return Err(StoreError::Conflict(format!(
            "you already voted on pair {comparison_id}"
        )));
    }
    let choice = if v.left == a {
        v.choice
    } else {
        v.choice.swapped()
    };
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO votes (comparison_id, user_id, source, choice, strength, rationale, left_response, seconds, guideline_version, created_at)
         VALUES (?1, ?2, 'human', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![comparison_id, user.id, choice.as_str(), v.strength, rationale, v.left, v.seconds, project.guidelines.version, now])?;
    let id = tx.last_insert_rowid();
    tx.prepare_cached(
        "UPDATE comparisons SET votes = votes + 1, done = (votes + 1 >= ?2),
             lease_user = CASE WHEN lease_user = ?3 THEN NULL ELSE lease_user END,
             lease_until = CASE WHEN lease_user = ?3 THEN 0 ELSE lease_until END
         WHERE id = ?1",
    )?
    .execute(params![comparison_id, project.overlap, user.id])?;
    audit::record(
        tx,
        actor,
        "vote.create",
        &format!("pair:{comparison_id}"),
        &serde_json::json!({"vote_id": id, "choice": choice, "strength": v.strength, "left": v.left}),
    )?;
    Ok(Vote {
        id,
        comparison_id,
        user: Some(user.name.clone()),
        source: "human".into(),
        choice: choice.as_str().into(),
        strength: v.strength,
        rationale,
        left_response: Some(v.left),
        seconds: v.seconds,
        guideline_version: Some(project.guidelines.version),
        created_at: format_ms(now),
    })
}

/// Votes on a pair summed up.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    pub a: u32,
    pub b: u32,
    pub tie: u32,
    pub both_bad: u32,
    /// Mean strength (1 to 3) of the votes for a, and for b.
    pub strength_a: Option<f64>,
    pub strength_b: Option<f64>,
}

impl Tally {
    pub fn votes(&self) -> u32 {
        self.a + self.b + self.tie + self.both_bad
    }

    /// The most common outcome, if one outnumbers the others.
    pub fn majority(&self) -> Option<Choice> {
        let counts = [
            (Choice::A, self.a),
            (Choice::B, self.b),
            (Choice::Tie, self.tie),
            (Choice::BothBad, self.both_bad),
        ];
        let top = counts.iter().map(|c| c.1).max().unwrap_or(0);
        let mut winners = counts.iter().filter(|c| c.1 == top && top > 0);
        match (winners.next(), winners.next()) {
            (Some(w), None) => Some(w.0),
            _ => None,
        }
    }

    /// Share of votes for the majority outcome (0 with no votes).
    pub fn agreement(&self) -> f64 {
        let n = self.votes();
        if n == 0 {
            return 0.0;
        }
        let top = [self.a, self.b, self.tie, self.both_bad]
            .into_iter()
            .max()
            .unwrap_or(0);
        f64::from(top) / f64::from(n)
    }

    /// No outcome has more than half of the votes.
    pub fn split(&self) -> bool {
        self.votes() > 0 && self.agreement() <= 0.5
    }
}

/// A vote without a strength (an imported one, or a rater who gave none) counts as 1, the
/// weakest claim, so every decided pair has a margin and exports keep one set of columns.
const TALLY_SQL: &str = "SUM(v.choice = 'a'), SUM(v.choice = 'b'), SUM(v.choice = 'tie'), SUM(v.choice = 'both_bad'),
    AVG(CASE WHEN v.choice = 'a' THEN COALESCE(v.strength, 1) END), AVG(CASE WHEN v.choice = 'b' THEN COALESCE(v.strength, 1) END)";

fn tally_at(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Tally> {
    Ok(Tally {
        a: r.get::<_, Option<u32>>(at)?.unwrap_or(0),
        b: r.get::<_, Option<u32>>(at + 1)?.unwrap_or(0),
        tie: r.get::<_, Option<u32>>(at + 2)?.unwrap_or(0),
        both_bad: r.get::<_, Option<u32>>(at + 3)?.unwrap_or(0),
        strength_a: r.get(at + 4)?,
        strength_b: r.get(at + 5)?,
    })
}

/// One pair with its responses and tally, for exports and the pairs list.
#[derive(Debug, Serialize)]
pub struct PairSummary {
    pub id: i64,
    pub ext_id: String,
    pub prompt: Prompt,
    pub a: Side,
    pub b: Side,
    pub source_a: String,
    pub source_b: String,
    pub tally: Tally,
    pub majority: Option<Choice>,
    pub agreement: f64,
    pub split: bool,
}

const SUMMARY_SQL: &str =
    "SELECT c.id, i.ext_id, i.text, i.prompt, ra.id, ra.text, ra.source, rb.id, rb.text, rb.source";
const SUMMARY_FROM: &str = "FROM comparisons c JOIN items i ON i.id = c.item_id
    JOIN responses ra ON ra.id = c.a JOIN responses rb ON rb.id = c.b
    JOIN votes v ON v.comparison_id = c.id";

fn summary_from_row(r: &rusqlite::Row) -> rusqlite::Result<PairSummary> {
    let tally = tally_at(r, 10)?;
    Ok(PairSummary {
        id: r.get(0)?,
        ext_id: r.get(1)?,
        prompt: parse_prompt(r.get(3)?, r.get(2)?),
        a: Side {
            id: r.get(4)?,
            text: r.get(5)?,
        },
        source_a: r.get(6)?,
        b: Side {
            id: r.get(7)?,
            text: r.get(8)?,
        },
        source_b: r.get(9)?,
        majority: tally.majority(),
        agreement: tally.agreement(),
        split: tally.split(),
        tally,
    })
}

/// Every pair of the project with at least one vote, in id order, handed to `each` one at a
/// time: nothing is held in memory beyond the row being read.
pub fn for_each_voted(
    conn: &Connection,
    project_id: i64,
    mut each: impl FnMut(PairSummary) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(&format!(
        "{SUMMARY_SQL}, {TALLY_SQL} {SUMMARY_FROM} WHERE c.project_id = ?1 GROUP BY c.id ORDER BY c.id"
    ))?;
    let mut rows = stmt.query([project_id])?;
    while let Some(r) = rows.next()? {
        each(summary_from_row(r)?)?;
    }
    Ok(())
}

/// Voted pairs after `after`, with their majority, agreement and split flag; `split_only`
/// keeps the pairs whose votes split (no outcome has more than half).
pub fn list_voted(
    conn: &Connection,
    project_id: i64,
    after: Option<i64>,
    limit: usize,
    split_only: bool,
) -> Result<Page<PairSummary>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SUMMARY_SQL}, {TALLY_SQL} {SUMMARY_FROM} WHERE c.project_id = ?1 AND c.id > ?2 GROUP BY c.id
         HAVING NOT ?3 OR 2 * max(SUM(v.choice = 'a'), SUM(v.choice = 'b'), SUM(v.choice = 'tie'), SUM(v.choice = 'both_bad')) <= COUNT(v.id)
         ORDER BY c.id LIMIT ?4"
    ))?;
    let rows = stmt
        .query_map(
            params![project_id, after.unwrap_or(0), split_only, limit as i64 + 1],
            summary_from_row,
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Page::from_rows(rows, limit, |p| p.id))
}

/// One vote as a ranking sees it: the two sources and the canonical outcome, in vote order.
#[derive(Debug, Clone)]
pub struct SourceVote {
    pub source_a: String,
    pub source_b: String,
    pub choice: String,
    /// Whether response a was shown on the left (None for imported votes).
    pub a_left: Option<bool>,
}

pub fn source_votes(conn: &Connection, project_id: i64) -> Result<Vec<SourceVote>> {
    let mut stmt = conn.prepare(
        "SELECT ra.source, rb.source, v.choice, v.left_response = c.a
         FROM votes v JOIN comparisons c ON c.id = v.comparison_id
           JOIN responses ra ON ra.id = c.a JOIN responses rb ON rb.id = c.b
         WHERE c.project_id = ?1 ORDER BY v.id",
    )?;
    let rows = stmt.query_map([project_id], |r| {
        Ok(SourceVote {
            source_a: r.get(0)?,
            source_b: r.get(1)?,
            choice: r.get(2)?,
            a_left: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The project of a pair, for access checks.
pub fn project_of(conn: &Connection, comparison_id: i64) -> Result<i64> {
    conn.prepare_cached("SELECT project_id FROM comparisons WHERE id = ?1")?
        .query_row([comparison_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("pair {comparison_id}")))
}

/// A response the model wrote, with what it was sampled with.
#[derive(Debug, Clone)]
pub struct Generated {
    pub text: String,
    pub source: String,
    pub model_id: String,
    pub settings: serde_json::Value,
    pub prompt_version: String,
}

/// Stores a prompt's generated responses and a comparison for each pair of them.
pub fn add_generated(
    tx: &Transaction,
    project: &Project,
    item_id: i64,
    responses: &[Generated],
) -> Result<()> {
    let now = now_ms();
    let mut ids = Vec::with_capacity(responses.len());
    for (i, g) in responses.iter().enumerate() {
        tx.prepare_cached(
            "INSERT INTO responses (item_id, position, text, source, model_id, settings, prompt_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![item_id, i as i64, g.text, g.source, g.model_id, g.settings.to_string(), g.prompt_version, now])?;
        ids.push(tx.last_insert_rowid());
    }
    insert_comparisons(tx, project, item_id, &ids)?;
    Ok(())
}

/// A comparison for each pair of an item's responses (given by id, in position order); returns
/// each pair's positions with the comparison's id.
fn insert_comparisons(
    tx: &Transaction,
    project: &Project,
    item_id: i64,
    ids: &[i64],
) -> Result<Vec<((usize, usize), i64)>> {
    let mut out = Vec::with_capacity(ids.len() * ids.len().saturating_sub(1) / 2);
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            let priority = match project.queue_order {
                QueueOrder::Random => rand::random::<f64>(),
                _ => 0.0,
            };
            tx.prepare_cached("INSERT INTO comparisons (project_id, item_id, a, b, priority) VALUES (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![project.id, item_id, ids[i], ids[j], priority])?;
            out.push(((i, j), tx.last_insert_rowid()));
        }
    }
    Ok(out)
}

/// An item's responses with their provenance, in position order.
#[derive(Debug, Serialize)]
pub struct ResponseRow {
    pub id: i64,
    pub position: i64,
    pub text: String,
    pub source: String,
    pub model_id: Option<String>,
    pub settings: Option<serde_json::Value>,
    pub prompt_version: Option<String>,
}

pub fn responses(conn: &Connection, item_id: i64) -> Result<Vec<ResponseRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, position, text, source, model_id, settings, prompt_version FROM responses WHERE item_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([item_id], |r| {
        let settings: Option<String> = r.get(5)?;
        Ok(ResponseRow {
            id: r.get(0)?,
            position: r.get(1)?,
            text: r.get(2)?,
            source: r.get(3)?,
            model_id: r.get(4)?,
            settings: settings.and_then(|s| serde_json::from_str(&s).ok()),
            prompt_version: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A vote as an item's history shows it: who preferred which response.
#[derive(Debug, Serialize)]
pub struct VoteRow {
    pub id: i64,
    pub comparison_id: i64,
    pub user: Option<String>,
    pub source: String,
    pub choice: String,
    /// Positions (1-based) of the pair's two responses, and of the one shown on the left.
    pub a: i64,
    pub b: i64,
    pub left: Option<i64>,
    pub strength: Option<u8>,
    pub rationale: Option<String>,
    pub seconds: Option<f64>,
    pub guideline_version: Option<i64>,
    pub created_at: String,
}

/// Every vote on the pairs of an item, oldest first.
pub fn votes_for_item(conn: &Connection, item_id: i64) -> Result<Vec<VoteRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.id, v.comparison_id, u.name, v.source, v.choice, ra.position + 1, rb.position + 1,
                rl.position + 1, v.strength, v.rationale, v.seconds, v.guideline_version, v.created_at
         FROM votes v JOIN comparisons c ON c.id = v.comparison_id
           JOIN responses ra ON ra.id = c.a JOIN responses rb ON rb.id = c.b
           LEFT JOIN responses rl ON rl.id = v.left_response
           LEFT JOIN users u ON u.id = v.user_id
         WHERE c.item_id = ?1 ORDER BY v.id",
    )?;
    let rows = stmt.query_map([item_id], |r| {
        Ok(VoteRow {
            id: r.get(0)?,
            comparison_id: r.get(1)?,
            user: r.get(2)?,
            source: r.get(3)?,
            choice: r.get(4)?,
            a: r.get(5)?,
            b: r.get(6)?,
            left: r.get(7)?,
            strength: r.get(8)?,
            rationale: r.get(9)?,
            seconds: r.get(10)?,
            guideline_version: r.get(11)?,
            created_at: format_ms(r.get(12)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

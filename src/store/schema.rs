//! Schema migrations, applied in order; `schema_migrations` records which ran.
//! A migration is never edited once released: add a new one.

pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'annotator')),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL CHECK (task IN ('classification', 'ner', 'preference')),
    labels TEXT NOT NULL,
    prompt TEXT NOT NULL,
    queue_order TEXT NOT NULL CHECK (queue_order IN ('uncertainty', 'sequential', 'random')),
    overlap INTEGER NOT NULL CHECK (overlap >= 1),
    created_at INTEGER NOT NULL
);
CREATE TABLE guidelines (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (project_id, version)
);
CREATE TABLE members (
    project_id INTEGER NOT NULL REFERENCES projects(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
-- annotators: distinct people (or an import) who answered; done: annotators >= overlap.
-- priority orders the queue (lower first); lease_* keep two people off one item.
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    ext_id TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT,
    created_at INTEGER NOT NULL,
    annotators INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    priority REAL NOT NULL,
    lease_user INTEGER,
    lease_until INTEGER NOT NULL DEFAULT 0,
    UNIQUE (project_id, ext_id)
);
CREATE INDEX items_queue ON items (project_id, priority, id) WHERE done = 0;
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    model_id TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    labels_hash TEXT NOT NULL,
    label TEXT,
    output TEXT NOT NULL,
    confidence REAL NOT NULL,
    margin REAL NOT NULL,
    entropy REAL NOT NULL,
    truncated INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX predictions_item ON predictions (item_id, model_id, prompt_version);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    user_id INTEGER REFERENCES users(id),
    source TEXT NOT NULL CHECK (source IN ('human', 'import')),
    value TEXT NOT NULL,
    accepted INTEGER,
    seconds REAL,
    guideline_version INTEGER,
    prediction_id INTEGER REFERENCES predictions(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX annotations_item ON annotations (item_id, user_id);
CREATE INDEX annotations_user ON annotations (user_id, item_id);
CREATE TABLE skips (
    user_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, item_id)
) WITHOUT ROWID;
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('prelabel', 'generate')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    model_id TEXT,
    prompt_version TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    run_started_at INTEGER,
    run_done_at_start INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    user_id INTEGER REFERENCES users(id),
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT,
    addr TEXT,
    created_at INTEGER NOT NULL
);
"#,
    // Preference projects: an item is a prompt, `responses` its candidate answers, and
    // `comparisons` the pairs of them people vote on (the unit of the vote queue).
    r#"
ALTER TABLE items ADD COLUMN prompt TEXT;
-- Sampling settings for generated responses (JSON), preference projects only.
ALTER TABLE projects ADD COLUMN generation TEXT;
CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    source TEXT NOT NULL,
    model_id TEXT,
    settings TEXT,
    prompt_version TEXT,
    created_at INTEGER NOT NULL,
    UNIQUE (item_id, position)
);
CREATE TABLE comparisons (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    item_id INTEGER NOT NULL REFERENCES items(id),
    a INTEGER NOT NULL REFERENCES responses(id),
    b INTEGER NOT NULL REFERENCES responses(id),
    votes INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    priority REAL NOT NULL,
    lease_user INTEGER,
    lease_until INTEGER NOT NULL DEFAULT 0,
    UNIQUE (a, b)
);
CREATE INDEX comparisons_queue ON comparisons (project_id, priority, id) WHERE done = 0;
CREATE INDEX comparisons_item ON comparisons (item_id);
-- choice is canonical (a/b of the comparison); left_response records what the rater saw on the left.
CREATE TABLE votes (
    id INTEGER PRIMARY KEY,
    comparison_id INTEGER NOT NULL REFERENCES comparisons(id),
    user_id INTEGER REFERENCES users(id),
    source TEXT NOT NULL CHECK (source IN ('human', 'import')),
    choice TEXT NOT NULL CHECK (choice IN ('a', 'b', 'tie', 'both_bad')),
    strength INTEGER CHECK (strength BETWEEN 1 AND 3),
    rationale TEXT,
    left_response INTEGER REFERENCES responses(id),
    seconds REAL,
    guideline_version INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX votes_comparison ON votes (comparison_id, user_id);
"#,
    // Quality: gold items, the adjudication queue, item resolutions (a reviewer's decision or an
    // auto-accepted prediction), a reviewer role, and instruction-dataset projects.
    // Tables are rebuilt to widen CHECKs; `migrate` runs with foreign keys off and checks them
    // before committing.
    r#"
CREATE TABLE users_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'reviewer', 'annotator')),
    password_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO users_new SELECT id, name, role, password_hash, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE TABLE projects_new (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL CHECK (task IN ('classification', 'ner', 'preference', 'instruction')),
    labels TEXT NOT NULL,
    prompt TEXT NOT NULL,
    queue_order TEXT NOT NULL CHECK (queue_order IN ('uncertainty', 'sequential', 'random')),
    overlap INTEGER NOT NULL CHECK (overlap >= 1),
    created_at INTEGER NOT NULL,
    generation TEXT,
    -- Share of an annotator's queue served from gold items.
    gold_rate REAL NOT NULL DEFAULT 0.05 CHECK (gold_rate BETWEEN 0 AND 1),
    -- The model precision (on human-checked items) that auto-accepting must keep.
    precision_target REAL NOT NULL DEFAULT 0.95 CHECK (precision_target > 0 AND precision_target <= 1),
    -- Confidence at or above which predictions become labels (source model); NULL: off.
    auto_accept REAL
);
INSERT INTO projects_new (id, name, task, labels, prompt, queue_order, overlap, created_at, generation)
    SELECT id, name, task, labels, prompt, queue_order, overlap, created_at, generation FROM projects;
DROP TABLE projects;
ALTER TABLE projects_new RENAME TO projects;
-- gold: the known answer (JSON) of a gold item; gold items never enter the labeling queue's
-- index (done = 1) and are mixed into each annotator's queue at the project's gold rate.
ALTER TABLE items ADD COLUMN gold TEXT;
-- review = 1: the item waits in the adjudication queue.
ALTER TABLE items ADD COLUMN review INTEGER NOT NULL DEFAULT 0;
CREATE INDEX items_gold ON items (project_id, id) WHERE gold IS NOT NULL;
CREATE INDEX items_review ON items (project_id, id) WHERE review = 1;
-- Decisions about an item's label that are not an annotator's answer: a reviewer's adjudication
-- or a prediction accepted above the project's threshold. Append-only; the latest one counts.
CREATE TABLE resolutions (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    source TEXT NOT NULL CHECK (source IN ('adjudicated', 'model')),
    value TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id),
    prediction_id INTEGER REFERENCES predictions(id),
    note TEXT,
    guideline_version INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX resolutions_item ON resolutions (item_id);
"#,
    // Exports and the prediction job walk a project's items in id order; without this index
    // SQLite sorts the whole project in a temporary B-tree first (memory that grows with the
    // project, half a second per page at a million items).
    r#"
CREATE INDEX items_project ON items (project_id, id);
"#,
    // The learning loop: each item's sentence embedding (computed once, kept with the embedder
    // that made it), the learners trained from people's answers, the predictions they made
    // (`learner_id`), what each person was served (for the near-duplicate check), project
    // settings for both, and retrain jobs (the jobs table is rebuilt to widen its CHECK).
    r#"
CREATE TABLE embeddings (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    embedder TEXT NOT NULL,
    -- little-endian f32, unit length
    vector BLOB NOT NULL
);
CREATE TABLE learners (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    -- model id + learner hash + number of labels: what its predictions record as their model
    version TEXT NOT NULL,
    -- the language-model predictions it mixes with
    base_model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    labels_hash TEXT NOT NULL,
    labels INTEGER NOT NULL,
    -- the newest annotation it was trained with: later ones count towards the next retrain
    last_annotation INTEGER NOT NULL,
    state BLOB NOT NULL,
    rescored INTEGER NOT NULL,
    seconds REAL NOT NULL,
    job_id INTEGER REFERENCES jobs(id),
    created_at INTEGER NOT NULL
);
CREATE INDEX learners_project ON learners (project_id, id);
ALTER TABLE predictions ADD COLUMN learner_id INTEGER REFERENCES learners(id);
CREATE TABLE served (
    user_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    item_id INTEGER NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX served_user ON served (user_id, project_id, at);
-- Human answers since the last retrain that queue the next one; 0: only by hand.
ALTER TABLE projects ADD COLUMN retrain_every INTEGER NOT NULL DEFAULT 20 CHECK (retrain_every >= 0);
-- An item this close (cosine) to one of the last 50 served to the same person is passed over
-- in the queue; NULL: off.
ALTER TABLE projects ADD COLUMN near_duplicate_cosine REAL DEFAULT 0.95
    CHECK (near_duplicate_cosine IS NULL OR (near_duplicate_cosine > 0 AND near_duplicate_cosine <= 1));
CREATE TABLE jobs_new (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('prelabel', 'generate', 'retrain')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    model_id TEXT,
    prompt_version TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    run_started_at INTEGER,
    run_done_at_start INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    -- retrain jobs: the newest annotation when it was queued
    since_annotation INTEGER
);
INSERT INTO jobs_new SELECT *, NULL FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
"#,
    // 6: the language model's view of each item (its hidden state where the answer begins), kept
    // by pre-labeling for the learner beside the sentence embedding. `source` names the model,
    // prompt version and label set of the prediction it came with.
    r#"
CREATE TABLE lm_features (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    source TEXT NOT NULL,
    -- little-endian f32, unit length
    vector BLOB NOT NULL
);
"#,
    // 7: beside the features, the language model's distribution over the labels (little-endian
    // f32 in label-set order; `source` names the label set). A re-score reads it instead of
    // parsing each prediction's JSON. NULL in rows written before.
    "ALTER TABLE lm_features ADD COLUMN scores BLOB;",
    // 8: the zero-shot extractor's scored candidates of each NER item (`source` as for
    // lm_features), kept by pre-labeling so a span retrain mixes without the language model.
    r#"
CREATE TABLE span_candidates (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    source TEXT NOT NULL,
    -- learn::spans::ZeroShot::to_bytes
    data BLOB NOT NULL
);
"#,
    // 9: labeling functions. A rule is versioned by name like the guidelines: every change adds
    // a row, a deletion is a row without a spec. Applying a rule set is a job (its `params`:
    // the combining method), so the jobs table is rebuilt to widen its CHECK.
    r#"
CREATE TABLE rules (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    -- rules::RuleSpec as JSON; NULL: deleted in this version
    spec TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, name, version)
);
CREATE TABLE jobs_new (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    kind TEXT NOT NULL CHECK (kind IN ('prelabel', 'generate', 'retrain', 'rules')),
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'cancelled', 'failed')),
    model_id TEXT,
    prompt_version TEXT,
    total INTEGER NOT NULL DEFAULT 0,
    done INTEGER NOT NULL DEFAULT 0,
    run_started_at INTEGER,
    run_done_at_start INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    user_id INTEGER REFERENCES users(id),
    created_at INTEGER NOT NULL,
    finished_at INTEGER,
    since_annotation INTEGER,
    -- rules jobs: what to apply, as JSON
    params TEXT
);
INSERT INTO jobs_new SELECT *, NULL FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_new RENAME TO jobs;
"#,
    // 10: the order embeddings were written in (`seq`, a counter over the whole table), so the
    // server's in-memory index of them (similar items) reads only what changed since it last
    // looked. Rows written before get their item id, which keeps their order.
    r#"
ALTER TABLE embeddings ADD COLUMN seq INTEGER;
UPDATE embeddings SET seq = item_id;
CREATE INDEX embeddings_seq ON embeddings (seq);
"#,
];

//! The OpenAPI 3.1 document for `/api/v1`, built from one table of endpoints. A test walks the
//! table against the running server, so the document cannot list a route that does not exist.
use crate::domain::Prompt;
use crate::web::error::ErrorCode;
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

/// One documented operation.
pub struct Endpoint {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    admin_only: bool,
    /// The request body's schema, if it takes one.
    body: Option<&'static str>,
    status: u16,
}

const fn ep(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    admin_only: bool,
    body: Option<&'static str>,
    status: u16,
) -> Endpoint {
    Endpoint {
        method,
        path,
        summary,
        admin_only,
        body,
        status,
    }
}

pub const ENDPOINTS: &[Endpoint] = &[
    ep("get", "/me", "The caller", false, None, 200),
    ep("get", "/users", "List users", true, None, 200),
    ep(
        "post",
        "/users",
        "Create a user",
        true,
        Some("NewUser"),
        201,
    ),
    ep(
        "post",
        "/users/{id}/tokens",
        "Create an API token (shown once)",
        false,
        None,
        201,
    ),
    ep(
        "get",
        "/audit",
        "Audit log, newest first (keyset paging)",
        true,
        None,
        200,
    ),
    ep(
        "get",
        "/projects",
        "Projects visible to the caller",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/projects",
        "Create a project",
        true,
        Some("NewProject"),
        201,
    ),
    ep(
        "get",
        "/projects/{id}",
        "A project with its guidelines and counts",
        false,
        None,
        200,
    ),
    ep(
        "patch",
        "/projects/{id}",
        "Change guidelines (new version), queue order or overlap",
        true,
        Some("ProjectUpdate"),
        200,
    ),
    ep(
        "get",
        "/projects/{id}/members",
        "Members of a project",
        false,
        None,
        200,
    ),
    ep(
        "put",
        "/projects/{id}/members/{user_id}",
        "Add a member",
        true,
        None,
        204,
    ),
    ep(
        "delete",
        "/projects/{id}/members/{user_id}",
        "Remove a member",
        true,
        None,
        204,
    ),
    ep(
        "post",
        "/projects/{id}/items",
        "Import JSONL or CSV (streamed; bad rows reported by line)",
        false,
        Some("ImportBody"),
        200,
    ),
    ep(
        "get",
        "/projects/{id}/items",
        "Items (keyset paging)",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/projects/{id}/next",
        "Lease the caller's next item",
        false,
        Some("NextBody"),
        200,
    ),
    ep(
        "post",
        "/projects/{id}/jobs",
        "Start pre-labeling",
        true,
        None,
        202,
    ),
    ep(
        "get",
        "/projects/{id}/jobs",
        "Jobs of a project",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/items/{item}/similar",
        "The item's k nearest items in the project by their stored embeddings (query k, 1 to 200; 409 when the item has no embedding yet)",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/similar",
        "The project's k items closest in meaning to the text q, embedded by the model's sentence embedder (query q and k)",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/projects/{id}/retrain",
        "Queue a retrain of the project's learner (409 while one is queued or running)",
        true,
        None,
        202,
    ),
    ep(
        "get",
        "/projects/{id}/learning",
        "Learner settings, learners and the online accuracy (span F1 for NER) per retrain",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/rules",
        "The rules table: every current rule with its coverage, overlaps, conflicts, agreement with the model and accuracy against people (each with its count), the set's coverage, and what the last apply found",
        false,
        None,
        200,
    ),
    ep("post", "/projects/{id}/rules", "Add a rule (409 if the name is taken)", true, Some("Rule"), 201),
    ep(
        "post",
        "/projects/{id}/rules/preview",
        "Measure a rule being typed beside the other rules, on a sample of the project (20,000 items and every answered one), with a few matches and their spans, and the stored rules left out as no longer valid (`left_out`)",
        true,
        Some("Rule"),
        200,
    ),
    ep(
        "post",
        "/projects/{id}/rules/apply",
        "Queue the job that combines the rules, the model and the learner (Dawid-Skene label model or majority vote) into predictions of source rules (409 while one is queued or running)",
        true,
        Some("ApplyRules"),
        202,
    ),
    ep("put", "/projects/{id}/rules/{name}", "A new version of a rule", true, Some("Rule"), 200),
    ep("delete", "/projects/{id}/rules/{name}", "Delete a rule (its versions stay)", true, None, 204),
    ep("get", "/projects/{id}/rules/{name}/history", "Every version of a rule, oldest first", false, None, 200),
    ep(
        "get",
        "/projects/{id}/rules/{name}/examples",
        "Items a rule fired on (?sample=hits|disagreements&limit=N), with every rule's vote, the model's label and people's",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/items/{id}",
        "An item with its predictions and annotations",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/items/{id}/annotations",
        "Answer an item",
        false,
        Some("Annotation"),
        201,
    ),
    ep("post", "/items/{id}/skip", "Skip an item", false, None, 204),
    ep(
        "get",
        "/projects/{id}/leaderboard",
        "Preference projects: sources ranked by Bradley-Terry with intervals, Elo, win rates, position bias",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/pairs",
        "Voted pairs with majority, agreement and a split flag (?split=true for split ones; keyset paging)",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/export",
        "Streamed export: preference (?format=dpo|dpo-chat|openai-dpo|sft&min_votes&min_agreement) or labels (?format=labels|spacy|conll|sft|prompt-completion|alpaca&human_only&min_agreement&labels&split=train|validation&validation_share)",
        false,
        None,
        200,
    ),
    ep(
        "get",
        "/projects/{id}/export/card",
        "The README.md dataset card of a label export with the same parameters (counts, sources, labels, agreement, annotators, model and prompt versions, split)",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/pairs/{id}/votes",
        "Vote on a pair (choice about the displayed sides)",
        false,
        Some("Vote"),
        201,
    ),
    ep(
        "get",
        "/projects/{id}/stats",
        "Quality report: progress, throughput, gold accuracy, agreement (Cohen, Fleiss, Krippendorff; span F1 and token alpha for NER), model vs human with confusion matrix, reliability and auto-accept threshold, disagreement hotspots",
        false,
        None,
        200,
    ),
    ep(
        "post",
        "/projects/{id}/review/next",
        "Lease the next item waiting for adjudication (reviewers and admins)",
        false,
        Some("NextBody"),
        200,
    ),
    ep(
        "post",
        "/items/{id}/resolution",
        "Adjudicate an item (reviewers and admins): its label in exports, source adjudicated",
        false,
        Some("Resolution"),
        201,
    ),
    ep(
        "post",
        "/projects/{id}/auto-accept",
        "Turn auto-accept on (at the threshold that keeps the precision target, or a given one) or off",
        true,
        Some("AutoAccept"),
        200,
    ),
    ep("get", "/jobs/{id}", "A job's progress", false, None, 200),
    ep("post", "/jobs/{id}/cancel", "Cancel a job", true, None, 200),
];

fn schemas() -> Value {
    let prompts: Vec<&str> = Prompt::labeling().map(Prompt::as_str).collect();
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let span = json!({"type": "object", "required": ["start", "end", "label"], "properties": {
        "start": {"type": "integer", "minimum": 0}, "end": {"type": "integer", "minimum": 0},
        "label": {"type": "string"}}});
    json!({
        "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"],
            "properties": {"code": {"enum": codes}, "message": {"type": "string"}}}}},
        "NewUser": {"type": "object", "required": ["name", "role", "password"], "properties": {
            "name": {"type": "string"}, "role": {"enum": ["admin", "reviewer", "annotator"]}, "password": {"type": "string", "minLength": 8}}},
        "NewProject": {"type": "object", "required": ["name", "task", "labels"], "properties": {
            "name": {"type": "string"}, "task": {"enum": ["classification", "ner"]},
            "labels": {"type": "array", "items": {"type": "string"}},
            "prompt": {"enum": prompts},
            "guidelines": {"type": "string"}, "queue_order": {"enum": ["uncertainty", "sequential", "random"]},
            "overlap": {"type": "integer", "minimum": 1},
            "gold_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "precision_target": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}},
        "ProjectUpdate": {"type": "object", "properties": {"guidelines": {"type": "string"},
            "queue_order": {"enum": ["uncertainty", "sequential", "random"]}, "overlap": {"type": "integer", "minimum": 1},
            "gold_rate": {"type": "number", "minimum": 0, "maximum": 1},
            "precision_target": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}},
        "ImportBody": {"type": "string", "description": "JSONL rows {id?, text, meta?, label?, entities?, gold?} or CSV with a text column; gold rows carry the known answer"},
        "Resolution": {"type": "object", "properties": {"label": {"type": "string"},
            "entities": {"type": "array", "items": {"$ref": "#/components/schemas/Span"}}, "note": {"type": "string"}}},
        "AutoAccept": {"type": "object", "required": ["enabled"], "properties": {"enabled": {"type": "boolean"},
            "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}}},
        "NextBody": {"type": "object", "properties": {"exclude": {"type": "array", "items": {"type": "integer"}}}},
        "Rule": {"type": "object", "required": ["name", "label", "kind"], "properties": {
            "name": {"type": "string", "pattern": "^[\\w.-]{1,60}$"}, "label": {"type": "string"},
            "kind": {"enum": ["keywords", "regex", "lookup", "similar"]},
            "terms": {"type": "array", "items": {"type": "string"}, "description": "keywords (and lookup, as stored)"},
            "case_sensitive": {"type": "boolean", "default": false},
            "whole_word": {"type": "boolean", "default": true},
            "pattern": {"type": "string", "description": "regex: Rust regex syntax, no backtracking"},
            "file": {"type": "string", "description": "lookup: the uploaded file's text, one term per line (# comments)"},
            "file_name": {"type": "string"},
            "examples": {"type": "array", "items": {"type": "string"}, "description": "similar: item ids"},
            "threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "similar: cosine"}}},
        "ApplyRules": {"type": "object", "properties": {"method": {"enum": ["label_model", "majority"], "default": "label_model"}}},
        "Span": span,
        "Vote": {"type": "object", "required": ["choice", "left"], "properties": {
            "choice": {"enum": ["a", "b", "tie", "both_bad"]}, "left": {"type": "integer"},
            "strength": {"type": "integer", "minimum": 1, "maximum": 3}, "rationale": {"type": "string"},
            "seconds": {"type": "number"}}},
        "Annotation": {"type": "object", "properties": {"label": {"type": "string"},
            "entities": {"type": "array", "items": {"$ref": "#/components/schemas/Span"}},
            "seconds": {"type": "number"}, "prediction_id": {"type": "integer"}}},
    })
}

pub fn spec() -> Value {
    let mut paths = Map::new();
    for &Endpoint {
        method,
        path,
        summary,
        admin_only: admin,
        body,
        status,
    } in ENDPOINTS
    {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "operationId": format!("{method}{}", path.replace(['/', '{', '}'], "_")),
            "parameters": params,
            "responses": {
                status.to_string(): {"description": "success"},
                "default": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        if admin {
            op["description"] = json!("Admins only.");
        }
        if let Some(schema) = body {
            let mime = if schema == "ImportBody" {
                "application/x-ndjson"
            } else {
                "application/json"
            };
            op["requestBody"] = json!({"required": true, "content": {mime: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Wick", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": "wick_session"},
            },
        },
    })
}

pub async fn document() -> HttpResponse {
    HttpResponse::Ok().json(spec())
}

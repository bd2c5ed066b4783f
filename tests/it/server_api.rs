//! The JSON API and pages through the real server on 127.0.0.1 with a real SQLite file.
use crate::common;

use common::server::{add_user, wait_job, Api, Server, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::time::Duration;

fn start() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), false);
    (dir, server)
}

fn jsonl(rows: &[Value]) -> Vec<u8> {
    rows.iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

fn create_project(api: &Api, body: Value) -> i64 {
    let (status, p) = api.post("/projects", body);
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().expect("project id")
}

fn error_code(reply: &(u16, Value)) -> &str {
    reply.1["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error object in {}", reply.1))
}

/// A browser-like session: cookie and CSRF token from the login page.
struct Browser {
    base: String,
    cookie: String,
    csrf: String,
}

fn cookie_of(resp: &ureq::Response) -> Option<String> {
    resp.all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("wick_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap_or("").to_string()
}

fn no_redirects() -> ureq::Agent {
    ureq::AgentBuilder::new().redirects(0).build()
}

impl Browser {
    fn open(base: &str) -> Browser {
        let resp = no_redirects()
            .get(&format!("{base}/login"))
            .call()
            .expect("login page");
        let cookie = cookie_of(&resp).expect("a session cookie");
        let html = resp.into_string().expect("html");
        Browser {
            base: base.into(),
            csrf: csrf_in(&html),
            cookie,
        }
    }

    fn login(&mut self, name: &str, password: &str) -> u16 {
        let r = no_redirects()
            .post(&format!("{}/login", self.base))
            .set("Cookie", &self.cookie)
            .send_form(&[
                ("name", name),
                ("password", password),
                ("csrf", &self.csrf),
                ("next", "/"),
            ]);
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        if let Some(c) = cookie_of(&resp) {
            self.cookie = c;
        }
        let status = resp.status();
        if status == 303 {
            let home = self.get("/").1;
            self.csrf = csrf_in(&home);
        }
        status
    }

    fn get(&self, path: &str) -> (u16, String) {
        match no_redirects()
            .get(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie)
            .call()
        {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{e}"),
        }
    }

    fn post_json(&self, path: &str, headers: &[(&str, &str)], body: Value) -> u16 {
        let mut req = no_redirects()
            .post(&format!("{}{path}", self.base))
            .set("Cookie", &self.cookie);
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.send_json(body) {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(s, _)) => s,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn health_metrics_and_every_documented_endpoint_exists() {
    let (_dir, server) = start();
    let health: Value = ureq::get(&server.url("/healthz"))
        .call()
        .expect("healthz")
        .into_json()
        .expect("json");
    assert_eq!(
        (health["status"].as_str(), health["model"].as_str()),
        (Some("ok"), None)
    );
    let metrics = ureq::get(&server.url("/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("# TYPE wick_http_requests_total counter"),
        "{metrics}"
    );
    assert!(metrics.contains("wick_items 0"), "{metrics}");
    let spec: Value = ureq::get(&server.url("/api/v1/openapi.json"))
        .call()
        .expect("openapi")
        .into_json()
        .expect("json");
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 15);
    // Without credentials every documented operation answers 401, never "no such endpoint".
    for (path, ops) in paths {
        for method in ops.as_object().expect("ops").keys() {
            let url = server.url(&format!(
                "/api/v1{}",
                path.replace("{id}", "1").replace("{user_id}", "1")
            ));
            let r = ureq::request(&method.to_uppercase(), &url).call();
            let status = match r {
                Ok(r) => r.status(),
                Err(ureq::Error::Status(s, _)) => s,
                Err(e) => panic!("{e}"),
            };
            assert_eq!(status, 401, "{method} {path}");
        }
    }
    let unknown = server.client("admin").get("/nope");
    assert_eq!((unknown.0, error_code(&unknown)), (404, "not_found"));
}

#[test]
fn projects_import_paging_and_access_control() {
    let (_dir, server) = start();
    let admin = server.client("admin");

    // Validation names the field.
    let bad = admin.post(
        "/projects",
        json!({"name": "x", "task": "classification", "labels": []}),
    );
    assert_eq!((bad.0, error_code(&bad)), (422, "invalid"));
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("labels"),
        "{}",
        bad.1
    );
    let bad = admin.post(
        "/projects",
        json!({"name": "x", "task": "ner", "labels": ["PER"], "prompt": "sentiment"}),
    );
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("prompt"),
        "{}",
        bad.1
    );
    let bad = admin.post(
        "/projects",
        json!({"name": "x", "task": "poetry", "labels": ["a"]}),
    );
    assert_eq!(bad.0, 422, "{}", bad.1);

    let id = create_project(
        &admin,
        json!({"name": "Reviews", "task": "classification", "labels": ["positive", "negative"], "prompt": "sentiment"}),
    );
    let dup = admin.post(
        "/projects",
        json!({"name": "Reviews", "task": "classification", "labels": ["a"]}),
    );
    assert_eq!((dup.0, error_code(&dup)), (409, "conflict"));

    // JSONL import: bad rows reported by line, good rows kept, labels imported as annotations.
    let mut body = jsonl(&[
        json!({"id": "r1", "text": "A joy from start to finish.", "label": "positive"}),
        json!({"id": "r2", "text": "Dull and far too long."}),
        json!({"id": "r3", "text": "Label outside the set", "label": "meh"}),
    ]);
    body.extend_from_slice(b"{not json\n\n{\"id\": \"r4\"}\n");
    body.extend(jsonl(&[
        json!({"id": 5, "text": "Numeric ids are kept as text.", "meta": {"source": "test"}}),
    ]));
    let (status, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["inserted"].as_i64(),
            report["annotations"].as_i64(),
            report["error_count"].as_i64()
        ),
        (Some(3), Some(1), Some(3)),
        "{report}"
    );
    let lines: Vec<i64> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 6], "{report}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"meh\""),
        "{report}"
    );
    assert!(
        report["errors"][2]["message"]
            .as_str()
            .unwrap()
            .contains("text"),
        "{report}"
    );

    // Re-import is idempotent.
    let (_, again) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &body,
    );
    assert_eq!(
        (again["inserted"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(3)),
        "{again}"
    );

    // CSV with a label column; an empty label cell is no label.
    let csv = "id,text,label,source\nc1,\"Loved it, truly.\",positive,web\nc2,Not for me,,web\nc3,,negative,web\n";
    let (status, report) =
        admin.post_raw(&format!("/projects/{id}/items"), "text/csv", csv.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(
        (report["inserted"].as_i64(), report["annotations"].as_i64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(report["errors"][0]["line"], 4, "{report}");

    // Keyset paging over 120 more items.
    let many: Vec<Value> = (0..120)
        .map(|i| json!({"id": format!("m{i:03}"), "text": format!("item number {i}")}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&many),
    );
    let (mut seen, mut after) = (Vec::new(), None::<i64>);
    loop {
        let path = match after {
            Some(a) => format!("/projects/{id}/items?limit=50&after={a}"),
            None => format!("/projects/{id}/items?limit=50"),
        };
        let (status, page) = admin.get(&path);
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_i64().unwrap()),
        );
        match page["next"].as_i64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!((seen.len(), sorted.len()), (125, 125));

    let project = admin.get(&format!("/projects/{id}")).1;
    assert_eq!(project["counts"]["items"], 125, "{project}");
    assert_eq!(project["counts"]["done"], 2, "{project}");

    // An annotator sees only projects they are a member of, in the API.
    let other = create_project(
        &admin,
        json!({"name": "Other", "task": "ner", "labels": ["PER", "LOC"]}),
    );
    add_user(&server.db, "ann", "annotator", "annotator-pass");
    let ann = server.client("ann");
    assert_eq!(ann.get("/projects").1["items"].as_array().unwrap().len(), 0);
    assert_eq!(ann.get(&format!("/projects/{id}")).0, 404);
    let ann_id = ann.get("/me").1["id"].as_i64().unwrap();
    assert_eq!(
        admin
            .send(
                "PUT",
                &format!("/projects/{id}/members/{ann_id}"),
                json!({})
            )
            .0,
        204
    );
    let visible: Vec<i64> = ann.get("/projects").1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(visible, vec![id]);
    assert_eq!(ann.get(&format!("/projects/{other}")).0, 404);
    assert_eq!(ann.get(&format!("/projects/{other}/items")).0, 404);
    assert_eq!(
        ann.post(&format!("/projects/{other}/next"), json!({})).0,
        404
    );
    let forbidden = ann.post(
        "/projects",
        json!({"name": "Mine", "task": "ner", "labels": ["PER"]}),
    );
    assert_eq!((forbidden.0, error_code(&forbidden)), (403, "forbidden"));
    assert_eq!(ann.get("/audit").0, 403);
    assert_eq!(ann.get("/users").0, 403);

    // Bad credentials.
    let stranger = Api {
        token: "wick_nope".into(),
        ..server.client("admin")
    };
    let r = stranger.get("/projects");
    assert_eq!((r.0, error_code(&r)), (401, "unauthorized"));
}

#[test]
fn queue_leases_overlap_annotations_history_and_audit() {
    let (_dir, server) = start();
    let admin = server.client("admin");
    let id = create_project(
        &admin,
        json!({"name": "Q", "task": "classification", "labels": ["yes", "no"], "queue_order": "sequential", "overlap": 2}),
    );
    let rows: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("q{i}"), "text": format!("question {i}")}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    for name in ["ann1", "ann2", "ann3"] {
        add_user(&server.db, name, "annotator", "annotator-pass");
    }
    let users: Vec<Api> = ["ann1", "ann2", "ann3"]
        .iter()
        .map(|n| server.client(n))
        .collect();
    for u in &users {
        let uid = u.get("/me").1["id"].as_i64().unwrap();
        admin.send("PUT", &format!("/projects/{id}/members/{uid}"), json!({}));
    }
    let next = |api: &Api, exclude: &[i64]| -> Option<Value> {
        let (status, body) = api.post(&format!("/projects/{id}/next"), json!({"exclude": exclude}));
        assert_eq!(status, 200, "{body}");
        (!body["item"].is_null()).then(|| body["item"].clone())
    };
    let item_id = |v: &Value| v["id"].as_i64().unwrap();

    // Leases keep two people off one item; the same person gets their own lease back.
    let a = next(&users[0], &[]).unwrap();
    let b = next(&users[1], &[]).unwrap();
    assert_ne!(item_id(&a), item_id(&b));
    assert_eq!(item_id(&next(&users[0], &[]).unwrap()), item_id(&a));
    let a2 = next(&users[0], &[item_id(&a)]).unwrap();
    assert!(![item_id(&a), item_id(&b)].contains(&item_id(&a2)));

    // Answering: a wrong label is refused by name; a good one is recorded with its details.
    let bad = users[0].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"label": "maybe"}),
    );
    assert_eq!((bad.0, error_code(&bad)), (422, "invalid"));
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("label"),
        "{}",
        bad.1
    );
    let bad = users[0].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"entities": []}),
    );
    assert_eq!(bad.0, 422);
    let typo = users[0].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"labl": "yes"}),
    );
    assert_eq!(typo.0, 422);
    assert!(
        typo.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `labl`"),
        "{}",
        typo.1
    );
    let (status, ann) = users[0].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"label": "yes", "seconds": 2.5}),
    );
    assert_eq!(status, 201, "{ann}");
    assert_eq!(
        (
            ann["user"].as_str(),
            ann["seconds"].as_f64(),
            ann["guideline_version"].as_i64()
        ),
        (Some("ann1"), Some(2.5), Some(1))
    );

    // Never an item the user answered; with overlap 2 the item still goes to someone else.
    for _ in 0..3 {
        let n = next(&users[0], &[item_id(&a2)]).unwrap();
        assert_ne!(item_id(&n), item_id(&a));
    }
    let c = next(&users[2], &[]).unwrap();
    assert_eq!(
        item_id(&c),
        item_id(&a),
        "the half-done item is first in sequential order"
    );

    // Guidelines change: a new version, recorded with the next annotation.
    let (_, p) = admin.send(
        "PATCH",
        &format!("/projects/{id}"),
        json!({"guidelines": "# Rules\nSay **yes** to questions."}),
    );
    assert_eq!(p["guidelines"]["version"], 2);
    let (_, ann) = users[2].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"label": "no", "seconds": 1.0}),
    );
    assert_eq!(ann["guideline_version"], 2);
    let item = admin.get(&format!("/items/{}", item_id(&a))).1;
    assert_eq!(
        (item["annotators"].as_i64(), item["done"].as_bool()),
        (Some(2), Some(true)),
        "{item}"
    );
    // Done items leave every queue.
    for u in &users {
        let mut held = Vec::new();
        while let Some(n) = next(u, &held) {
            assert_ne!(item_id(&n), item_id(&a));
            held.push(item_id(&n));
        }
    }

    // Undo: answering again adds a row that supersedes the person's earlier answer.
    let (_, _) = users[0].post(
        &format!("/items/{}/annotations", item_id(&a)),
        json!({"label": "no", "seconds": 3.0}),
    );
    let item = admin.get(&format!("/items/{}", item_id(&a))).1;
    assert_eq!(
        item["annotations"].as_array().unwrap().len(),
        3,
        "append-only: {item}"
    );
    assert_eq!(item["annotators"], 2);
    assert_eq!(item["current"], json!({"label": "no"}));

    // Skip takes the item out of that person's queue only.
    let s = next(&users[1], &[]).unwrap();
    assert_eq!(
        users[1]
            .post(&format!("/items/{}/skip", item_id(&s)), json!({}))
            .0,
        204
    );
    let mut held = Vec::new();
    while let Some(n) = next(&users[1], &held) {
        assert_ne!(item_id(&n), item_id(&s));
        held.push(item_id(&n));
    }

    // The audit log has every write, with who and from where; newest first, keyset paged.
    let (status, audit) = admin.get(&format!("/audit?target=item:{}", item_id(&a)));
    assert_eq!(status, 200);
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert!(entries
        .iter()
        .all(|e| e["action"] == "annotation.create" && e["addr"] == "127.0.0.1"));
    assert_eq!(entries[0]["user"], "ann1");
    let page = admin.get("/audit?limit=2").1;
    let older = admin
        .get(&format!("/audit?limit=2&after={}", page["next"]))
        .1;
    assert!(older["items"][0]["id"].as_i64() < page["items"][1]["id"].as_i64());
}

#[test]
fn ner_answers_are_checked_against_the_text() {
    let (_dir, server) = start();
    let admin = server.client("admin");
    let id = create_project(
        &admin,
        json!({"name": "N", "task": "ner", "labels": ["PER", "LOC"]}),
    );
    let rows = [
        json!({"id": "e1", "text": "🎉 Ana met Bob in Rome", "entities": [{"start": 2, "end": 5, "label": "PER", "text": "Ana"}]}),
        json!({"id": "e2", "text": "Ana met Bob", "entities": [{"start": 0, "end": 3, "label": "ORG"}]}),
        json!({"id": "e3", "text": "Ana met Bob", "entities": [{"start": 0, "end": 4, "label": "PER", "text": "Ana"}]}),
        json!({"id": "e4", "text": "Nothing here"}),
    ];
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    assert_eq!(
        (report["inserted"].as_i64(), report["annotations"].as_i64()),
        (Some(2), Some(1)),
        "{report}"
    );
    let item = next_item(&admin, id);
    let target = item["id"].as_i64().unwrap();
    let path = format!("/items/{target}/annotations");
    let overlap = admin.post(&path, json!({"entities": [{"start": 0, "end": 4, "label": "PER"}, {"start": 2, "end": 6, "label": "LOC"}]}));
    assert_eq!(overlap.0, 422);
    assert!(
        overlap.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overlaps"),
        "{}",
        overlap.1
    );
    let outside = admin.post(
        &path,
        json!({"entities": [{"start": 8, "end": 40, "label": "PER"}]}),
    );
    assert!(
        outside.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("entities[0]"),
        "{}",
        outside.1
    );
    let ok = admin.post(&path, json!({"entities": [{"start": 8, "end": 12, "label": "LOC"}, {"start": 0, "end": 7, "label": "PER"}]}));
    assert_eq!(ok.0, 201, "{}", ok.1);
    assert_eq!(
        ok.1["value"]["entities"][0]["start"], 0,
        "entities are stored sorted"
    );
}

fn next_item(api: &Api, project: i64) -> Value {
    let (status, body) = api.post(&format!("/projects/{project}/next"), json!({}));
    assert_eq!(status, 200, "{body}");
    body["item"].clone()
}

#[test]
fn browser_session_csrf_origin_escaping_and_login_rate_limit() {
    let (_dir, server) = start();
    let admin = server.client("admin");
    let id = create_project(
        &admin,
        json!({"name": "<b>Bold</b> project", "task": "classification", "labels": ["a", "b"]}),
    );
    let (_, report) = admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&[json!({"id": "x", "text": "<script>alert(1)</script>"})]),
    );
    assert_eq!(report["inserted"], 1);
    let item = next_item(&admin, id)["id"].as_i64().unwrap();

    let mut browser = Browser::open(&server.base);
    assert_eq!(browser.get("/").0, 303, "pages need a login");
    assert_eq!(browser.login("admin", "wrong-password"), 401);
    assert_eq!(browser.login("admin", ADMIN_PASSWORD), 303);
    let (status, html) = browser.get(&format!("/items/{item}"));
    assert_eq!(status, 200);
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "item text must be escaped");
    let (_, home) = browser.get("/");
    assert!(home.contains("&#60;b&#62;Bold&#60;/b&#62; project") && !home.contains("<b>Bold</b>"));

    // The session works for the API, but a state change needs the CSRF token...
    let path = format!("/api/v1/items/{item}/annotations");
    assert_eq!(browser.post_json(&path, &[], json!({"label": "a"})), 403);
    assert_eq!(
        browser.post_json(&path, &[("X-CSRF-Token", "forged")], json!({"label": "a"})),
        403
    );
    // ...and must come from this origin.
    let csrf = browser.csrf.clone();
    assert_eq!(
        browser.post_json(
            &path,
            &[("X-CSRF-Token", &csrf), ("Origin", "http://evil.example")],
            json!({"label": "a"})
        ),
        403
    );
    assert_eq!(
        browser.post_json(
            &path,
            &[("X-CSRF-Token", &csrf), ("Origin", &server.base)],
            json!({"label": "a"})
        ),
        201
    );

    // Failed logins from one address are rate limited.
    let mut attacker = Browser::open(&server.base);
    let statuses: Vec<u16> = (0..12)
        .map(|_| attacker.login("admin", "guess-guess"))
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let audit = admin.get("/audit?limit=50").1;
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "user.login_failed"));
}

#[test]
fn prelabeling_job_predicts_every_item_and_orders_the_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&dir.path().join("wick.db"), true);
    let admin = server.client("admin");
    let id = create_project(
        &admin,
        json!({"name": "Sentiment", "task": "classification", "labels": ["positive", "negative"], "prompt": "sentiment"}),
    );
    let texts = [
        "An absolute triumph, moving and funny.",
        "Boring, predictable and badly acted.",
        "It was fine, I guess.",
        "One of the best films of the decade.",
        "I walked out after twenty minutes.",
        "Some good scenes, some bad ones.",
        "A warm, generous film.",
        "Dreadful script.",
    ];
    let rows: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("s{i}"), "text": t}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    let (status, job) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(status, 202, "{job}");
    let again = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    assert_eq!(again.0, 409, "one active job per project");
    let job = wait_job(&admin, job["id"].as_i64().unwrap());
    assert_eq!(
        (
            job["status"].as_str(),
            job["done"].as_i64(),
            job["total"].as_i64()
        ),
        (Some("done"), Some(8), Some(8)),
        "{job}"
    );

    let mut margins = Vec::new();
    for i in 1..=8 {
        let item = admin.get(&format!("/items/{i}")).1;
        let preds = item["predictions"].as_array().unwrap();
        assert_eq!(preds.len(), 1, "{item}");
        let p = &preds[0];
        assert!(p["model_id"]
            .as_str()
            .unwrap()
            .starts_with("SmolLM2-135M-Instruct.Q4_1.gguf@"));
        assert_eq!(p["prompt_version"].as_str().unwrap().len(), 12);
        let sum: f64 = p["scores"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_f64().unwrap())
            .sum();
        assert!((sum - 1.0).abs() < 1e-6, "{p}");
        assert!(p["entropy"].as_f64().unwrap() >= 0.0);
        margins.push((p["margin"].as_f64().unwrap(), i));
    }
    assert_eq!(
        admin.get("/items/1").1["predictions"][0]["label"],
        "positive"
    );
    assert_eq!(
        admin.get("/items/2").1["predictions"][0]["label"],
        "negative"
    );
    // Least confident first.
    margins.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first = next_item(&admin, id);
    assert_eq!(
        first["id"].as_i64().unwrap(),
        margins[0].1 as i64,
        "{margins:?}"
    );
    assert!(first["prediction"]["confidence"].as_f64().is_some());

    // A second run with the same model and prompt adds nothing: predictions are not repeated.
    let (_, job2) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    let job2 = wait_job(&admin, job2["id"].as_i64().unwrap());
    assert_eq!(job2["status"], "done");
    assert_eq!(
        admin.get("/items/1").1["predictions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Accepting the suggestion is recorded as such.
    let pred = &first["prediction"];
    let (_, ann) = admin.post(
        &format!("/items/{}/annotations", first["id"]),
        json!({"label": pred["label"], "prediction_id": pred["id"], "seconds": 1.2}),
    );
    assert_eq!(ann["accepted"], true, "{ann}");

    // A running job can be cancelled; it then stops taking items.
    let rows: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("c{i}"), "text": format!("Another review, number {i}.")}))
        .collect();
    admin.post_raw(
        &format!("/projects/{id}/items"),
        "application/x-ndjson",
        &jsonl(&rows),
    );
    let (_, job3) = admin.post(&format!("/projects/{id}/jobs"), json!({}));
    let (status, cancelled) = admin.post(&format!("/jobs/{}/cancel", job3["id"]), json!({}));
    assert_eq!(
        (status, cancelled["status"].as_str()),
        (200, Some("cancelled")),
        "{cancelled}"
    );
    assert_eq!(
        admin
            .post(&format!("/jobs/{}/cancel", job3["id"]), json!({}))
            .0,
        409
    );
    std::thread::sleep(Duration::from_secs(2));
    let done = admin.get(&format!("/jobs/{}", job3["id"])).1["done"]
        .as_i64()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let later = admin.get(&format!("/jobs/{}", job3["id"])).1;
    assert_eq!(
        (later["status"].as_str(), later["done"].as_i64()),
        (Some("cancelled"), Some(done)),
        "{later}"
    );
    assert!(done < 40, "{later}");
}

#[test]
fn users_and_tokens_through_the_api() {
    let (_dir, server) = start();
    let admin = server.client("admin");
    let short = admin.post(
        "/users",
        json!({"name": "bo", "role": "annotator", "password": "short"}),
    );
    assert_eq!(short.0, 422);
    assert!(
        short.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("password"),
        "{}",
        short.1
    );
    let (status, user) = admin.post(
        "/users",
        json!({"name": "bo", "role": "annotator", "password": "long-enough"}),
    );
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        admin
            .post(
                "/users",
                json!({"name": "bo", "role": "admin", "password": "long-enough"})
            )
            .0,
        409
    );
    let (status, token) = admin.post(&format!("/users/{}/tokens", user["id"]), json!({}));
    assert_eq!(status, 201);
    let bo = Api {
        token: token["token"].as_str().unwrap().to_string(),
        ..server.client("admin")
    };
    assert_eq!(bo.get("/me").1["name"], "bo");
    // An annotator may make tokens for themselves only.
    assert_eq!(
        bo.post(&format!("/users/{}/tokens", user["id"]), json!({}))
            .0,
        201
    );
    assert_eq!(bo.post("/users/1/tokens", json!({})).0, 403);
    let names: Vec<String> = admin.get("/users").1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["admin", "bo"]);
}

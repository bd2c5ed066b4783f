//! The WebDriver harness shared by the browser tests: Debian's headless Chromium driven through
//! chromedriver (thirtyfour), with waits, keyboard input, console checks and the login form.
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
//! scripts/test.sh installs them). Without them the tests fail: they never pass silently.
use crate::common::server::{add_user, Api, Server};
use anyhow::{bail, ensure, Context, Result};
use futures_util::future::LocalBoxFuture;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;
use thirtyfour::LoggingPrefsLogLevel;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, in its own process group so the browsers it starts go with it.
pub struct Chromedriver {
    child: Child,
    pub url: String,
    /// One browser at a time: two Chromiums beside two servers on a 2-core runner turn page
    /// waits into timeouts.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Chromedriver {
    pub fn start() -> Result<Chromedriver> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            ensure!(
                Path::new(bin).exists(),
                "{bin} is missing: the browser tests need Debian's Chromium \
                 (apt-get install -y chromium chromium-driver; scripts/test.sh does this)"
            );
        }
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .context("start chromedriver")?
        };
        let driver = Chromedriver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _turn: turn,
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.get(&format!("{}/status", driver.url)).call().is_err() {
            ensure!(
                Instant::now() < deadline,
                "chromedriver did not answer on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(driver)
    }

    pub async fn session(&self, profile: &Path) -> Result<WebDriver> {
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        let profile = format!("--user-data-dir={}", profile.display());
        caps.set_browser_log_level(LoggingPrefsLogLevel::All)?;
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            profile.as_str(),
            "--window-size=1280,900",
        ] {
            caps.add_arg(arg)?;
        }
        WebDriver::new(self.url.as_str(), caps)
            .await
            .context("start a Chromium session through chromedriver")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and any browser a failed test left behind. Spelled
        // `-s KILL -- -PGID`: procps-ng 4.0.2's `kill -KILL -PGID` sends the signal to -1, every
        // process the user may signal.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a script in the page and returns its value.
pub async fn js(d: &WebDriver, script: &str, args: Vec<Value>) -> Result<Value> {
    Ok(d.execute(script, args).await?.json().clone())
}

pub fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
        && v.as_str() != Some("")
        && v.as_f64() != Some(0.0)
}

/// Polls a script until it returns something truthy, and returns that. Errors while a page
/// is loading count as "not yet".
pub async fn wait_js(d: &WebDriver, what: &str, secs: u64, script: &str) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match js(d, script, vec![]).await {
            Ok(v) if truthy(&v) => return Ok(v),
            Ok(v) => format!("last value {v}"),
            Err(e) => format!("last error {e}"),
        };
        if Instant::now() > deadline {
            let url = d
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            bail!("timed out after {secs} s waiting for {what} on {url} ({last})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn text_of(d: &WebDriver, css: &str) -> Result<String> {
    Ok(d.find(By::Css(css))
        .await
        .with_context(|| format!("find {css}"))?
        .text()
        .await?)
}

pub async fn keys(d: &WebDriver, keys: impl Into<TypingData>) -> Result<()> {
    d.action_chain().send_keys(keys).perform().await?;
    Ok(())
}

/// The pages must not log errors (script errors, CSP refusals, failed requests) to the console.
/// Drains the browser log; the pages named in `expect_404` must have answered 404 (and may log
/// that); the missing favicon may too.
pub async fn assert_clean_console(d: &WebDriver, base: &str, expect_404: &[String]) -> Result<()> {
    let log = d.browser_log().await.context("read the browser console")?;
    let is_404 = |m: &str, path: &str| {
        m.starts_with(&format!("{base}{path} "))
            && m.contains("the server responded with a status of 404")
    };
    let errors: Vec<&str> = log
        .iter()
        .filter(|e| e.level == "SEVERE" || e.level == "WARNING")
        .map(|e| e.message.as_str())
        .filter(|m| !is_404(m, "/favicon.ico") && !expect_404.iter().any(|p| is_404(m, p)))
        .collect();
    ensure!(
        errors.is_empty(),
        "the browser console shows errors: {errors:#?}"
    );
    for path in expect_404 {
        ensure!(
            log.iter().any(|e| is_404(&e.message, path)),
            "{path} did not answer 404 (console: {:#?})",
            log.iter().map(|e| &e.message).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// No JavaScript alert may be open.
pub async fn assert_no_alert(d: &WebDriver, page: &str) {
    if let Ok(text) = d.get_alert_text().await {
        panic!("an alert is open on {page}: {text:?}");
    }
}

pub async fn log_in(d: &WebDriver, base: &str, name: &str, password: &str) -> Result<()> {
    d.goto(format!("{base}/login")).await?;
    d.find(By::Id("name")).await?.send_keys(name).await?;
    d.find(By::Id("password"))
        .await?
        .send_keys(password)
        .await?;
    d.find(By::Id("login")).await?.click().await?;
    wait_js(
        d,
        &format!("{name} to be logged in"),
        20,
        "return location.pathname !== '/login' && document.readyState === 'complete' \
         && !!document.querySelector('.topbar .who')",
    )
    .await?;
    let who = text_of(d, ".topbar .who").await?;
    ensure!(
        who.starts_with(name),
        "top bar says {who:?} after logging in as {name}"
    );
    Ok(())
}

/// After a failed test: saves a screenshot of the page to `$TMPDIR/{name}.png` and prints where,
/// with the page's address.
pub async fn report_failure(d: &WebDriver, name: &str) {
    if let Ok(png) = d.screenshot_as_png().await {
        let shot = std::env::temp_dir().join(format!("{name}.png"));
        if std::fs::write(&shot, png).is_ok() {
            eprintln!("screenshot of the failing page: {}", shot.display());
        }
    }
    if let Ok(url) = d.current_url().await {
        eprintln!("failing page: {url}");
    }
}

/// The part of a browser test that drives the page: the browser, the server, its admin's API
/// client, and a scratch folder.
pub type Steps =
    for<'a> fn(&'a WebDriver, &'a Server, &'a Api, &'a Path) -> LocalBoxFuture<'a, Result<()>>;

/// One browser test against the real `wick serve` (with or without the model) on a fresh SQLite
/// file, in a fresh browser profile. A failure leaves a screenshot named after `name`; the
/// browser is closed either way.
pub async fn run(name: &str, model: bool, steps: Steps) -> Result<()> {
    let started = Instant::now();
    // Fails, never skips, without the browser: CI installs it.
    let chromedriver = Chromedriver::start()?;
    let dir = tempfile::tempdir()?;
    let server = Server::start(&dir.path().join("wick.db"), model);
    let admin = server.client("admin");
    let profile = tempfile::tempdir()?;
    let d = chromedriver.session(profile.path()).await?;
    let result = steps(&d, &server, &admin, dir.path()).await;
    if result.is_err() {
        report_failure(&d, &format!("wick-browser-{name}-failure")).await;
    }
    let quit = d.quit().await;
    drop(chromedriver);
    eprintln!(
        "browser test {name} against {} took {:.1?}",
        server.base,
        started.elapsed()
    );
    result?;
    Ok(quit?)
}

/// A new user of `role` (password `password`) made a member of `project` by the admin; returns
/// their API client and id.
pub fn member(
    server: &Server,
    admin: &Api,
    project: i64,
    name: &str,
    role: &str,
    password: &str,
) -> Result<(Api, i64)> {
    add_user(&server.db, name, role, password);
    let api = server.client(name);
    let uid = api.get("/me").1["id"].as_i64().context("user id")?;
    let (status, body) = admin.send(
        "PUT",
        &format!("/projects/{project}/members/{uid}"),
        json!({}),
    );
    ensure!(
        status == 204,
        "add {name} to project {project}: {status} {body}"
    );
    Ok((api, uid))
}

/// Waits for the annotation page to show an item (or the "nothing left" card) and be idle;
/// returns the shown item's external id ("" when none).
pub async fn annotate_ready(d: &WebDriver, labeled: usize) -> Result<String> {
    let v = wait_js(
        d,
        &format!("the annotation page to be idle with {labeled} labeled"),
        30,
        &format!(
            "const $ = (id) => document.getElementById(id);
             if (!$('annotate') || $('annotate').classList.contains('busy')) return null;
             if ($('counter').textContent !== '{labeled} labeled this session') return null;
             if (!$('item').hidden) return {{ ext: $('item-ext-id').textContent }};
             if (!$('empty').hidden) return {{ ext: '' }};
             return null;"
        ),
    )
    .await?;
    Ok(v["ext"].as_str().unwrap_or_default().to_string())
}

/// Waits until the item on screen is no longer `prev` (after a submit).
pub async fn annotate_next(d: &WebDriver, labeled: usize, prev: &str) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ext = annotate_ready(d, labeled).await?;
        if ext != prev {
            return Ok(ext);
        }
        ensure!(
            Instant::now() < deadline,
            "item {prev} is still on screen after submitting it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Selects `needle` (its first occurrence) inside #item-text with a DOM Range, as a mouse drag
/// would: offsets are found in the page's own (UTF-16) string and mapped onto the text nodes.
/// Returns the UTF-16 [start, end) that was selected.
pub async fn select_text(d: &WebDriver, needle: &str) -> Result<(u64, u64)> {
    let v = js(
        d,
        "const root = document.getElementById('item-text');
         const start = root.textContent.indexOf(arguments[0]);
         if (start < 0) return null;
         const end = start + arguments[0].length;
         function point(off) {
           const walk = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
           let n, seen = 0, last = null;
           while ((n = walk.nextNode())) {
             if (off <= seen + n.data.length) return [n, off - seen];
             seen += n.data.length;
             last = n;
           }
           return [last, last.data.length];
         }
         const r = document.createRange();
         r.setStart(...point(start));
         r.setEnd(...point(end));
         const sel = window.getSelection();
         sel.removeAllRanges();
         sel.addRange(r);
         return { start, end, selected: sel.toString() };",
        vec![json!(needle)],
    )
    .await?;
    ensure!(!v.is_null(), "{needle:?} is not in #item-text");
    ensure!(
        v["selected"] == json!(needle),
        "the selection reads {} instead of {needle:?}",
        v["selected"]
    );
    Ok((
        v["start"].as_u64().unwrap_or_default(),
        v["end"].as_u64().unwrap_or_default(),
    ))
}

/// The spans drawn in #item-text: (start, end, label, text).
pub async fn marks(d: &WebDriver) -> Result<Vec<(u64, u64, String, String)>> {
    let v = js(
        d,
        "return [...document.querySelectorAll('#item-text mark.span')].map((m) =>
           [Number(m.dataset.start), Number(m.dataset.end), m.dataset.label, m.textContent]);",
        vec![],
    )
    .await?;
    let mut out: Vec<(u64, u64, String, String)> = serde_json::from_value(v)?;
    out.sort();
    Ok(out)
}

//! JSON over HTTP with the habits a shared inference server needs: a timeout per request,
//! retries with exponential back-off on 429, 5xx and lost connections, and a circuit breaker
//! that stops calling a server that keeps failing, so that a dead server costs one quick
//! refusal per call instead of a full round of retries.
use super::RemoteError;
use serde_json::Value;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How hard to try.
#[derive(Debug, Clone)]
pub struct Policy {
    pub timeout: Duration,
    /// Tries per call, the first included.
    pub attempts: u32,
    /// The first wait between tries; it doubles up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Failed calls in a row that open the breaker, and how long it stays open.
    pub breaker_failures: u32,
    pub breaker_open: Duration,
    /// Requests in flight at once at most (the label scorer's parallelism; it also stays
    /// within the server's slots).
    pub concurrency: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(120),
            attempts: 4,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
            breaker_failures: 3,
            breaker_open: Duration::from_secs(5),
            concurrency: 16,
        }
    }
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    api_key: Option<String>,
    pub policy: Policy,
    breaker: Mutex<Breaker>,
}

/// One try's outcome: an answer, a failure worth retrying, or one that is final.
enum Try {
    Done(Value),
    Retry(String),
    Fail(RemoteError),
}

impl Client {
    pub fn new(base: &str, api_key: Option<String>, policy: Policy) -> Self {
        Self {
            agent: ureq::AgentBuilder::new()
                .timeout(policy.timeout)
                .max_idle_connections_per_host(policy.concurrency.max(1) * 2)
                .build(),
            base: base.to_string(),
            api_key,
            policy,
            breaker: Mutex::new(Breaker::default()),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn get(&self, path: &str) -> Result<Value, RemoteError> {
        self.call(path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, RemoteError> {
        self.call(path, Some(body))
    }

    fn call(&self, path: &str, body: Option<&Value>) -> Result<Value, RemoteError> {
        let url = format!("{}{path}", self.base);
        self.check_breaker(&url)?;
        let mut wait = self.policy.backoff;
        let mut last = String::new();
        for attempt in 1..=self.policy.attempts.max(1) {
            match self.try_once(&url, body) {
                Try::Done(v) => {
                    self.record(true);
                    return Ok(v);
                }
                Try::Fail(e) => return Err(e),
                Try::Retry(reason) => {
                    tracing::debug!(%url, attempt, %reason, "inference server call failed");
                    last = reason;
                }
            }
            if attempt < self.policy.attempts {
                std::thread::sleep(wait);
                wait = (wait * 2).min(self.policy.max_backoff);
            }
        }
        self.record(false);
        Err(RemoteError::Unavailable { url, reason: last })
    }

    fn try_once(&self, url: &str, body: Option<&Value>) -> Try {
        let mut req = match body {
            Some(_) => self.agent.post(url),
            None => self.agent.get(url),
        };
        if let Some(key) = &self.api_key {
            req = req.set("Authorization", &format!("Bearer {key}"));
        }
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) => match r.into_json::<Value>() {
                Ok(v) => Try::Done(v),
                Err(e) => Try::Fail(RemoteError::BadReply {
                    url: url.to_string(),
                    message: format!("the body is not JSON: {e}"),
                }),
            },
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                if status == 429 || status >= 500 {
                    Try::Retry(format!("HTTP {status}: {text}"))
                } else {
                    Try::Fail(RemoteError::Refused {
                        url: url.to_string(),
                        status,
                        body: text,
                    })
                }
            }
            Err(ureq::Error::Transport(t)) => Try::Retry(t.to_string()),
        }
    }

    fn check_breaker(&self, url: &str) -> Result<(), RemoteError> {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            Some(until) if Instant::now() < until => Err(RemoteError::CircuitOpen {
                url: url.to_string(),
                failures: b.failures,
                retry_in_s: until.saturating_duration_since(Instant::now()).as_secs() + 1,
            }),
            // Half open: this call is the probe; a failure opens the breaker again.
            Some(_) => {
                b.open_until = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            *b = Breaker::default();
            return;
        }
        b.failures += 1;
        if b.failures >= self.policy.breaker_failures {
            b.open_until = Some(Instant::now() + self.policy.breaker_open);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> Policy {
        Policy {
            timeout: Duration::from_millis(300),
            attempts: 2,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            breaker_failures: 2,
            breaker_open: Duration::from_secs(60),
            concurrency: 1,
        }
    }

    /// A port nothing listens on: bound, then closed.
    fn dead_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn a_dead_server_is_unavailable_then_the_breaker_opens() {
        let c = Client::new(&format!("http://127.0.0.1:{}", dead_port()), None, quick());
        for _ in 0..2 {
            let e = c.get("/props").unwrap_err();
            assert!(matches!(e, RemoteError::Unavailable { .. }), "{e}");
            assert!(e.is_unavailable());
        }
        let e = c.get("/props").unwrap_err();
        assert!(
            matches!(e, RemoteError::CircuitOpen { failures: 2, .. }),
            "{e}"
        );
        assert!(e.is_unavailable());
    }

    #[test]
    fn a_4xx_is_final_and_5xx_is_retried() {
        // A one-shot HTTP server answering each connection with the next canned status.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            for status in ["503 Busy", "200 OK", "400 Bad Request"] {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let body = if status.starts_with("200") {
                    "{\"ok\":1}"
                } else {
                    "no"
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, quick());
        assert_eq!(c.get("/x").unwrap()["ok"], 1, "the 503 was retried");
        let e = c.get("/x").unwrap_err();
        assert!(matches!(e, RemoteError::Refused { status: 400, .. }), "{e}");
        assert!(!e.is_unavailable());
        server.join().unwrap();
    }
}

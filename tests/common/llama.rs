//! llama.cpp's `llama-server` serving the embedded GGUF on 127.0.0.1: the real
//! OpenAI-compatible peer of the remote-inference tests. scripts/build-llamacpp.sh builds it
//! from the same sdist as the engine benchmark's peer; scripts/test.sh runs that first.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct LlamaServer {
    child: Child,
    pub port: u16,
}

/// A port free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl LlamaServer {
    /// Starts it on `port` with two slots and waits until `/health` answers 200.
    pub fn start(port: u16) -> LlamaServer {
        let bin = super::root().join("target/llama.cpp/bin/llama-server");
        assert!(
            bin.exists(),
            "{} is missing: run scripts/build-llamacpp.sh",
            bin.display()
        );
        let child = Command::new(&bin)
            .arg("-m")
            .arg(super::model_path())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["-t", "2", "-np", "2", "-c", "4096", "--no-webui"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let mut server = LlamaServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = ureq::get(&format!("{}/health", server.url())).call() {
                if r.status() == 200 {
                    return server;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("llama-server exited while starting: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "llama-server did not become healthy"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The `--model` value that points Wick at it.
    pub fn spec(&self) -> String {
        format!("openai:{}", self.url())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

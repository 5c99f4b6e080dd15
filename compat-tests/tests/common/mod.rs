//! Starts the real `oxbow` binary on an ephemeral port and a temporary data dir.
//!
//! The binary is `$OXBOW_BIN`, else `<workspace>/target/debug/oxbow`; a missing binary fails the
//! test with a message saying how to build it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Broker {
    pub dir: tempfile::TempDir,
    pub port: u16,
    overrides: Vec<String>,
    child: Option<Child>,
}

fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("OXBOW_BIN") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/oxbow");
    assert!(
        p.exists(),
        "oxbow binary not found at {}: run `cargo build -p oxbow-broker` or set OXBOW_BIN",
        p.display()
    );
    p
}

impl Broker {
    pub fn start(overrides: &[&str]) -> Broker {
        let mut b = Broker {
            dir: tempfile::tempdir().expect("temp dir"),
            port: 0,
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--override")
            .arg(format!(
                "log.dirs={}",
                self.dir.path().join("data").display()
            ))
            .arg("--override")
            .arg("group.initial.rebalance.delay.ms=0");
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("oxbow.stderr"))
            .expect("stderr file");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn oxbow");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read ready line");
        let port = line
            .trim()
            .strip_prefix("oxbow ready PLAINTEXT://127.0.0.1:")
            .and_then(|p| p.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(self.dir.path().join("oxbow.stderr"))
                    .unwrap_or_default();
                panic!("broker not ready: {line:?}\n{log}")
            });
        self.port = port;
        self.child = Some(child);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let status = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM failed");
            for _ in 0..300 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("broker did not stop within 30 s of SIGTERM");
        }
    }

    /// Starts again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

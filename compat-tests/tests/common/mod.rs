//! Test harness: the real `oxbow` binary on a temporary data dir, and a TCP proxy in front of it.
//!
//! The binary is `$OXBOW_BIN`, else `<workspace>/target/debug/oxbow`; a missing binary fails the
//! test with a message saying how to build it. Every test starts its own broker on its own
//! directory and ephemeral port, so tests in one binary can run in parallel threads.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long the broker may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long SIGTERM may take.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

fn binary() -> PathBuf {
    let p = match std::env::var_os("OXBOW_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/oxbow"),
    };
    assert!(
        p.is_file(),
        "oxbow binary not found at {}: build it with `cargo build -p oxbow-broker` or set OXBOW_BIN",
        p.display()
    );
    p
}

/// A port that was free a moment ago (for brokers that must listen on a port known in advance).
pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// One running (or stopped) broker process and its data directory.
pub struct Broker {
    pub dir: tempfile::TempDir,
    /// The port the broker listens on (clients connecting directly use it).
    pub port: u16,
    /// The listeners of the last ready line, e.g. `["PLAINTEXT://127.0.0.1:40123"]`.
    pub ready_listeners: Vec<String>,
    overrides: Vec<String>,
    fixed_port: bool,
    child: Option<Child>,
}

impl Broker {
    /// Starts on an ephemeral port with extra `key=value` overrides.
    pub fn start(overrides: &[&str]) -> Broker {
        Self::start_on(0, overrides)
    }

    /// Starts on `port` (0 = ephemeral) with extra `key=value` overrides.
    pub fn start_on(port: u16, overrides: &[&str]) -> Broker {
        let mut b = Broker {
            dir: tempfile::Builder::new()
                .prefix("oxbow-compat")
                .tempdir()
                .expect("temp dir"),
            port,
            ready_listeners: Vec::new(),
            overrides: overrides.iter().map(|s| s.to_string()).collect(),
            fixed_port: port != 0,
            child: None,
        };
        b.spawn();
        b
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("oxbow.stderr")
    }

    /// The last `lines` lines the broker wrote to stderr (over all its runs).
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr_path(), lines)
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--override")
            .arg(format!("listeners=PLAINTEXT://127.0.0.1:{}", self.port))
            .arg("--override")
            .arg(format!("log.dirs={}", self.data_dir().display()))
            .arg("--override")
            .arg("group.initial.rebalance.delay.ms=0");
        for o in &self.overrides {
            cmd.arg("--override").arg(o);
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.stderr_path())
            .expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary().display()));

        // Read stdout on a thread: the first line is sent back, the rest is drained so the
        // broker never blocks on (or dies from) a full or closed pipe.
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = match lines.next() {
                Some(Ok(l)) => l,
                _ => String::new(),
            };
            let _ = tx.send(first);
            for _ in lines.by_ref() {}
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker printed no ready line within {READY_TIMEOUT:?}; stderr tail:\n{}",
                    self.stderr_tail(40)
                );
            }
        };
        let listeners: Vec<String> = match line.trim().strip_prefix("oxbow ready ") {
            Some(rest) => rest.split_whitespace().map(str::to_string).collect(),
            None => Vec::new(),
        };
        let parsed_port = listeners
            .iter()
            .find_map(|l| l.strip_prefix("PLAINTEXT://"))
            .and_then(|hp| hp.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        let Some(parsed_port) = parsed_port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "broker did not print `oxbow ready PLAINTEXT://host:port` (got {line:?}); stderr tail:\n{}",
                self.stderr_tail(40)
            );
        };
        // The ready line shows advertised addresses; with a fixed port (e.g. behind a proxy
        // that is advertised instead) the port we asked for is where the broker listens.
        if !self.fixed_port {
            self.port = parsed_port;
        }
        self.ready_listeners = listeners;
        self.child = Some(child);
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILL: no shutdown work at all.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the clean shutdown; panics if it takes longer than 30 s or the
    /// broker exits with a failure status.
    pub fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", c.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                assert!(
                    status.success(),
                    "broker exited with {status} after SIGTERM; stderr tail:\n{}",
                    self.stderr_tail(40)
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        panic!(
            "broker did not stop within {STOP_TIMEOUT:?} of SIGTERM; stderr tail:\n{}",
            self.stderr_tail(40)
        );
    }

    /// Stops (SIGTERM, if still running) and starts again on the same data dir and port.
    pub fn restart(&mut self) {
        self.stop();
        self.fixed_port = true;
        self.spawn();
    }

    /// Stops (SIGTERM, if still running) and starts again on the same data dir, any port.
    pub fn restart_on_new_port(&mut self) {
        self.stop();
        self.fixed_port = false;
        self.port = 0;
        self.spawn();
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill_9();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Poll `f` until it returns `Some`, at most `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// TCP proxy
// ---------------------------------------------------------------------------------------------

const PRODUCE_API_KEY: i16 = 0;

struct ProxyState {
    /// Where to forward; 0 until set (connections arriving before are refused).
    upstream_port: AtomicU16,
    /// How many more Produce exchanges to sabotage.
    cuts_left: AtomicUsize,
    /// How many were sabotaged.
    cuts_done: AtomicUsize,
    /// Produce requests seen from clients.
    produce_requests: AtomicUsize,
    connections: AtomicUsize,
    stop: AtomicBool,
}

/// A TCP proxy in front of the broker that understands Kafka framing just enough to cut a
/// connection after the broker has received (and answered) a Produce request but before the
/// answer reaches the client: the client cannot know whether its records were written, and
/// retries them.
pub struct Proxy {
    pub port: u16,
    state: Arc<ProxyState>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Listens on an ephemeral port; forwarding starts once `set_upstream` is called.
    pub fn start() -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let state = Arc::new(ProxyState {
            upstream_port: AtomicU16::new(0),
            cuts_left: AtomicUsize::new(0),
            cuts_done: AtomicUsize::new(0),
            produce_requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let st = state.clone();
        runtime.spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if st.stop.load(Ordering::SeqCst) {
                    break;
                }
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = serve_connection(client, st).await;
                });
            }
        });
        Proxy {
            port,
            state,
            runtime: Some(runtime),
        }
    }

    pub fn set_upstream(&self, port: u16) {
        self.state.upstream_port.store(port, Ordering::SeqCst);
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The next `n` Produce exchanges end with the connection cut instead of the response.
    pub fn cut_after_produce(&self, n: usize) {
        self.state.cuts_left.store(n, Ordering::SeqCst);
    }

    pub fn cuts_done(&self) -> usize {
        self.state.cuts_done.load(Ordering::SeqCst)
    }

    pub fn produce_requests(&self) -> usize {
        self.state.produce_requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let n = i32::from_be_bytes(len);
    if !(0..=256 * 1024 * 1024).contains(&n) {
        return Err(std::io::Error::other("bad frame length"));
    }
    let mut frame = vec![0u8; 4 + n as usize];
    frame[..4].copy_from_slice(&len);
    r.read_exact(&mut frame[4..]).await?;
    Ok(frame)
}

async fn serve_connection(
    client: tokio::net::TcpStream,
    st: Arc<ProxyState>,
) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let port = st.upstream_port.load(Ordering::SeqCst);
    if port == 0 {
        return Ok(()); // dropping the client closes it
    }
    let broker = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    st.connections.fetch_add(1, Ordering::SeqCst);
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    let (mut cr, mut cw) = client.into_split();
    let (mut br, mut bw) = broker.into_split();
    // Correlation ids of Produce requests whose responses must never reach the client.
    let (doomed_tx, mut doomed_rx) = tokio::sync::mpsc::unbounded_channel::<i32>();

    let st_up = st.clone();
    let upstream = async move {
        loop {
            let frame = read_frame(&mut cr).await?;
            if frame.len() >= 12 {
                let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                let correlation = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                if api_key == PRODUCE_API_KEY {
                    st_up.produce_requests.fetch_add(1, Ordering::SeqCst);
                    let armed = st_up
                        .cuts_left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if armed {
                        let _ = doomed_tx.send(correlation);
                    }
                }
            }
            bw.write_all(&frame).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    let st_down = st.clone();
    let downstream = async move {
        let mut doomed: Vec<i32> = Vec::new();
        loop {
            let frame = read_frame(&mut br).await?;
            while let Ok(c) = doomed_rx.try_recv() {
                doomed.push(c);
            }
            if frame.len() >= 8 {
                let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                if doomed.contains(&correlation) {
                    // The broker has answered: the records are written. Drop the answer and
                    // the connection.
                    st_down.cuts_done.fetch_add(1, Ordering::SeqCst);
                    return Err(std::io::Error::other("cut"));
                }
            }
            cw.write_all(&frame).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    // Whichever direction ends first ends the connection in both directions.
    tokio::select! {
        r = upstream => r,
        r = downstream => r,
    }
}

//! Support for the network namespace tests: the namespace pair ([`Lab`]), the
//! capture child process ([`CaptureChild`], and its side, [`run_child_if_requested`]),
//! a DNS responder inside the peer namespace, and an in-process loopback capture.
//!
//! The child writes one line per item to a file the parent polls:
//! `EVENT <event json>`, `READY` (its own probe datagram was captured, so the
//! socket is bound and filtering), and `COUNTERS <json>` about five times a second.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{IpAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shaobing_agent::capture::network::{self, NetworkConfig, frames};
use shaobing_agent::capture::{Capture, CaptureContext};
use shaobing_agent::counters::Counters;
use shaobing_wire::v1::{Event, Host, NetAction, NetworkEvent, event::Body};
use tokio::sync::mpsc;

/// Environment variable carrying the child's [`ChildSpec`] as JSON.
pub const CHILD_SPEC_ENV: &str = "SHAOBING_NETNS_CAPTURE_CHILD";
const CHILD_TEST: &str = "capture_in_current_namespace";
const PROBE_PORT: u16 = 9;
const CHILD_MAX_SECS: u64 = 120;

/// A captured network event (what the assertions look at).
#[derive(Debug, Clone)]
pub struct NetEvent {
    pub source: String,
    pub event_id: String,
    pub network: NetworkEvent,
    /// The whole wire event, for the detector.
    pub event: Event,
}

impl NetEvent {
    fn from_event(event: Event) -> Option<Self> {
        match &event.body {
            Some(Body::Network(network)) => Some(NetEvent {
                source: event.source.clone(),
                event_id: event.event_id.clone(),
                network: network.clone(),
                event,
            }),
            _ => None,
        }
    }
}

/// Runs every rule under `rules/` (with its lists and clause map) over `events`,
/// numbering them as the spool would; returns the alerts raised.
pub fn detect(events: &[NetEvent]) -> Vec<shaobing_detect::Alert> {
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    let mut sources = Vec::new();
    let mut lists = std::collections::BTreeMap::new();
    let mut pending = vec![rules.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("rules dir").flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if path.is_dir() {
                pending.push(path);
            } else if name.ends_with(".txt") && dir.ends_with("lists") {
                let text = std::fs::read_to_string(&path).expect("list");
                lists.insert(
                    name.trim_end_matches(".txt").to_string(),
                    shaobing_detect::parse_list(&text),
                );
            } else if name.ends_with(".yml") && !name.ends_with(".tests.yml") && name != "mlps.yml"
            {
                let yaml = std::fs::read_to_string(&path).expect("rule");
                sources.push(shaobing_detect::RuleSource {
                    origin: path.display().to_string(),
                    yaml,
                });
            }
        }
    }
    let config = shaobing_detect::DetectConfig {
        sources,
        lists,
        mlps_yaml: std::fs::read_to_string(rules.join("mlps.yml")).ok(),
        ..shaobing_detect::DetectConfig::default()
    };
    let (mut detector, report) = shaobing_detect::Detector::new(config);
    assert!(
        report.rejected.is_empty(),
        "rules rejected: {:?}",
        report.rejected
    );
    let mut alerts = Vec::new();
    for (index, event) in events.iter().enumerate() {
        let mut event = event.event.clone();
        event.event_id = format!("netns-{index}");
        alerts.extend(detector.process(&event));
    }
    alerts
}

/// Two namespaces, `monitored` and `peer`, joined by a veth pair on 10.231.<n>.0/24.
pub struct Lab {
    pub monitored: String,
    pub peer: String,
    pub monitored_veth: String,
    pub peer_veth: String,
    pub monitored_ip: String,
    pub peer_ip: String,
}

impl Lab {
    pub fn new(n: u8) -> Lab {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the network namespace tests need root (ip netns)"
        );
        let pid = std::process::id();
        let lab = Lab {
            monitored: format!("sbn{pid}-{n}m"),
            peer: format!("sbn{pid}-{n}p"),
            monitored_veth: format!("sbv{}{n}m", pid % 100_000),
            peer_veth: format!("sbv{}{n}p", pid % 100_000),
            monitored_ip: format!("10.231.{n}.1"),
            peer_ip: format!("10.231.{n}.2"),
        };
        for ns in [&lab.monitored, &lab.peer] {
            lab.sh(&["ip", "netns", "add", ns]);
            lab.sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        lab.connect_veth();
        lab
    }

    /// Creates the veth pair, moves its ends into the namespaces and addresses them.
    pub fn connect_veth(&self) {
        self.sh(&[
            "ip",
            "link",
            "add",
            &self.monitored_veth,
            "type",
            "veth",
            "peer",
            "name",
            &self.peer_veth,
        ]);
        for (ns, veth, ip) in [
            (&self.monitored, &self.monitored_veth, &self.monitored_ip),
            (&self.peer, &self.peer_veth, &self.peer_ip),
        ] {
            self.sh(&["ip", "link", "set", veth, "netns", ns]);
            self.sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                veth,
            ]);
            self.sh(&["ip", "-n", ns, "link", "set", veth, "up"]);
        }
    }

    /// Deletes the veth pair (both ends) and creates it again.
    pub fn recreate_veth(&self) {
        self.sh(&[
            "ip",
            "-n",
            &self.monitored,
            "link",
            "del",
            &self.monitored_veth,
        ]);
        self.connect_veth();
    }

    /// Runs a command that must succeed.
    pub fn sh(&self, args: &[&str]) {
        let output = Command::new(args[0])
            .args(&args[1..])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs a command in namespace `ns` and returns its output (time-bounded by the
    /// command's own options).
    pub fn run_in(&self, ns: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {ns}: {e}"))
    }

    /// Starts a long-running command in namespace `ns` (killed when dropped).
    pub fn spawn_in(&self, ns: &str, args: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?} in {ns}: {e}"));
        Background(child)
    }

    /// Answers every DNS query to `peer_ip:53` with one A record, `answer`.
    pub fn dns_responder_in_peer(&self, answer: IpAddr) -> DnsResponder {
        let namespace = PathBuf::from(format!("/run/netns/{}", self.peer));
        let bind = format!("{}:53", self.peer_ip);
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            // This thread alone moves into the peer namespace; its socket stays there.
            let ns = File::open(&namespace).expect("peer namespace file");
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let socket = UdpSocket::bind(&bind).expect("bind the dns responder");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("read timeout");
            ready_tx.send(()).expect("ready");
            let mut buffer = [0u8; 1500];
            while !thread_stop.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buffer)
                    && let Some(reply) = frames::dns_response(&buffer[..len], 0, &[answer])
                {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("dns responder started");
        DnsResponder {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.monitored, &self.peer] {
            // Processes we started inside our namespaces (nc, the capture child, ...).
            if let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// A process started in a namespace; killed and reaped when dropped. `ip netns
/// exec` execs the command, so [`Background::pid`] is the command's own pid.
pub struct Background(Child);

impl Background {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The DNS responder thread; stops when dropped.
pub struct DnsResponder {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the child is asked to do.
#[derive(serde::Serialize, serde::Deserialize)]
struct ChildSpec {
    config: NetworkConfig,
    out: PathBuf,
    /// Address the child sends probe datagrams to until it captures one.
    probe_to: IpAddr,
}

/// The capture child process running in the monitored namespace.
pub struct CaptureChild {
    child: Child,
    out: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl CaptureChild {
    /// Starts the child as root capturing on the monitored veth with the default
    /// configuration changed by `adjust`, and waits until it captures.
    pub fn start(lab: &Lab, adjust: impl FnOnce(&mut NetworkConfig)) -> CaptureChild {
        let mut config = Self::config(lab);
        adjust(&mut config);
        let child = Self::launch(lab, &[], config);
        child.wait_ready();
        child
    }

    fn config(lab: &Lab) -> NetworkConfig {
        NetworkConfig {
            interfaces: vec![lab.monitored_veth.clone()],
            ..NetworkConfig::default()
        }
    }

    /// Starts the child as `nobody` with only `capability` (none when `None`) and
    /// waits until it captures.
    pub fn start_as_nobody(lab: &Lab, capability: Option<&str>) -> CaptureChild {
        let child = Self::start_as_nobody_unready(lab, capability);
        child.wait_ready();
        child
    }

    /// Like [`Self::start_as_nobody`] without waiting for readiness.
    pub fn start_as_nobody_unready(lab: &Lab, capability: Option<&str>) -> CaptureChild {
        let caps = match capability {
            Some(cap) => format!("-all,+{cap}"),
            None => "-all".to_string(),
        };
        let setpriv = [
            "setpriv".to_string(),
            "--reuid=65534".to_string(),
            "--regid=65534".to_string(),
            "--clear-groups".to_string(),
            format!("--inh-caps={caps}"),
            format!("--ambient-caps={caps}"),
            format!("--bounding-set={caps}"),
        ];
        Self::launch(lab, &setpriv, Self::config(lab))
    }

    fn launch(lab: &Lab, prefix: &[String], config: NetworkConfig) -> CaptureChild {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod dir");
        let out = dir.path().join("events.log");
        File::create(&out).expect("events file");
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o666))
            .expect("chmod events");
        let stderr = dir.path().join("stderr.log");
        let spec = ChildSpec {
            config,
            out: out.clone(),
            probe_to: lab.peer_ip.parse().expect("peer address"),
        };
        let exe = std::env::current_exe().expect("test binary");
        let child = Command::new("ip")
            .args(["netns", "exec", &lab.monitored])
            .args(prefix)
            .arg(exe)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(
                CHILD_SPEC_ENV,
                serde_json::to_string(&spec).expect("spec json"),
            )
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start the capture child");
        CaptureChild {
            child,
            out,
            stderr,
            _dir: dir,
        }
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.lines().iter().any(|line| line == "READY") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the capture child never captured its probe; stderr:\n{}",
            self.stderr_text()
        );
    }

    /// Every event captured so far.
    pub fn events(&self) -> Vec<NetEvent> {
        self.lines()
            .iter()
            .filter_map(|line| line.strip_prefix("EVENT "))
            .filter_map(|json| serde_json::from_str::<Event>(json).ok())
            .filter_map(NetEvent::from_event)
            .collect()
    }

    /// The child's latest value of counter `name`.
    pub fn counter(&self, name: &str) -> u64 {
        self.lines()
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("COUNTERS "))
            .and_then(|json| serde_json::from_str::<HashMap<String, u64>>(json).ok())
            .and_then(|counters| counters.get(name).copied())
            .unwrap_or(0)
    }

    /// Waits until counter `name` reaches `at_least`; returns its value.
    pub fn wait_counter(&self, name: &str, at_least: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.counter(name);
            if value >= at_least || Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for CaptureChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the child's events until `done` holds; panics with what was seen on timeout.
pub fn wait_for(
    capture: &CaptureChild,
    timeout: Duration,
    done: impl Fn(&[NetEvent]) -> bool,
) -> Vec<NetEvent> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = capture.events();
        if done(&events) {
            return events;
        }
        if Instant::now() > deadline {
            let seen: Vec<String> = events.iter().map(describe).collect();
            panic!(
                "condition not met within {timeout:?}; {} events:\n{}\nchild stderr:\n{}",
                seen.len(),
                seen.join("\n"),
                capture.stderr_text()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn describe(event: &NetEvent) -> String {
    let n = &event.network;
    format!(
        "{} {} {} {}:{} -> {}:{} {} pid={} exe={} dns={} {:?}",
        event.source,
        n.action().name(),
        n.transport,
        n.src_ip,
        n.src_port,
        n.dst_ip,
        n.dst_port,
        n.direction().name(),
        n.pid,
        n.exe,
        n.dns_query,
        n.dns_answers
    )
}

/// In the child: runs the capture described by [`CHILD_SPEC_ENV`] and returns
/// true, or returns false at once when the variable is not set.
pub fn run_child_if_requested() -> bool {
    let Ok(spec) = std::env::var(CHILD_SPEC_ENV) else {
        return false;
    };
    let spec: ChildSpec = serde_json::from_str(&spec).expect("child spec");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run_child(spec));
    true
}

async fn run_child(spec: ChildSpec) {
    let (counters, mut rx, _tasks) = start_capture(&spec.config);
    let mut out = OpenOptions::new()
        .append(true)
        .open(&spec.out)
        .expect("events file");
    let probe = UdpSocket::bind("0.0.0.0:0").expect("probe socket");
    let probe_port = probe.local_addr().expect("probe addr").port();
    let mut ready = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let deadline = Instant::now() + Duration::from_secs(CHILD_MAX_SECS);
    while Instant::now() < deadline {
        tokio::select! {
            capture = rx.recv() => {
                let Some(capture) = capture else { break };
                for event in capture.events {
                    if let Some(Body::Network(n)) = &event.body
                        && n.action() == NetAction::Connect
                        && n.src_port == u32::from(probe_port)
                        && n.dst_port == u32::from(PROBE_PORT)
                        && !ready
                    {
                        ready = true;
                        writeln!(out, "READY").expect("write");
                    }
                    let json = serde_json::to_string(&event).expect("event json");
                    writeln!(out, "EVENT {json}").expect("write");
                }
            }
            _ = tick.tick() => {
                if !ready {
                    let _ = probe.send_to(b"probe", (spec.probe_to, PROBE_PORT));
                }
                let snapshot = serde_json::to_string(&counters.snapshot()).expect("counters json");
                writeln!(out, "COUNTERS {snapshot}").expect("write");
            }
        }
    }
}

/// Starts [`network::spawn`] with a fresh context; returns the counters, the
/// receiving end of the agent channel and the tasks.
fn start_capture(
    config: &NetworkConfig,
) -> (
    Arc<Counters>,
    mpsc::Receiver<Capture>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    let (tx, rx) = mpsc::channel(1024);
    let counters = Arc::new(Counters::default());
    let ctx = CaptureContext {
        host: Host {
            hostname: "netns-test".to_string(),
            ..Host::default()
        },
        tx,
        positions: Arc::new(HashMap::new()),
        counters: counters.clone(),
    };
    let tasks = network::spawn(config, &ctx);
    (counters, rx, tasks)
}

/// An in-process capture on `lo` of the current namespace.
pub struct LoopbackCapture {
    events: Arc<Mutex<Vec<NetEvent>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoopbackCapture {
    /// Starts capturing and waits until a probe datagram to 127.0.0.1 is captured.
    pub fn start() -> LoopbackCapture {
        let events = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_events, thread_stop) = (events.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let config = NetworkConfig {
                    interfaces: vec!["lo".to_string()],
                    ..NetworkConfig::default()
                };
                let (_counters, mut rx, tasks) = start_capture(&config);
                while !thread_stop.load(Ordering::Relaxed) {
                    let next = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await;
                    if let Ok(Some(capture)) = next {
                        let mut events = thread_events.lock().expect("events lock");
                        events.extend(capture.events.into_iter().filter_map(NetEvent::from_event));
                    }
                }
                tasks.iter().for_each(|task| task.abort());
            });
        });
        let capture = LoopbackCapture {
            events,
            stop,
            thread: Some(thread),
        };
        let probe = UdpSocket::bind("127.0.0.1:0").expect("probe socket");
        let probe_port = u32::from(probe.local_addr().expect("probe addr").port());
        let deadline = Instant::now() + Duration::from_secs(30);
        let probed = |events: &[NetEvent]| {
            events.iter().any(|e| {
                e.network.action() == NetAction::Connect && e.network.src_port == probe_port
            })
        };
        while !probed(&capture.events.lock().expect("events lock")) {
            assert!(
                Instant::now() < deadline,
                "loopback capture never saw its probe"
            );
            let _ = probe.send_to(b"probe", ("127.0.0.1", PROBE_PORT));
            std::thread::sleep(Duration::from_millis(200));
        }
        capture
    }

    /// Waits until `done` holds for the events captured so far; returns them.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&[NetEvent]) -> bool) -> Vec<NetEvent> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events.lock().expect("events lock").clone();
            if done(&events) || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for LoopbackCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

//! A monitored host for the network end-to-end tests and benchmark: two network
//! namespaces, `monitored` (where the real agent captures) and `peer` (the
//! attacker, C2 server and DNS server), joined by a veth pair; and a third link,
//! the "uplink", from the monitored namespace to the root namespace, where the
//! collector listens (it needs the local ClickHouse on the root namespace's
//! loopback). The agent captures on the peer-facing veth only, so its own
//! shipping traffic on the uplink is not captured.
//!
//! ```text
//!  peer ns                     monitored ns                       root ns
//!  10.231.n.2 ── veth ──  10.231.n.1 (captured)
//!  + listed /32s               10.238.n.2 ── uplink veth ── 10.238.n.1  collector, ClickHouse
//! ```
//!
//! Also: a DNS responder inside the peer namespace, the agent configuration with
//! network capture on, the first entry of a `rules/lists` file, and `/proc`
//! figures (CPU time, RSS) of a process for the benchmark.

use std::fs::File;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::{Agent, Collector, free_port};

/// The namespaces and links of one test; removed (with every process still
/// running inside them) on drop.
pub struct NetworkLab {
    pub monitored: String,
    pub peer: String,
    /// The captured interface, in the monitored namespace.
    pub monitored_veth: String,
    pub peer_veth: String,
    pub monitored_ip: String,
    pub peer_ip: String,
    /// Root-namespace end of the uplink.
    pub uplink_root: String,
    /// Collector-side address of the uplink (in the root namespace).
    pub uplink_root_ip: String,
    pub uplink_monitored_ip: String,
}

impl NetworkLab {
    /// Creates the namespaces and links for lab number `n` (1..=250; distinct
    /// numbers for labs alive at the same time in one process).
    pub fn create(n: u8) -> anyhow::Result<Self> {
        let pid = std::process::id();
        let tag = format!("{}{n}", pid % 100_000);
        let lab = Self {
            monitored: format!("sbe{pid}-{n}m"),
            peer: format!("sbe{pid}-{n}p"),
            monitored_veth: format!("sbe{tag}m"),
            peer_veth: format!("sbe{tag}p"),
            monitored_ip: format!("10.231.{n}.1"),
            peer_ip: format!("10.231.{n}.2"),
            uplink_root: format!("sbe{tag}u"),
            uplink_root_ip: format!("10.238.{n}.1"),
            uplink_monitored_ip: format!("10.238.{n}.2"),
        };
        let uplink_monitored = format!("sbe{tag}v");
        remove_stale_uplinks(&lab.uplink_root_ip);
        for ns in [&lab.monitored, &lab.peer] {
            sh(&["ip", "netns", "add", ns])?;
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        sh(&[
            "ip",
            "link",
            "add",
            &lab.monitored_veth,
            "type",
            "veth",
            "peer",
            "name",
            &lab.peer_veth,
        ])?;
        for (ns, veth, ip) in [
            (&lab.monitored, &lab.monitored_veth, &lab.monitored_ip),
            (&lab.peer, &lab.peer_veth, &lab.peer_ip),
        ] {
            sh(&["ip", "link", "set", veth, "netns", ns])?;
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                veth,
            ])?;
            sh(&["ip", "-n", ns, "link", "set", veth, "up"])?;
        }
        sh(&[
            "ip",
            "link",
            "add",
            &lab.uplink_root,
            "type",
            "veth",
            "peer",
            "name",
            &uplink_monitored,
        ])?;
        sh(&[
            "ip",
            "link",
            "set",
            &uplink_monitored,
            "netns",
            &lab.monitored,
        ])?;
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", lab.uplink_root_ip),
            "dev",
            &lab.uplink_root,
        ])?;
        sh(&["ip", "link", "set", &lab.uplink_root, "up"])?;
        sh(&[
            "ip",
            "-n",
            &lab.monitored,
            "addr",
            "add",
            &format!("{}/24", lab.uplink_monitored_ip),
            "dev",
            &uplink_monitored,
        ])?;
        sh(&[
            "ip",
            "-n",
            &lab.monitored,
            "link",
            "set",
            &uplink_monitored,
            "up",
        ])?;
        Ok(lab)
    }

    /// Gives the peer namespace the extra address `ip` (e.g. a listed C2 server)
    /// and routes it from the monitored namespace through the peer.
    pub fn add_peer_address(&self, ip: &str) -> anyhow::Result<()> {
        sh(&[
            "ip",
            "-n",
            &self.peer,
            "addr",
            "add",
            &format!("{ip}/32"),
            "dev",
            &self.peer_veth,
        ])?;
        sh(&[
            "ip",
            "-n",
            &self.monitored,
            "route",
            "add",
            &format!("{ip}/32"),
            "via",
            &self.peer_ip,
        ])
    }

    /// Runs `args` in namespace `ns` to completion (bounded by the command's own
    /// timeout options) and returns its output.
    pub fn run_in(&self, ns: &str, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {args:?} in {ns}"))
    }

    /// Starts `args` in namespace `ns`; killed when the returned value is dropped.
    /// `ip netns exec` execs the command, so its pid is the command's own.
    pub fn spawn_in(&self, ns: &str, args: &[&str]) -> anyhow::Result<Background> {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {args:?} in {ns}"))?;
        Ok(Background(child))
    }

    /// Pids of the processes named `comm` running in namespace `ns`.
    pub fn pids_named(&self, ns: &str, comm: &str) -> Vec<u32> {
        let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() else {
            return Vec::new();
        };
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map(|c| c.trim() == comm)
                    .unwrap_or(false)
            })
            .collect()
    }

    /// The collector's data-port URL as the agent in the monitored namespace sees it.
    pub fn collector_url(&self, collector: &Collector) -> String {
        format!("https://{}:{}", self.uplink_root_ip, collector.data_port)
    }

    /// Answers every A query sent to `peer_ip:53` with `answer` (NXDOMAIN-free:
    /// other types get an empty answer).
    pub fn dns_responder_in_peer(&self, answer: Ipv4Addr) -> anyhow::Result<DnsResponder> {
        DnsResponder::start(
            PathBuf::from(format!("/run/netns/{}", self.peer)),
            format!("{}:53", self.peer_ip),
            answer,
        )
    }
}

impl Drop for NetworkLab {
    fn drop(&mut self) {
        for ns in [&self.monitored, &self.peer] {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.uplink_root])
            .stderr(Stdio::null())
            .status();
    }
}

/// Deletes root-namespace uplinks of earlier labs (a run killed before its drop)
/// that still hold `ip`: their route would capture the replies to ours.
fn remove_stale_uplinks(ip: &str) {
    let Ok(out) = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "to", &format!("{ip}/32")])
        .output()
    else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "42: sbe12345u@if41    inet 10.238.61.1/24 ..."
        let name = line
            .split_whitespace()
            .nth(1)
            .and_then(|name| name.split('@').next())
            .unwrap_or_default();
        if name.starts_with("sbe") && name.ends_with('u') {
            let _ = Command::new("ip").args(["link", "del", name]).status();
        }
    }
}

/// Runs a command that must succeed.
fn sh(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// A process started in a namespace; killed and reaped when dropped.
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

/// `ca init`, then `serve` on every address (so the monitored namespace reaches it
/// over the uplink, and the CLI and enrollment over loopback).
pub fn start_collector_on_all_addresses(
    dir: &Path,
    clickhouse_database: Option<&str>,
) -> anyhow::Result<Collector> {
    Collector::init_ca(dir)?;
    Collector::serve_on(
        dir,
        clickhouse_database,
        "0.0.0.0",
        free_port(),
        free_port(),
    )
}

/// An agent config shipping to `collector_url` with network capture on
/// `interface` (listeners polled every second, `network_extra` appended to the
/// `[network]` section), login capture on an empty file, file capture off.
pub fn configure_network_agent(
    dir: &Path,
    collector_url: &str,
    interface: &str,
    network_extra: &str,
) -> anyhow::Result<Agent> {
    Agent::configure_sections(
        dir,
        collector_url,
        "",
        &format!("interfaces = [\"{interface}\"]\nlistener_poll_secs = 1\n{network_extra}"),
        "enabled = false",
    )
}

/// The first entry (comments and blank lines skipped) of `rules/lists/<name>.txt`.
pub fn first_listed(name: &str) -> anyhow::Result<String> {
    let path = crate::repo_root().join(format!("rules/lists/{name}.txt"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .find(|line| !line.is_empty())
        .map(str::to_string)
        .with_context(|| format!("{} lists nothing", path.display()))
}

/// A DNS server thread bound inside another network namespace; stops on drop.
pub struct DnsResponder {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsResponder {
    fn start(namespace: PathBuf, bind: String, answer: Ipv4Addr) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let (thread_stop, thread_answered) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            // Only this thread enters the namespace; its socket stays bound there.
            let socket = File::open(&namespace)
                .map_err(|e| format!("{}: {e}", namespace.display()))
                .and_then(|ns| {
                    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("setns: {e}"))
                })
                .and_then(|()| UdpSocket::bind(&bind).map_err(|e| format!("bind {bind}: {e}")))
                .and_then(|socket| {
                    socket
                        .set_read_timeout(Some(Duration::from_millis(100)))
                        .map(|()| socket)
                        .map_err(|e| e.to_string())
                });
            let socket = match socket {
                Ok(socket) => {
                    let _ = ready_tx.send(Ok(()));
                    socket
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let mut buffer = [0u8; 1500];
            while !thread_stop.load(Ordering::Relaxed) {
                if let Ok((len, from)) = socket.recv_from(&mut buffer)
                    && let Some(reply) = dns_reply(&buffer[..len], answer)
                    && socket.send_to(&reply, from).is_ok()
                {
                    thread_answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        match ready_rx.recv_timeout(Duration::from_secs(5)) {
            Ok(Ok(())) => Ok(Self {
                stop,
                answered,
                thread: Some(thread),
            }),
            Ok(Err(e)) => bail!("dns responder: {e}"),
            Err(_) => bail!("dns responder did not start"),
        }
    }

    /// Queries answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

impl Drop for DnsResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The reply to DNS `query` (one question): NOERROR, recursion available, one A
/// record `answer` (TTL 60) when the question is type A, no answer otherwise.
/// `None` for anything that is not a one-question query.
pub fn dns_reply(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    const HEADER: usize = 12;
    let is_query = query.get(2)? & 0x80 == 0;
    let questions = u16::from_be_bytes([*query.get(4)?, *query.get(5)?]);
    if !is_query || questions != 1 {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += len;
    }
    let question_end = at + 4;
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let mut reply = query.get(..question_end)?.to_vec();
    // QR, opcode and RD from the query, AA; RA, rcode 0.
    reply[2] = 0x80 | (query[2] & 0x79) | 0x04;
    reply[3] = 0x80;
    let answers: u16 = if qtype == 1 { 1 } else { 0 };
    reply[6..8].copy_from_slice(&answers.to_be_bytes());
    reply[8..12].fill(0);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some(reply)
}

/// CPU time (user + system, in clock ticks of 1/100 s) of process `pid`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_bytes(&status, field)
}

fn status_field_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kb: u64 = value.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dig c2.example A` as sent by dig 9.18 (with an EDNS OPT record).
    fn query(qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x20, 0, 1, 0, 0, 0, 0, 0, 1];
        for label in ["c2", "example"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
        q
    }

    #[test]
    fn a_query_gets_one_answer_with_the_question_echoed() {
        let q = query(1);
        let reply = dns_reply(&q, Ipv4Addr::new(192, 0, 2, 53)).expect("reply");
        assert_eq!(&reply[..2], &[0x12, 0x34], "same id");
        assert_eq!(reply[2] & 0x80, 0x80, "a response");
        assert_eq!(reply[2] & 0x01, 0x01, "RD copied");
        assert_eq!(reply[3] & 0x0f, 0, "NOERROR");
        assert_eq!(&reply[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        let question_end = 12 + 12 + 4;
        assert_eq!(&reply[12..question_end], &q[12..question_end]);
        assert_eq!(&reply[reply.len() - 4..], &[192, 0, 2, 53]);
        assert_eq!(reply.len(), question_end + 16);
    }

    #[test]
    fn other_types_get_no_answer_and_responses_or_garbage_none() {
        let reply = dns_reply(&query(28), Ipv4Addr::LOCALHOST).expect("reply");
        assert_eq!(&reply[6..8], &[0, 0]);
        let mut response = query(1);
        response[2] |= 0x80;
        assert!(dns_reply(&response, Ipv4Addr::LOCALHOST).is_none());
        assert!(dns_reply(&[0x12, 0x34, 0x01], Ipv4Addr::LOCALHOST).is_none());
        let truncated = &query(1)[..20];
        assert!(dns_reply(truncated, Ipv4Addr::LOCALHOST).is_none());
    }

    #[test]
    fn proc_status_fields_are_read_in_bytes() {
        let status = "Name:\tx\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_field_bytes(status, "VmHWM"), Some(20 << 20));
        assert_eq!(status_field_bytes(status, "VmRSS"), Some(10 << 20));
        assert_eq!(status_field_bytes(status, "VmSwap"), None);
        let me = std::process::id();
        assert!(status_bytes(me, "VmRSS").unwrap_or(0) > 0);
        assert!(cpu_ticks(me).is_some());
    }
}

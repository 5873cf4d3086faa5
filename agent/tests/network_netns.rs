//! Network capture against real traffic: two network namespaces joined by a veth
//! pair. The capture runs inside the "monitored" namespace as a child process (this
//! test binary re-run with `ip netns exec`, see [`capture_in_current_namespace`]);
//! traffic comes from the "peer" namespace or from tools run in the monitored one.
//!
//! Tests (each in its own pair of namespaces, removed afterwards):
//! - [`nmap_syn_scan_shows_as_inbound_connects_to_many_ports`]
//! - [`curl_to_a_threat_list_address_gives_a_connect_event_with_the_process`]
//! - [`dig_of_a_listed_domain_gives_a_dns_query_event_with_answers`]
//! - [`nc_listening_on_4444_gives_a_listen_event_with_the_process`]
//! - [`capture_runs_as_nobody_with_only_cap_net_raw`]
//! - [`kernel_drops_are_counted_not_hidden`]
//! - [`capture_resumes_after_the_interface_is_recreated`]
//! - [`capture_in_current_namespace`]: the child; run directly, a loopback check.
//!
//! Needs root (namespaces), `ip`, `nmap`, `curl`, `nc` (openbsd), `dig`, `setpriv`.
//! Only addresses inside the namespaces are used (10.231.x.x and RFC 5737
//! placeholders assigned to the peer namespace).

mod network_support;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use network_support::{CaptureChild, Lab, NetEvent, detect, wait_for};
use shaobing_wire::v1::{Direction, NetAction};

const WAIT: Duration = Duration::from_secs(30);
/// Rule ids in `rules/network/` the captured traffic must trigger.
const INBOUND_PORT_SCAN: &str = "973b2e8c-d80c-4446-b5d4-6871d1d9bb8e";
const THREAT_INTEL_IP: &str = "9cd56170-aaa5-44d1-a3d2-e0d8361bd441";
const THREAT_INTEL_DOMAIN: &str = "5c550ad8-baaa-4e3c-9950-f1eed6b1f5ee";
const BACKDOOR_PORT_LISTENER: &str = "2e74b2c4-d044-4fd4-9946-35f73c05eebb";

/// Whether the detector raised an alert of `rule_id` on `events`.
fn alerted(events: &[NetEvent], rule_id: &str) -> Option<shaobing_detect::Alert> {
    detect(events)
        .into_iter()
        .find(|alert| alert.rule_id == rule_id)
}

/// The first non-comment line of `rules/lists/<name>.txt`.
fn first_listed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../rules/lists/{name}.txt"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .find(|line| !line.is_empty())
        .unwrap_or_else(|| panic!("{} lists nothing", path.display()))
        .to_string()
}

#[test]
fn nmap_syn_scan_shows_as_inbound_connects_to_many_ports() {
    let lab = Lab::new(1);
    let capture = CaptureChild::start(&lab, |_| {});
    let scan = lab.run_in(
        &lab.peer,
        &[
            "nmap",
            "-sS",
            "-Pn",
            "-n",
            "-p",
            "1-300",
            "--max-retries",
            "0",
            "-T4",
            &lab.monitored_ip,
        ],
    );
    assert!(
        scan.status.success(),
        "nmap failed: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let scanned = |events: &[NetEvent]| {
        let mut ports: Vec<u32> = events
            .iter()
            .filter(|e| {
                e.network.action() == NetAction::Connect
                    && e.network.direction() == Direction::Inbound
                    && e.network.src_ip == lab.peer_ip
                    && e.network.transport == "tcp"
            })
            .map(|e| e.network.dst_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    };
    let events = wait_for(&capture, WAIT, |events| scanned(events).len() >= 250);
    let ports = scanned(&events);
    assert!(
        ports.len() >= 250,
        "only {} scanned ports seen",
        ports.len()
    );
    assert!(ports.iter().all(|p| (1..=300).contains(p)));
    let summaries = events
        .iter()
        .filter(|e| e.network.action() == NetAction::Flow && e.network.src_ip == lab.peer_ip)
        .count();
    assert_eq!(
        summaries, 0,
        "unanswered or refused probes get no flow summary"
    );
    assert!(
        events
            .iter()
            .all(|e| e.source == "packet" || e.source == "proc_net")
    );
    assert!(
        events.iter().all(|e| e.event_id.is_empty()),
        "the spool assigns event ids"
    );
    let alert = alerted(&events, INBOUND_PORT_SCAN).expect("the port-scan correlation fires");
    assert_eq!(alert.group_key, format!("SourceIp={}", lab.peer_ip));
}

#[test]
fn curl_to_a_threat_list_address_gives_a_connect_event_with_the_process() {
    let lab = Lab::new(2);
    let threat_ip = first_listed("threat_ips");
    lab.sh(&[
        "ip",
        "netns",
        "exec",
        &lab.peer,
        "ip",
        "addr",
        "add",
        &format!("{threat_ip}/32"),
        "dev",
        &lab.peer_veth,
    ]);
    lab.sh(&[
        "ip",
        "netns",
        "exec",
        &lab.monitored,
        "ip",
        "route",
        "add",
        &format!("{threat_ip}/32"),
        "via",
        &lab.peer_ip,
    ]);
    let _server = lab.spawn_in(
        &lab.peer,
        &["nc", "-l", "-k", "-s", &threat_ip, "-p", "8080"],
    );
    let capture = CaptureChild::start(&lab, |_| {});
    // The server accepts and never answers: curl holds the connection for two seconds.
    let _ = lab.run_in(
        &lab.monitored,
        &[
            "curl",
            "-s",
            "-m",
            "2",
            &format!("http://{threat_ip}:8080/"),
        ],
    );
    let to_threat = |e: &NetEvent, action: NetAction| {
        e.network.action() == action && e.network.dst_ip == threat_ip && e.network.dst_port == 8080
    };
    let events = wait_for(&capture, WAIT, |events| {
        events.iter().any(|e| to_threat(e, NetAction::Flow))
    });
    let connect = events
        .iter()
        .find(|e| to_threat(e, NetAction::Connect))
        .expect("a connect event to the listed address");
    assert_eq!(connect.network.direction(), Direction::Outbound);
    assert_eq!(connect.network.src_ip, lab.monitored_ip);
    assert_eq!(connect.network.transport, "tcp");
    assert!(
        connect.network.exe.ends_with("/curl"),
        "process of the connect: {:?}",
        connect.network
    );
    assert!(connect.network.pid > 0);
    assert_eq!(connect.network.user, "root");
    assert!(events.iter().any(|e| to_threat(e, NetAction::Accept)));
    let flow = events
        .iter()
        .find(|e| to_threat(e, NetAction::Flow))
        .expect("flow summary");
    assert!(
        flow.network.packets >= 4 && flow.network.bytes > 0,
        "{:?}",
        flow.network
    );
    assert!(
        flow.network.exe.ends_with("/curl"),
        "summary keeps the process"
    );
    assert!(
        alerted(&events, THREAT_INTEL_IP).is_some(),
        "the threat-intel rule fires"
    );
}

#[test]
fn dig_of_a_listed_domain_gives_a_dns_query_event_with_answers() {
    let lab = Lab::new(3);
    let domain = first_listed("threat_domains");
    let answer = "192.0.2.53";
    let _responder = lab.dns_responder_in_peer(answer.parse().expect("answer address"));
    let capture = CaptureChild::start(&lab, |_| {});
    let dig = lab.run_in(
        &lab.monitored,
        &[
            "dig",
            &format!("@{}", lab.peer_ip),
            "+time=2",
            "+tries=1",
            &domain,
            "A",
        ],
    );
    let output = String::from_utf8_lossy(&dig.stdout);
    assert!(output.contains(answer), "dig got no answer: {output}");
    let events = wait_for(&capture, WAIT, |events| {
        events
            .iter()
            .any(|e| e.network.action() == NetAction::DnsQuery && e.network.dns_query == domain)
    });
    let query = events
        .iter()
        .find(|e| e.network.action() == NetAction::DnsQuery && e.network.dns_query == domain)
        .expect("dns_query event");
    assert_eq!(query.network.dns_type, "A");
    assert_eq!(query.network.dns_answers, vec![answer.to_string()]);
    assert_eq!(query.network.dns_rcode, "NOERROR");
    assert_eq!(query.network.direction(), Direction::Outbound);
    assert_eq!(query.network.src_ip, lab.monitored_ip);
    assert_eq!(
        (query.network.dst_ip.as_str(), query.network.dst_port),
        (lab.peer_ip.as_str(), 53)
    );
    assert!(
        !events
            .iter()
            .any(|e| e.network.action() == NetAction::Connect && e.network.dst_port == 53),
        "a lookup is one dns_query event, not a udp flow as well"
    );
    assert!(
        alerted(&events, THREAT_INTEL_DOMAIN).is_some(),
        "the threat-domain rule fires"
    );
}

#[test]
fn nc_listening_on_4444_gives_a_listen_event_with_the_process() {
    let lab = Lab::new(4);
    let capture = CaptureChild::start(&lab, |config| config.listener_poll_secs = 1);
    let nc = lab.spawn_in(&lab.monitored, &["nc", "-l", "-p", "4444"]);
    let nc_pid = nc.pid();
    let listens = |events: &[NetEvent]| {
        events
            .iter()
            .find(|e| e.network.action() == NetAction::Listen && e.network.dst_port == 4444)
            .cloned()
    };
    let events = wait_for(&capture, WAIT, |events| listens(events).is_some());
    let listen = listens(&events).expect("listen event for port 4444");
    assert_eq!(listen.source, "proc_net");
    assert_eq!(listen.network.transport, "tcp");
    assert_eq!(listen.network.pid, nc_pid, "{:?}", listen.network);
    assert!(listen.network.exe.contains("nc"), "{:?}", listen.network);
    assert_eq!(listen.network.user, "root");
    assert!(
        alerted(&events, BACKDOOR_PORT_LISTENER).is_some(),
        "the backdoor-listener rule fires"
    );

    drop(nc);
    let events = wait_for(&capture, WAIT, |events| {
        events
            .iter()
            .any(|e| e.network.action() == NetAction::ListenClosed && e.network.dst_port == 4444)
    });
    let closed = events
        .iter()
        .find(|e| e.network.action() == NetAction::ListenClosed && e.network.dst_port == 4444)
        .expect("listen_closed event");
    assert_eq!(
        closed.network.pid, nc_pid,
        "the closing event names the process too"
    );
}

#[test]
fn capture_runs_as_nobody_with_only_cap_net_raw() {
    let lab = Lab::new(5);
    let capture = CaptureChild::start_as_nobody(&lab, Some("net_raw"));
    let _ = lab.run_in(
        &lab.peer,
        &["nc", "-z", "-w", "1", &lab.monitored_ip, "7777"],
    );
    let events = wait_for(&capture, WAIT, |events| {
        events
            .iter()
            .any(|e| e.network.action() == NetAction::Connect && e.network.dst_port == 7777)
    });
    assert!(
        events
            .iter()
            .any(|e| e.network.src_ip == lab.peer_ip && e.network.dst_port == 7777)
    );
    assert_eq!(capture.counter("network.capture_errors"), 0);

    // Without the capability the same child cannot open its socket, and says so.
    let denied = CaptureChild::start_as_nobody_unready(&lab, None);
    let errors = denied.wait_counter("network.capture_errors", 1, WAIT);
    assert!(errors >= 1, "capture without CAP_NET_RAW must fail visibly");
}

#[test]
fn kernel_drops_are_counted_not_hidden() {
    let lab = Lab::new(6);
    // The smallest receive buffer the kernel allows, and no filter: a burst overflows it.
    let capture = CaptureChild::start(&lab, |config| {
        config.socket_buffer_bytes = 1;
        config.bpf = false;
    });
    let burst = lab.run_in(
        &lab.peer,
        &[
            "hping3",
            "-q",
            "-S",
            "-p",
            "80",
            "-i",
            "u1",
            "-c",
            "20000",
            &lab.monitored_ip,
        ],
    );
    assert!(
        burst.status.success() || burst.status.code() == Some(1),
        "hping3 failed to run"
    );
    let drops = capture.wait_counter("network.kernel_drops", 1, WAIT);
    assert!(
        drops >= 1,
        "a burst into a tiny buffer must show kernel drops"
    );
}

#[test]
fn capture_resumes_after_the_interface_is_recreated() {
    let lab = Lab::new(7);
    let capture = CaptureChild::start(&lab, |_| {});
    lab.recreate_veth();
    let attempt_seen = |events: &[NetEvent]| {
        events
            .iter()
            .any(|e| e.network.action() == NetAction::Connect && e.network.dst_port == 7070)
    };
    // The capture reopens with backoff; keep knocking until it sees a knock.
    let deadline = std::time::Instant::now() + WAIT;
    while !attempt_seen(&capture.events()) {
        assert!(
            std::time::Instant::now() < deadline,
            "no capture after the interface came back"
        );
        let _ = lab.run_in(
            &lab.peer,
            &["nc", "-z", "-w", "1", &lab.monitored_ip, "7070"],
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        capture.counter("network.capture_errors") >= 1,
        "the outage is counted"
    );
}

/// The capture process of the namespace tests (launched with the environment
/// variable [`network_support::CHILD_SPEC_ENV`]); run directly, it checks capture
/// on loopback in the current namespace.
#[test]
fn capture_in_current_namespace() {
    if network_support::run_child_if_requested() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let capture = network_support::LoopbackCapture::start();
    let _client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (_server, _) = listener.accept().expect("accept");
    let records = capture.wait(WAIT, |events| {
        events.iter().any(|e| {
            e.network.action() == NetAction::Accept && e.network.dst_port == u32::from(port)
        })
    });
    let connect = records
        .iter()
        .find(|e| e.network.action() == NetAction::Connect && e.network.dst_port == u32::from(port))
        .expect("connect on loopback");
    assert_eq!(connect.network.direction(), Direction::Local);
    assert_eq!(
        connect.network.pid,
        std::process::id(),
        "{:?}",
        connect.network
    );
}

//! Network capture end to end, with real processes and real traffic: the real
//! `shaobing-agent` captures inside a "monitored" network namespace and ships over
//! mutual TLS (across an uplink veth) to a real `shaobing-collector` storing into
//! the local ClickHouse server. A "peer" namespace, joined to the monitored one by
//! a veth pair, plays the attacker, the C2 server and the DNS server
//! (`tests/src/network_host.rs` draws the layout).
//!
//! One agent sees four attacks, each checked in ClickHouse (events by SQL or the
//! collector's `events` CLI, alerts by `alerts --json`):
//! - `nmap -sS` from the peer → inbound connects to ≥ 250 ports and the
//!   `inbound_port_scan` correlation naming the scanner's address;
//! - `curl` from the monitored host to the first `threat_ips.txt` address (held
//!   by the peer) → an outbound connect event with curl's process and the
//!   `threat_intel_ip` (C2) alert;
//! - `dig` of the first `threat_domains.txt` name against a DNS server in the
//!   peer namespace → a `dns_query` event with the answer and the
//!   `threat_intel_domain` alert;
//! - `nc -l 4444` on the monitored host → `listen` (nc's pid) and the
//!   `backdoor_port_listener` alert, then `listen_closed` once nc is gone.
//!
//! Needs root (namespaces), `ip`, `nmap`, `curl`, `nc` (openbsd), `dig` and the
//! local ClickHouse server.

use std::net::Ipv4Addr;
use std::time::Duration;

use shaobing_tests::network_host::{
    NetworkLab, configure_network_agent, first_listed, start_collector_on_all_addresses,
};
use shaobing_tests::{Collector, clickhouse_query, unique_database, wait_for};
use shaobing_wire::v1::{Event, NetAction, event::Body};

/// Rule ids in `rules/network/` the attacks must trigger.
const INBOUND_PORT_SCAN: &str = "973b2e8c-d80c-4446-b5d4-6871d1d9bb8e";
const THREAT_INTEL_IP: &str = "9cd56170-aaa5-44d1-a3d2-e0d8361bd441";
const THREAT_INTEL_DOMAIN: &str = "5c550ad8-baaa-4e3c-9950-f1eed6b1f5ee";
const BACKDOOR_PORT_LISTENER: &str = "2e74b2c4-d044-4fd4-9946-35f73c05eebb";
const WAIT: Duration = Duration::from_secs(30);
const DNS_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
const C2_PORT: &str = "8080";
/// The port the readiness knocks go to (nothing listens there).
const KNOCK_PORT: &str = "9";

/// The single value of `sql` (empty string when ClickHouse is briefly away).
fn query(sql: &str) -> String {
    clickhouse_query(sql).unwrap_or_default()
}

/// The first alert of `rule_id` for which `matches` holds, waiting up to [`WAIT`].
fn wait_alert(
    collector: &Collector,
    rule_id: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    wait_for(WAIT, || {
        collector
            .alerts_json()
            .ok()?
            .into_iter()
            .find(|a| a["rule_id"] == rule_id && matches(a))
    })
}

/// Network events from `collector events --kind network --field k=v ...`.
fn network_events(collector: &Collector, fields: &[&str]) -> Vec<Event> {
    let mut args = vec!["events", "--kind", "network", "--limit", "1000"];
    for field in fields {
        args.extend(["--field", field]);
    }
    let Ok(out) = collector.cli(&args) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Event>(line).ok())
        .collect()
}

#[test]
fn attacks_on_a_monitored_namespace_land_in_clickhouse_with_alerts() {
    let lab = NetworkLab::create(61).expect("network namespaces (needs root)");
    let threat_ip = first_listed("threat_ips").unwrap();
    let domain = first_listed("threat_domains").unwrap();
    lab.add_peer_address(&threat_ip).unwrap();
    // The C2 server accepts and never answers: curl holds the connection for 2 s.
    let _c2 = lab
        .spawn_in(
            &lab.peer,
            &["nc", "-l", "-k", "-s", &threat_ip, "-p", C2_PORT],
        )
        .unwrap();
    let dns = lab.dns_responder_in_peer(DNS_ANSWER).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = unique_database("sb_net");
    let collector = start_collector_on_all_addresses(&dir.path().join("collector"), Some(&db))
        .expect("collector starts");
    let mut agent = configure_network_agent(
        &dir.path().join("agent"),
        &lab.collector_url(&collector),
        &lab.monitored_veth,
        "",
    )
    .unwrap();
    let enrolled = agent
        .enroll(&collector, &collector.token().unwrap())
        .unwrap();
    assert!(
        enrolled.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    agent.run_in(&lab.monitored).unwrap();
    let diagnostics = || {
        format!(
            "\nagent log:\n{}\ncollector log (tail):\n{}",
            agent.log_text(),
            collector
                .daemon
                .log_text()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    // Ready when a knock from the peer has been captured, shipped and stored.
    let knocks = format!(
        "SELECT count() FROM {db}.events WHERE kind = 'network' AND src_ip = '{}' AND dst_port = {KNOCK_PORT}",
        lab.peer_ip
    );
    let ready = wait_for(WAIT, || {
        let _ = lab.run_in(
            &lab.peer,
            &["nc", "-z", "-w", "1", &lab.monitored_ip, KNOCK_PORT],
        );
        (query(&knocks).parse::<u64>().ok()? > 0).then_some(())
    });
    assert!(
        ready.is_some(),
        "no captured knock reached ClickHouse{}",
        diagnostics()
    );

    // The four attacks.
    let scan = lab
        .run_in(
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
        )
        .unwrap();
    assert!(
        scan.status.success(),
        "nmap: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
    let _ = lab
        .run_in(
            &lab.monitored,
            &[
                "curl",
                "-s",
                "-m",
                "2",
                &format!("http://{threat_ip}:{C2_PORT}/"),
            ],
        )
        .unwrap();
    let dig = lab
        .run_in(
            &lab.monitored,
            &[
                "dig",
                &format!("@{}", lab.peer_ip),
                "+time=2",
                "+tries=1",
                &domain,
                "A",
            ],
        )
        .unwrap();
    let dig_output = String::from_utf8_lossy(&dig.stdout);
    assert!(
        dig_output.contains(&DNS_ANSWER.to_string()) && dns.answered() >= 1,
        "dig got no answer: {dig_output}"
    );
    let nc = lab
        .spawn_in(&lab.monitored, &["nc", "-l", "-p", "4444"])
        .unwrap();
    let nc_pid = nc.pid();

    // 1. Port scan: the inbound connects, and one alert naming the scanner.
    let scanned_ports = format!(
        "SELECT uniqExact(dst_port) FROM {db}.events WHERE kind = 'network' AND net_action = 'connect' \
         AND direction = 'inbound' AND transport = 'tcp' AND src_ip = '{}' AND dst_port BETWEEN 1 AND 300",
        lab.peer_ip
    );
    let ports = wait_for(WAIT, || {
        let n: u64 = query(&scanned_ports).parse().ok()?;
        (n >= 250).then_some(n)
    });
    assert!(
        ports.is_some(),
        "scanned ports in ClickHouse: {}{}",
        query(&scanned_ports),
        diagnostics()
    );
    let scan_alert = wait_alert(&collector, INBOUND_PORT_SCAN, |a| {
        a["group_key"] == format!("SourceIp={}", lab.peer_ip)
    })
    .unwrap_or_else(|| panic!("no port-scan alert naming {}{}", lab.peer_ip, diagnostics()));
    assert_eq!(scan_alert["kind"], "correlation");
    assert_eq!(scan_alert["level"], "high");
    assert!(
        scan_alert["summary"]
            .as_str()
            .unwrap_or_default()
            .contains(&lab.peer_ip),
        "{scan_alert}"
    );
    assert!(scan_alert["count"].as_u64().unwrap_or(0) >= 20);
    assert!(!scan_alert["mlps"].as_array().unwrap().is_empty());

    // 2. C2 call-out: curl's outbound connect to the listed address, and the alert.
    let c2_connect = format!(
        "SELECT direction, src_ip, exe, user, pid > 0 FROM {db}.events WHERE kind = 'network' \
         AND net_action = 'connect' AND dst_ip = '{threat_ip}' AND dst_port = {C2_PORT} LIMIT 1"
    );
    let connect = wait_for(WAIT, || {
        Some(query(&c2_connect)).filter(|row| !row.is_empty())
    })
    .unwrap_or_else(|| panic!("no connect to {threat_ip} in ClickHouse{}", diagnostics()));
    let fields: Vec<&str> = connect.split('\t').collect();
    assert_eq!(fields[0], "outbound", "{connect}");
    assert_eq!(fields[1], lab.monitored_ip, "{connect}");
    assert!(
        fields[2].ends_with("/curl"),
        "process of the call-out: {connect}"
    );
    assert_eq!((fields[3], fields[4]), ("root", "1"), "{connect}");
    let c2_alert = wait_alert(&collector, THREAT_INTEL_IP, |a| {
        a["group_key"]
            .as_str()
            .unwrap_or_default()
            .contains(&threat_ip)
    })
    .unwrap_or_else(|| panic!("no threat-intel alert for {threat_ip}{}", diagnostics()));
    assert!(
        c2_alert["summary"]
            .as_str()
            .unwrap_or_default()
            .contains("curl"),
        "the alert names the process: {c2_alert}"
    );

    // 3. DNS: the lookup as one event with its answer (through the CLI), and the alert.
    let dns_filter = format!("dns_query={domain}");
    let lookups = wait_for(WAIT, || {
        Some(network_events(&collector, &[&dns_filter])).filter(|events| !events.is_empty())
    })
    .unwrap_or_else(|| panic!("no dns_query for {domain} in ClickHouse{}", diagnostics()));
    let Some(Body::Network(lookup)) = &lookups[0].body else {
        panic!("not a network event: {:?}", lookups[0]);
    };
    assert_eq!(lookup.action(), NetAction::DnsQuery);
    assert_eq!(lookup.dns_type, "A");
    assert_eq!(lookup.dns_answers, vec![DNS_ANSWER.to_string()]);
    assert_eq!(lookup.dns_rcode, "NOERROR");
    assert_eq!(
        (lookup.dst_ip.as_str(), lookup.dst_port),
        (lab.peer_ip.as_str(), 53)
    );
    // No process assertion: dig has exited (socket gone) by the time the agent
    // looks at /proc, which is the known limit of packet-based attribution.
    let dns_alert = wait_alert(&collector, THREAT_INTEL_DOMAIN, |a| {
        a["group_key"] == format!("QueryName={domain}")
    })
    .unwrap_or_else(|| panic!("no threat-domain alert for {domain}{}", diagnostics()));
    assert_eq!(dns_alert["level"], "high");

    // 4. Listener: nc's listen event with its pid, the alert, then listen_closed.
    let listens = |action: &str| {
        format!(
            "SELECT pid, exe, transport FROM {db}.events WHERE kind = 'network' AND net_action = '{action}' \
             AND dst_port = 4444 LIMIT 1"
        )
    };
    let listen = wait_for(WAIT, || {
        Some(query(&listens("listen"))).filter(|row| !row.is_empty())
    })
    .unwrap_or_else(|| panic!("no listen event for 4444 in ClickHouse{}", diagnostics()));
    let fields: Vec<&str> = listen.split('\t').collect();
    assert_eq!(fields[0], nc_pid.to_string(), "{listen}");
    assert!(fields[1].contains("nc"), "{listen}");
    assert_eq!(fields[2], "tcp", "{listen}");
    let listener_alert = wait_alert(&collector, BACKDOOR_PORT_LISTENER, |a| {
        a["group_key"] == "DestinationPort=4444"
    })
    .unwrap_or_else(|| panic!("no backdoor-listener alert{}", diagnostics()));
    assert!(
        !listener_alert["mlps"].as_array().unwrap().is_empty(),
        "等保 clauses attached"
    );
    drop(nc);
    let closed = wait_for(WAIT, || {
        Some(query(&listens("listen_closed"))).filter(|row| !row.is_empty())
    });
    assert!(
        closed.is_some_and(|row| row.starts_with(&nc_pid.to_string())),
        "listen_closed for 4444 naming nc{}",
        diagnostics()
    );

    // The agent reported its capture health: packets seen, no capture errors.
    let health = format!(
        "SELECT max(counter_values[indexOf(counter_names, 'network.packets')]), \
         max(counter_values[indexOf(counter_names, 'network.capture_errors')]) \
         FROM {db}.events WHERE kind = 'status'"
    );
    let health = wait_for(WAIT, || {
        let row = query(&health);
        let (packets, errors) = row.split_once('\t')?;
        let packets: u64 = packets.parse().ok()?;
        (packets >= 300).then(|| (packets, errors.to_string()))
    });
    let (packets, errors) = health.expect("heartbeats report network.packets");
    eprintln!("agent counted {packets} packets; capture errors {errors}");
    assert_eq!(errors, "0");

    for line in agent.log_text().lines().filter(|l| l.contains("WARN")) {
        eprintln!("agent: {line}");
    }
    let alerts = collector.alerts_json().unwrap_or_default();
    for alert in &alerts {
        eprintln!(
            "alert {} [{}] {} x{}",
            alert["rule_title"], alert["group_key"], alert["summary"], alert["count"]
        );
    }
    let scan_alerts = alerts
        .iter()
        .filter(|a| a["rule_id"] == INBOUND_PORT_SCAN)
        .count();
    assert_eq!(scan_alerts, 1, "one scan, one alert (not one per port)");

    let _ = clickhouse_query(&format!("DROP DATABASE IF EXISTS {db}"));
}

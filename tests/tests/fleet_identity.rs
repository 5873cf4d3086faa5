//! Fleet identity with real processes: revoked, expired and foreign
//! certificates are refused (and counted in the collector log); an agent whose
//! certificate is about to expire renews it over its mTLS connection and keeps
//! its agent id.

use std::process::Command;
use std::time::Duration;

use shaobing_tests::{Agent, Collector, bin, ssh_failures, wait_for};

fn enrolled_agent(collector: &Collector, dir: &std::path::Path, extra: &str) -> Agent {
    let agent = Agent::configure_with(dir, collector.data_port, extra).unwrap();
    let out = agent
        .enroll(collector, &collector.token().unwrap())
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agent
}

#[test]
fn revoked_agent_is_refused_from_its_next_connection() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(&dir.path().join("c"), None).unwrap();
    let mut agent = enrolled_agent(&collector, &dir.path().join("a"), "");
    agent.run().unwrap();
    agent.append(&ssh_failures("192.0.2.10", 2)).unwrap();
    let before = wait_for(Duration::from_secs(10), || {
        let n = collector.count_events(&["--kind", "login"]).ok()?;
        (n == 2).then_some(n)
    });
    assert_eq!(
        before,
        Some(2),
        "events flow before revocation: {:?}\ncollector:\n{}\nagent:\n{}",
        collector.count_events(&["--kind", "login"]),
        collector.daemon.log_text(),
        agent.log_text()
    );

    let id = agent.agent_id().unwrap();
    let out = Command::new(bin("shaobing-collector").unwrap())
        .args(["agent", "revoke", &id, "--reason", "test", "--data-dir"])
        .arg(&collector.dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));

    agent.append(&ssh_failures("192.0.2.11", 3)).unwrap();
    let refused = wait_for(Duration::from_secs(15), || {
        collector
            .daemon
            .log_text()
            .contains("revoked agent certificate refused")
            .then_some(())
    });
    assert!(
        refused.is_some(),
        "reconnect refused:\n{}",
        collector.daemon.log_text()
    );
    assert!(
        collector.rejects("revoked_certificate").unwrap() >= 1,
        "revoked refusal counted in /metrics"
    );
    std::thread::sleep(Duration::from_secs(2));
    let n = collector.count_events(&["--kind", "login"]).unwrap();
    assert_eq!(n, 2, "nothing from a revoked agent is stored");
    // The events stay in the agent's spool (not lost): visible in its status.
    let status = Command::new(bin("shaobing-agent").unwrap())
        .arg("--config")
        .arg(&agent.config)
        .arg("status")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stderr);
    assert!(
        !text.contains("spool: 0 batches"),
        "unsent batches kept: {text}"
    );
}

#[test]
fn expired_certificate_is_refused_and_near_expiry_is_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(&dir.path().join("c"), None).unwrap();

    // A certificate from the right CA, but expired yesterday.
    let ca_pem = std::fs::read_to_string(collector.dir.join("pki/ca.crt")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(
        &std::fs::read_to_string(collector.dir.join("pki/ca.key")).unwrap(),
    )
    .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "expired-agent");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(30);
    params.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let expired = params.signed_by(&key, &issuer).unwrap();
    let mut agent = enrolled_agent(&collector, &dir.path().join("old"), "");
    std::fs::write(agent.dir.join("data/agent.crt"), expired.pem()).unwrap();
    std::fs::write(agent.dir.join("data/agent.key"), key.serialize_pem()).unwrap();
    agent.run().unwrap();
    agent.append(&ssh_failures("192.0.2.20", 1)).unwrap();
    let refused = wait_for(Duration::from_secs(10), || {
        let log = collector.daemon.log_text();
        (log.contains("TLS handshake refused") && log.to_lowercase().contains("expired"))
            .then_some(())
    });
    assert!(
        refused.is_some(),
        "expired refused:\n{}",
        collector.daemon.log_text()
    );
    assert!(
        collector.rejects("tls_handshake").unwrap() >= 1,
        "expired refusal counted in /metrics"
    );
    assert_eq!(collector.count_events(&["--kind", "login"]).unwrap(), 0);
    drop(agent);

    // An agent configured to renew 400 days ahead (certificates live 365) renews at connect.
    let mut agent = enrolled_agent(
        &collector,
        &dir.path().join("new"),
        "renew_before_days = 400",
    );
    let id = agent.agent_id().unwrap();
    let old_cert = std::fs::read(agent.dir.join("data/agent.crt")).unwrap();
    agent.run().unwrap();
    agent.append(&ssh_failures("192.0.2.21", 1)).unwrap();
    let renewed = wait_for(Duration::from_secs(10), || {
        let new_cert = std::fs::read(agent.dir.join("data/agent.crt")).ok()?;
        (new_cert != old_cert && agent.log_text().contains("client certificate renewed"))
            .then_some(())
    });
    assert!(renewed.is_some(), "renewed:\n{}", agent.log_text());
    assert!(
        collector
            .daemon
            .log_text()
            .contains("agent certificate renewed")
    );
    assert_eq!(
        agent.agent_id().unwrap(),
        id,
        "same identity after rotation"
    );
    let stored = wait_for(Duration::from_secs(10), || {
        (collector.count_events(&["--kind", "login"]).ok()? == 1).then_some(())
    });
    assert!(stored.is_some(), "events still flow after rotation");
}

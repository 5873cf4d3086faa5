//! The data port refuses agents without a valid client certificate at the TLS
//! handshake, and enrollment refuses unknown and reused tokens with a clear
//! message. Real collector process, real TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use shaobing_tests::{Agent, Collector, wait_for};
use shaobing_wire::tls::{COLLECTOR_SERVER_NAME, client_config};

/// Connects to the data port with `config` and tries to use the connection.
/// Returns the error the TLS layer reported, if any.
fn try_tls(port: u16, config: rustls::ClientConfig) -> Result<(), String> {
    let name = ServerName::try_from(COLLECTOR_SERVER_NAME).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    // HTTP/2 preface; with TLS 1.3 a refused client certificate shows on the first read.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn other_ca_client() -> (Vec<u8>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Evil CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "intruder");
    let _ = ca_cert;
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
}

#[test]
fn data_port_refuses_missing_and_foreign_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path(), None).unwrap();
    let ca = std::fs::read(collector.ca_cert()).unwrap();

    let no_cert = try_tls(collector.data_port, client_config(&ca, None).unwrap());
    assert!(no_cert.is_err(), "no client certificate must be refused");
    let err = no_cert.unwrap_err();
    assert!(
        err.to_lowercase().contains("certificate"),
        "refused at TLS level: {err}"
    );

    let (cert, key) = other_ca_client();
    let foreign = try_tls(
        collector.data_port,
        client_config(&ca, Some((&cert, &key))).unwrap(),
    );
    assert!(
        foreign.is_err(),
        "certificate from another CA must be refused"
    );

    // The collector counted both refusals and is still serving.
    // The client may see the refusal before the collector has logged it.
    let logged = wait_for(Duration::from_secs(10), || {
        let log = collector.daemon.log_text();
        (log.matches("TLS handshake refused").count() >= 2).then_some(())
    });
    assert!(
        logged.is_some(),
        "refusals logged:\n{}",
        collector.daemon.log_text()
    );
    assert!(
        collector.rejects("tls_handshake").unwrap() >= 2,
        "refusals counted in /metrics"
    );

    // A properly enrolled agent still gets through afterwards.
    let agent = Agent::configure(&dir.path().join("agent"), collector.data_port).unwrap();
    let out = agent
        .enroll(&collector, &collector.token().unwrap())
        .unwrap();
    assert!(out.status.success());
    let cert = std::fs::read(dir.path().join("agent/data/agent.crt")).unwrap();
    let key = std::fs::read(dir.path().join("agent/data/agent.key")).unwrap();
    let ok = try_tls(
        collector.data_port,
        client_config(&ca, Some((&cert, &key))).unwrap(),
    );
    assert!(ok.is_ok(), "enrolled agent accepted: {ok:?}");
}

#[test]
fn enrollment_refuses_unknown_and_reused_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(dir.path(), None).unwrap();

    let first = Agent::configure(&dir.path().join("a1"), collector.data_port).unwrap();
    let token = collector.token().unwrap();
    let out = first.enroll(&collector, &token).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let second = Agent::configure(&dir.path().join("a2"), collector.data_port).unwrap();
    let reused = second.enroll(&collector, &token).unwrap();
    assert!(
        !reused.status.success(),
        "a token is good for one enrollment"
    );
    let msg = String::from_utf8_lossy(&reused.stderr);
    assert!(msg.contains("already used"), "clear message: {msg}");

    let unknown = second.enroll(&collector, "sbt_0000").unwrap();
    assert!(!unknown.status.success());
    let msg = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        msg.contains("unknown enrollment token"),
        "clear message: {msg}"
    );
    assert!(
        !dir.path().join("a2/data/agent.crt").exists(),
        "no certificate issued"
    );
}

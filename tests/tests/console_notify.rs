//! Notifications of new high/critical alerts, against local listeners started by the
//! test on 127.0.0.1 (never an outside address): generic webhook (HMAC-signed), 钉钉
//! (signed) and 企业微信 robots, SMTP e-mail; every delivery result is recorded.

mod console_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console_support::{PASSWORD, TestConsole, sample_alert};
use serde_json::json;
use shaobing_collector::console::Role;
use shaobing_tests::browser::WebClient;

#[derive(Debug, Clone)]
struct Captured {
    target: String,
    headers: String,
    body: String,
}

/// An HTTP listener answering every request with `status` and `body`.
fn http_sink(status: u16, reply: &'static str) -> (String, Arc<Mutex<Vec<Captured>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut headers = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                headers.push_str(&line);
            }
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            record.lock().expect("lock").push(Captured {
                target: request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

/// A minimal SMTP server accepting every message (no STARTTLS, no AUTH).
fn smtp_sink() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let messages = Arc::new(Mutex::new(Vec::new()));
    let record = messages.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let _ = stream.write_all(b"220 sink ESMTP\r\n");
            let mut data = String::new();
            let mut in_data = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if in_data {
                    if line == ".\r\n" {
                        in_data = false;
                        record.lock().expect("lock").push(std::mem::take(&mut data));
                        let _ = stream.write_all(b"250 2.0.0 queued as 42\r\n");
                    } else {
                        data.push_str(&line);
                    }
                    continue;
                }
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        in_data = true;
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        let _ = stream.write_all(b"221 bye\r\n");
                        break;
                    }
                    _ => b"250 ok\r\n",
                };
                let _ = stream.write_all(reply);
            }
        }
    });
    (addr, messages)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let found = shaobing_tests::wait_for(Duration::from_secs(20), || done().then_some(()));
    assert!(found.is_some(), "timed out waiting for {what}");
}

#[test]
fn high_and_critical_alerts_reach_every_channel_once_and_results_are_recorded() {
    let (webhook_url, webhook) = http_sink(200, "ok");
    let (robot_url, robots) = http_sink(200, r#"{"errcode":0,"errmsg":"ok"}"#);
    let (broken_url, broken) = http_sink(500, "down");
    let (smtp_addr, mails) = smtp_sink();
    let console = TestConsole::start(|_| {});
    console.add_user("sec", Role::Secadmin);
    let mut client = WebClient::new(&console.url);
    assert_eq!(
        client.login("sec", PASSWORD, "").expect("login").status,
        303
    );
    let csrf = client.csrf().expect("csrf");
    let channels = [
        json!({ "name": "SOC webhook", "kind": "webhook", "target": format!("{webhook_url}/hook"), "secret": "hook-key" }),
        json!({ "name": "钉钉值班群", "kind": "dingtalk", "target": format!("{robot_url}/robot/send?access_token=abc"), "secret": "SECxyz" }),
        json!({ "name": "企业微信群", "kind": "wecom", "target": format!("{robot_url}/cgi-bin/webhook/send?key=k1"), "min_level": "critical" }),
        json!({ "name": "值班邮箱", "kind": "smtp", "target": smtp_addr, "smtp_from": "shaobing@example.org", "smtp_to": "soc@example.org, lead@example.org" }),
        json!({ "name": "broken", "kind": "webhook", "target": format!("{broken_url}/x") }),
    ];
    for channel in &channels {
        let created = client
            .post_json("/api/v1/notifications", &csrf, channel)
            .expect("create");
        assert_eq!(created.status, 200, "{}", created.body);
    }
    let refused = client
        .post_json(
            "/api/v1/notifications",
            &csrf,
            &json!({ "name": "x", "kind": "webhook", "target": "ftp://x" }),
        )
        .expect("create");
    assert_eq!(refused.status, 400);

    console.insert_alert(&sample_alert(
        "n-critical",
        "web-1",
        "203.0.113.5",
        "critical",
        0,
    ));
    console.insert_alert(&sample_alert(
        "n-medium",
        "web-2",
        "203.0.113.6",
        "medium",
        0,
    ));
    wait_until("deliveries", || {
        !webhook.lock().expect("lock").is_empty()
            && robots.lock().expect("lock").len() >= 2
            && !mails.lock().expect("lock").is_empty()
            && broken.lock().expect("lock").len() >= 3
    });
    std::thread::sleep(Duration::from_secs(1)); // further passes must not resend

    let hooks = webhook.lock().expect("lock").clone();
    assert_eq!(hooks.len(), 1, "one alert, sent once: {hooks:?}");
    assert_eq!(hooks[0].target, "/hook");
    assert!(hooks[0].body.contains("\"alert_id\":\"n-critical\""));
    assert!(
        hooks[0]
            .headers
            .to_ascii_lowercase()
            .contains("x-shaobing-signature: sha256=")
    );
    let robots = robots.lock().expect("lock").clone();
    assert_eq!(robots.len(), 2, "{robots:?}");
    let ding = robots
        .iter()
        .find(|r| r.target.starts_with("/robot/send"))
        .expect("dingtalk");
    assert!(ding.target.contains("access_token=abc&timestamp=") && ding.target.contains("&sign="));
    assert!(ding.body.contains("\"msgtype\":\"markdown\"") && ding.body.contains("SSH 暴力破解"));
    let wecom = robots
        .iter()
        .find(|r| r.target.starts_with("/cgi-bin/webhook/send"))
        .expect("wecom");
    assert!(wecom.body.contains("8.1.4.2") && wecom.body.contains("web-1"));
    let mails = mails.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("To: <soc@example.org>, <lead@example.org>"));
    assert!(mails[0].contains("Subject: =?UTF-8?B?"));
    assert_eq!(
        broken.lock().expect("lock").len(),
        3,
        "failures are retried three times, then given up"
    );

    let listed = client
        .get("/api/v1/notifications")
        .expect("list")
        .json()
        .expect("json");
    let deliveries = listed["deliveries"].as_array().expect("deliveries");
    let ok = deliveries.iter().filter(|d| d["ok"] == true).count();
    let failed: Vec<_> = deliveries.iter().filter(|d| d["ok"] == false).collect();
    assert_eq!(ok, 4, "{deliveries:?}");
    assert_eq!(failed.len(), 3);
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("HTTP 500")
    );
    assert!(
        deliveries.iter().all(|d| d["alert_id"] != "n-medium"),
        "medium alerts are not notified"
    );
    assert!(
        listed["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .all(|c| c.get("secret").is_none()),
        "secrets stay hidden"
    );

    let test = client
        .post_json("/api/v1/notifications/1/test", &csrf, &json!({}))
        .expect("test");
    assert_eq!(test.status, 200);
    assert_eq!(test.json().expect("json")["delivery"]["ok"], true);
    assert_eq!(webhook.lock().expect("lock").len(), 2);
    let actions: Vec<String> = console
        .audit_actions()
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| *a == "notification.create")
            .count(),
        5
    );
    assert!(actions.iter().any(|a| a == "notification.test"));
}

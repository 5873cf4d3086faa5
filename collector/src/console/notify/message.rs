//! What each channel sends: the alert as JSON for the generic webhook (with an
//! HMAC-SHA256 signature header when a secret is set), markdown for 钉钉 (signed per
//! DingTalk's robot rules when a secret is set) and 企业微信, and the e-mail text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use serde_json::json;

use super::ChannelKind;
use super::http::HttpReply;
use crate::console::error::{ConsoleError, ConsoleResult};
use crate::console::i18n::{self, DEFAULT_TZ_OFFSET_MINUTES, Lang};
use crate::store::AlertRecord;

/// Header with `sha256=<hex HMAC of the body>` on signed generic webhooks.
pub const SIGNATURE_HEADER: &str = "x-shaobing-signature";

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Final URL (DingTalk signing adds query parameters).
    pub url: String,
    /// JSON body.
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

/// E-mail subject / message title.
pub fn subject(alert: &AlertRecord) -> String {
    format!(
        "【哨兵告警】[{}] {}",
        Lang::Zh.level(&alert.level),
        alert.rule_title
    )
}

/// Plain text of an alert (Chinese labels, operator's default zone UTC+8).
pub fn text(alert: &AlertRecord) -> String {
    let attack: Vec<&str> = alert
        .tags
        .iter()
        .filter(|t| t.starts_with("attack."))
        .map(String::as_str)
        .collect();
    format!(
        "规则: {title} ({rule})\n级别: {level}\n主机: {host}\n时间: {first} — {last} ({tz})\n次数: {count}\n摘要: {summary}\n等保条款: {mlps}\nATT&CK: {attack}\n告警编号: {id}\n",
        title = alert.rule_title,
        rule = alert.rule_id,
        level = Lang::Zh.level(&alert.level),
        host = if alert.hostname.is_empty() {
            "-"
        } else {
            &alert.hostname
        },
        first = i18n::format_time(alert.first_time_unix_nano, DEFAULT_TZ_OFFSET_MINUTES),
        last = i18n::format_time(alert.last_time_unix_nano, DEFAULT_TZ_OFFSET_MINUTES),
        tz = i18n::offset_label(DEFAULT_TZ_OFFSET_MINUTES),
        count = alert.count,
        summary = alert.summary,
        mlps = if alert.mlps.is_empty() {
            "-".to_owned()
        } else {
            alert.mlps.join(", ")
        },
        attack = if attack.is_empty() {
            "-".to_owned()
        } else {
            attack.join(", ")
        },
        id = alert.alert_id,
    )
}

fn markdown(alert: &AlertRecord) -> String {
    let mut out = format!("### {}\n", subject(alert));
    for line in text(alert).lines() {
        out.push_str(&format!("- {line}\n"));
    }
    out
}

/// Builds the request for a webhook-style channel. `now_ms` signs DingTalk requests.
pub fn webhook_request(
    kind: ChannelKind,
    url: &str,
    secret: &str,
    alert: &AlertRecord,
    now_ms: i64,
) -> ConsoleResult<WebhookRequest> {
    let mut headers = Vec::new();
    let mut url = url.to_owned();
    let body = match kind {
        ChannelKind::Webhook => {
            let body =
                json!({ "source": "shaobing", "event": "alert", "alert": alert }).to_string();
            if !secret.is_empty() {
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                    .map_err(|e| ConsoleError::Delivery(e.to_string()))?;
                mac.update(body.as_bytes());
                headers.push((
                    SIGNATURE_HEADER,
                    format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
                ));
            }
            body
        }
        ChannelKind::Dingtalk => {
            if !secret.is_empty() {
                let sign = dingtalk_sign(secret, now_ms)?;
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!(
                    "{url}{sep}timestamp={now_ms}&sign={}",
                    crate::console::html::url_encode(&sign)
                );
            }
            json!({ "msgtype": "markdown", "markdown": { "title": subject(alert), "text": markdown(alert) } }).to_string()
        }
        ChannelKind::Wecom => {
            json!({ "msgtype": "markdown", "markdown": { "content": markdown(alert) } }).to_string()
        }
        ChannelKind::Smtp => {
            return Err(ConsoleError::Delivery("SMTP is not a webhook".to_owned()));
        }
    };
    Ok(WebhookRequest { url, body, headers })
}

/// DingTalk robot signature: base64(HMAC-SHA256(secret, "{timestamp}\n{secret}")).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> ConsoleResult<String> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|e| ConsoleError::Delivery(e.to_string()))?;
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    Ok(B64.encode(mac.finalize().into_bytes()))
}

/// Whether the receiver accepted: 2xx, and for 钉钉/企业微信 `errcode` 0 in the body.
pub fn check_reply(kind: ChannelKind, reply: &HttpReply) -> ConsoleResult<String> {
    let summary = format!(
        "HTTP {} {}",
        reply.status,
        reply.body.chars().take(200).collect::<String>()
    );
    if !(200..300).contains(&reply.status) {
        return Err(ConsoleError::Delivery(summary));
    }
    if matches!(kind, ChannelKind::Dingtalk | ChannelKind::Wecom) {
        let errcode = serde_json::from_str::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("errcode").and_then(serde_json::Value::as_i64));
        if errcode != Some(0) {
            return Err(ConsoleError::Delivery(summary));
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> AlertRecord {
        AlertRecord {
            alert_id: "a1".into(),
            rule_title: "SSH 暴力破解".into(),
            level: "high".into(),
            hostname: "web-1".into(),
            tags: vec!["attack.t1110".into(), "attack.credential_access".into()],
            mlps: vec!["8.1.4.2".into()],
            ..AlertRecord::default()
        }
    }

    #[test]
    fn dingtalk_requests_are_signed_and_markdown() {
        let req = webhook_request(
            ChannelKind::Dingtalk,
            "http://127.0.0.1:1/robot/send?access_token=x",
            "SEC123",
            &alert(),
            1_700_000_000_000,
        )
        .unwrap();
        let sign = dingtalk_sign("SEC123", 1_700_000_000_000).unwrap();
        assert!(req.url.contains("&timestamp=1700000000000&sign="));
        assert!(req.url.ends_with(&crate::console::html::url_encode(&sign)));
        let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
        assert_eq!(body["msgtype"], "markdown");
        assert!(
            body["markdown"]["text"]
                .as_str()
                .unwrap()
                .contains("8.1.4.2")
        );
    }

    #[test]
    fn generic_webhook_is_signed_with_hmac() {
        let req = webhook_request(ChannelKind::Webhook, "http://x/", "k", &alert(), 0).unwrap();
        let (name, value) = &req.headers[0];
        assert_eq!(*name, SIGNATURE_HEADER);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap();
        mac.update(req.body.as_bytes());
        assert_eq!(
            value,
            &format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        );
    }

    #[test]
    fn robot_errors_in_a_200_reply_count_as_failures() {
        let ok = HttpReply {
            status: 200,
            body: r#"{"errcode":0,"errmsg":"ok"}"#.into(),
        };
        let bad = HttpReply {
            status: 200,
            body: r#"{"errcode":310000,"errmsg":"sign not match"}"#.into(),
        };
        assert!(check_reply(ChannelKind::Wecom, &ok).is_ok());
        assert!(check_reply(ChannelKind::Dingtalk, &bad).is_err());
        assert!(
            check_reply(
                ChannelKind::Webhook,
                &HttpReply {
                    status: 500,
                    body: String::new()
                }
            )
            .is_err()
        );
        assert!(text(&alert()).contains("ATT&CK: attack.t1110"));
    }
}

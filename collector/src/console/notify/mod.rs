//! Notifications of new high/critical alerts: a generic JSON webhook (optionally
//! HMAC-signed), SMTP e-mail, 钉钉 (DingTalk) and 企业微信 (WeCom) robot webhooks.
//!
//! Channels live in `console.db`. The dispatcher polls the store every
//! `notify_interval` for alerts at or above each channel's level whose window is
//! recent and not older than the channel, sends each alert once per channel (up to
//! [`MAX_ATTEMPTS`] tries), and records every delivery result.

pub mod http;
pub mod message;
pub mod smtp;

use std::time::Duration;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::db::ConsoleDb;
use super::error::{ConsoleError, ConsoleResult};
use super::state::SharedState;
use crate::store::{AlertQuery, AlertRecord, MAX_QUERY_LIMIT};

/// Tries per (channel, alert) before giving up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Alerts whose window ended longer ago than this are not notified.
pub const LOOKBACK: Duration = Duration::from_secs(3600);

/// Kind of channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// POST of the alert as JSON.
    Webhook,
    /// E-mail.
    Smtp,
    /// 钉钉自定义机器人.
    Dingtalk,
    /// 企业微信群机器人.
    Wecom,
}

impl ChannelKind {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Smtp => "smtp",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Wecom => "wecom",
        }
    }

    /// Inverse of [`Self::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ChannelKind::Webhook,
            ChannelKind::Smtp,
            ChannelKind::Dingtalk,
            ChannelKind::Wecom,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// A configured channel (the secret is never serialized).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Channel {
    /// Id.
    pub id: i64,
    /// Operator's name for it.
    pub name: String,
    /// Kind.
    pub kind: ChannelKind,
    /// URL (webhooks) or `host:port` (SMTP).
    pub target: String,
    /// Signing secret (webhook, 钉钉) or `user:password` (SMTP).
    #[serde(skip)]
    pub secret: String,
    /// SMTP sender.
    pub smtp_from: String,
    /// SMTP recipients, comma separated.
    pub smtp_to: String,
    /// `high` (high + critical) or `critical`.
    pub min_level: String,
    /// Disabled channels send nothing.
    pub enabled: bool,
    /// Created at (unix nanos): older alerts are not sent to it.
    pub created_ns: i64,
}

impl Channel {
    /// Levels this channel receives.
    pub fn levels(&self) -> Vec<String> {
        match self.min_level.as_str() {
            "critical" => vec!["critical".to_owned()],
            _ => vec!["high".to_owned(), "critical".to_owned()],
        }
    }
}

/// A new channel (form or JSON).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewChannel {
    /// Name.
    pub name: String,
    /// Kind name.
    pub kind: String,
    /// URL or `host:port`.
    pub target: String,
    /// Secret (optional).
    pub secret: String,
    /// SMTP sender.
    pub smtp_from: String,
    /// SMTP recipients.
    pub smtp_to: String,
    /// `high` or `critical`.
    pub min_level: String,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Channel.
    pub channel_id: i64,
    /// Alert (`test` for test messages).
    pub alert_id: String,
    /// When.
    pub time_ns: i64,
    /// Accepted by the receiver.
    pub ok: bool,
    /// Receiver's answer or the error.
    pub detail: String,
}

impl NewChannel {
    fn validate(&self) -> ConsoleResult<ChannelKind> {
        let kind = ChannelKind::from_name(self.kind.trim()).ok_or_else(|| {
            ConsoleError::Invalid(format!("unknown channel kind {:?}", self.kind))
        })?;
        if self.name.trim().is_empty() || self.name.chars().count() > 64 {
            return Err(ConsoleError::Invalid(
                "channel names are 1-64 characters".to_owned(),
            ));
        }
        let target = self.target.trim();
        match kind {
            ChannelKind::Smtp => {
                if !target.contains(':')
                    || self.smtp_to.trim().is_empty()
                    || !self.smtp_from.contains('@')
                {
                    return Err(ConsoleError::Invalid(
                        "SMTP needs server host:port, a sender and recipients".to_owned(),
                    ));
                }
            }
            _ => {
                if !(target.starts_with("http://") || target.starts_with("https://")) {
                    return Err(ConsoleError::Invalid(
                        "webhook URLs start with http:// or https://".to_owned(),
                    ));
                }
            }
        }
        if !matches!(self.min_level.as_str(), "" | "high" | "critical") {
            return Err(ConsoleError::Invalid(
                "level is high or critical".to_owned(),
            ));
        }
        Ok(kind)
    }
}

fn channel_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Channel> {
    let kind: String = r.get(2)?;
    Ok(Channel {
        id: r.get(0)?,
        name: r.get(1)?,
        kind: ChannelKind::from_name(&kind).unwrap_or(ChannelKind::Webhook),
        target: r.get(3)?,
        secret: r.get(4)?,
        smtp_from: r.get(5)?,
        smtp_to: r.get(6)?,
        min_level: r.get(7)?,
        enabled: r.get(8)?,
        created_ns: r.get(9)?,
    })
}

impl ConsoleDb {
    /// Adds a channel; returns its id.
    pub async fn add_channel(&self, new: &NewChannel, now_ns: i64) -> ConsoleResult<i64> {
        let kind = new.validate()?;
        let new = new.clone();
        self.call(move |c| {
            c.execute(
                "INSERT INTO notify_channels (name, kind, target, secret, smtp_from, smtp_to, min_level, created_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    new.name.trim(), kind.name(), new.target.trim(), new.secret.trim(),
                    new.smtp_from.trim(), new.smtp_to.trim(),
                    if new.min_level.is_empty() { "high" } else { new.min_level.as_str() },
                    now_ns
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    /// All channels.
    pub async fn channels(&self) -> ConsoleResult<Vec<Channel>> {
        self.call(|c| {
            let mut stmt = c.prepare(
                "SELECT id, name, kind, target, secret, smtp_from, smtp_to, min_level, enabled, created_ns
                 FROM notify_channels ORDER BY id",
            )?;
            let rows = stmt.query_map([], channel_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// One channel.
    pub async fn channel(&self, id: i64) -> ConsoleResult<Channel> {
        self.channels()
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| ConsoleError::NotFound(format!("channel {id}")))
    }

    /// Enables or disables a channel.
    pub async fn set_channel_enabled(&self, id: i64, enabled: bool) -> ConsoleResult<()> {
        self.call(move |c| {
            let n = c.execute(
                "UPDATE notify_channels SET enabled = ?2 WHERE id = ?1",
                params![id, enabled],
            )?;
            if n == 0 {
                return Err(ConsoleError::NotFound(format!("channel {id}")));
            }
            Ok(())
        })
        .await
    }

    /// Records a delivery attempt.
    pub async fn record_delivery(&self, d: Delivery) -> ConsoleResult<()> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO notify_deliveries (channel_id, alert_id, time_ns, ok, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.channel_id, d.alert_id, d.time_ns, d.ok, d.detail],
            )?;
            Ok(())
        })
        .await
    }

    /// Most recent deliveries, newest first.
    pub async fn deliveries(&self, limit: usize) -> ConsoleResult<Vec<Delivery>> {
        self.call(move |c| {
            let mut stmt = c.prepare(
                "SELECT channel_id, alert_id, time_ns, ok, detail FROM notify_deliveries ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit as i64], |r| {
                Ok(Delivery { channel_id: r.get(0)?, alert_id: r.get(1)?, time_ns: r.get(2)?, ok: r.get(3)?, detail: r.get(4)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// Whether an alert still needs sending to a channel (never delivered, tries left).
    async fn needs_delivery(&self, channel_id: i64, alert_id: &str) -> ConsoleResult<bool> {
        let alert_id = alert_id.to_owned();
        self.call(move |c| {
            let (ok, failed): (i64, i64) = c.query_row(
                "SELECT coalesce(sum(ok), 0), coalesce(sum(1 - ok), 0) FROM notify_deliveries
                 WHERE channel_id = ?1 AND alert_id = ?2",
                params![channel_id, alert_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(ok == 0 && failed < i64::from(MAX_ATTEMPTS))
        })
        .await
    }
}

/// Sends one alert over one channel; returns the receiver's answer.
pub async fn deliver(channel: &Channel, alert: &AlertRecord) -> ConsoleResult<String> {
    match channel.kind {
        ChannelKind::Smtp => {
            let mail = smtp::Mail {
                server: channel.target.clone(),
                credentials: channel.secret.clone(),
                from: channel.smtp_from.clone(),
                to: channel
                    .smtp_to
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
                subject: message::subject(alert),
                body: message::text(alert),
            };
            smtp::send(&mail).await
        }
        kind => {
            let now_ms = shaobing_wire::now_unix_nano() / 1_000_000;
            let request =
                message::webhook_request(kind, &channel.target, &channel.secret, alert, now_ms)?;
            let reply = http::post_json(&request.url, request.body, &request.headers).await?;
            message::check_reply(kind, &reply)
        }
    }
}

/// Sends `alert` and records the result.
pub async fn deliver_and_record(
    db: &ConsoleDb,
    channel: &Channel,
    alert: &AlertRecord,
    record_id: &str,
) -> ConsoleResult<Delivery> {
    let result = deliver(channel, alert).await;
    let delivery = Delivery {
        channel_id: channel.id,
        alert_id: record_id.to_owned(),
        time_ns: shaobing_wire::now_unix_nano(),
        ok: result.is_ok(),
        detail: match &result {
            Ok(answer) => answer.chars().take(500).collect(),
            Err(error) => error.to_string().chars().take(500).collect(),
        },
    };
    if !delivery.ok {
        tracing::warn!(channel = %channel.name, alert = record_id, detail = %delivery.detail, "notification failed");
    }
    db.record_delivery(delivery.clone()).await?;
    Ok(delivery)
}

/// One pass of the dispatcher: sends every pending alert to every enabled channel.
/// Returns the number of delivery attempts.
pub async fn dispatch_once(state: &SharedState, now_ns: i64) -> ConsoleResult<usize> {
    let channels: Vec<Channel> = state
        .db
        .channels()
        .await?
        .into_iter()
        .filter(|c| c.enabled)
        .collect();
    let mut attempts = 0;
    for channel in &channels {
        let since = channel.created_ns.max(now_ns - LOOKBACK.as_nanos() as i64);
        let alerts = state
            .store
            .alerts(&AlertQuery {
                since: Some(since),
                levels: channel.levels(),
                limit: Some(MAX_QUERY_LIMIT),
                ..AlertQuery::default()
            })
            .await?;
        for alert in alerts.iter().rev() {
            if state.db.needs_delivery(channel.id, &alert.alert_id).await? {
                deliver_and_record(&state.db, channel, alert, &alert.alert_id).await?;
                attempts += 1;
            }
        }
    }
    Ok(attempts)
}

/// Runs [`dispatch_once`] every `notify_interval` until shutdown.
pub async fn run_dispatcher(state: SharedState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.notify_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(error) = dispatch_once(&state, shaobing_wire::now_unix_nano()).await {
                    tracing::warn!(%error, "notification pass failed");
                }
            }
            () = stopped(&mut shutdown) => return,
        }
    }
}

/// Resolves once shutdown was asked for (the guard of `wait_for` is not `Send`).
pub async fn stopped(shutdown: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// A sample alert for "send test message".
pub fn test_alert() -> AlertRecord {
    let now = shaobing_wire::now_unix_nano();
    AlertRecord {
        alert_id: "test".to_owned(),
        rule_id: "shaobing-test".to_owned(),
        rule_title: "测试通知 / test notification".to_owned(),
        level: "high".to_owned(),
        kind: "test".to_owned(),
        hostname: "shaobing-console".to_owned(),
        first_time_unix_nano: now,
        last_time_unix_nano: now,
        count: 1,
        summary: "这是一条测试消息 / this is a test message".to_owned(),
        ..AlertRecord::default()
    }
}

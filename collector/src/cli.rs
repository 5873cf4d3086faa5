//! Operator commands that read the store: `alerts` and `agents`, printed as a
//! table (Chinese headers by default, `--lang en` for English) or JSON lines.

use std::io::Write;

use crate::store::{AgentRecord, AlertQuery, AlertRecord, Store, StoreError};

/// Language of operator-facing output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

/// Formats unix nanoseconds as `YYYY-MM-DD HH:MM:SS` in UTC (or local offset when known).
pub fn format_time(unix_nano: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(unix_nano as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let offset = time::UtcOffset::current_local_offset().unwrap_or(time::UtcOffset::UTC);
    let t = t.to_offset(offset);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.format(&fmt).unwrap_or_default()
}

/// Parses `--since`: a duration back from now (`30s`, `15m`, `2h`, `7d`) or RFC 3339.
pub fn parse_since(text: &str, now_unix_nano: i64) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(t) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
    {
        return Ok(t.unix_timestamp_nanos() as i64);
    }
    let (num, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid --since {text:?}: use 30s, 15m, 2h, 7d or RFC 3339"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("invalid --since unit in {text:?}: s, m, h or d")),
    };
    Ok(now_unix_nano - secs * 1_000_000_000)
}

fn level_label(level: &str, lang: Lang) -> String {
    let zh = match level {
        "critical" => "严重",
        "high" => "高",
        "medium" => "中",
        "low" => "低",
        "informational" => "信息",
        other => other,
    };
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => level.to_string(),
    }
}

/// Writes alerts as an aligned table.
pub fn write_alert_table(
    out: &mut dyn Write,
    alerts: &[AlertRecord],
    lang: Lang,
) -> std::io::Result<()> {
    let header = match lang {
        Lang::Zh => [
            "最近时间",
            "级别",
            "主机",
            "规则",
            "次数",
            "分组",
            "等保条款",
        ],
        Lang::En => [
            "last seen",
            "level",
            "host",
            "rule",
            "count",
            "group",
            "MLPS",
        ],
    };
    let rows: Vec<[String; 7]> = alerts
        .iter()
        .map(|a| {
            [
                format_time(a.last_time_unix_nano),
                level_label(&a.level, lang),
                a.hostname.clone(),
                a.rule_title.clone(),
                a.count.to_string(),
                a.group_key.clone(),
                a.mlps.join(", "),
            ]
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| display_width(&r[i]))
            .chain([display_width(header[i])])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..7).map(width).collect();
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(widths[i] - display_width(c) + 2));
            }
        }
        s
    };
    writeln!(out, "{}", line(&header.map(String::from)))?;
    for r in &rows {
        writeln!(out, "{}", line(r))?;
    }
    let total = match lang {
        Lang::Zh => format!("共 {} 条告警", alerts.len()),
        Lang::En => format!("{} alerts", alerts.len()),
    };
    writeln!(out, "{total}")
}

/// Terminal width of a string: CJK characters take two columns.
fn display_width(s: &str) -> usize {
    s.chars()
        .map(|c| if (c as u32) >= 0x1100 { 2 } else { 1 })
        .sum()
}

/// Writes alerts as JSON lines.
pub fn write_alert_json(out: &mut dyn Write, alerts: &[AlertRecord]) -> std::io::Result<()> {
    for a in alerts {
        serde_json::to_writer(&mut *out, a)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Queries and prints alerts.
pub async fn print_alerts(
    store: &Store,
    query: &AlertQuery,
    json: bool,
    lang: Lang,
    out: &mut dyn Write,
) -> Result<Vec<AlertRecord>, StoreError> {
    let alerts = store.alerts(query).await?;
    let written = if json {
        write_alert_json(out, &alerts)
    } else {
        write_alert_table(out, &alerts, lang)
    };
    if let Err(e) = written {
        tracing::warn!(error = %e, "output closed");
    }
    Ok(alerts)
}

/// Writes the agent inventory.
pub fn write_agents(
    out: &mut dyn Write,
    agents: &[AgentRecord],
    json: bool,
    now_unix_nano: i64,
    lang: Lang,
) -> std::io::Result<()> {
    for a in agents {
        if json {
            serde_json::to_writer(&mut *out, a)?;
            writeln!(out)?;
            continue;
        }
        let age_s = (now_unix_nano - a.last_seen_unix_nano) / 1_000_000_000;
        let online = age_s < 120;
        let state = match (lang, online) {
            (Lang::Zh, true) => "在线",
            (Lang::Zh, false) => "离线",
            (Lang::En, true) => "online",
            (Lang::En, false) => "offline",
        };
        writeln!(
            out,
            "{}  {}  {}  {}  {}  {}",
            a.agent_id,
            a.hostname,
            a.ips.join(","),
            a.version,
            state,
            format_time(a.last_seen_unix_nano)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_rfc3339() {
        let now = 10_000 * 1_000_000_000;
        assert_eq!(parse_since("10s", now).unwrap(), now - 10_000_000_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000_000_000);
        assert_eq!(
            parse_since("1970-01-01T00:00:01Z", now).unwrap(),
            1_000_000_000
        );
        assert!(parse_since("yesterday", now).is_err());
    }

    #[test]
    fn table_aligns_cjk_and_counts() {
        let alert = AlertRecord {
            rule_title: "SSH 暴力破解".into(),
            level: "high".into(),
            hostname: "web-1".into(),
            count: 6,
            group_key: "SourceIp=203.0.113.7".into(),
            ..Default::default()
        };
        let mut out = Vec::new();
        write_alert_table(&mut out, &[alert], Lang::Zh).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("SourceIp=203.0.113.7"));
        assert!(text.contains("高"));
        assert!(text.ends_with("共 1 条告警\n"));
    }
}

//! Operator language and time zone: Simplified Chinese by default, English on request
//! (`?lang=en`, remembered in the `sb_lang` cookie); times shown in the operator's
//! offset (account setting, else the browser's via the `sb_tz` cookie, else UTC+8).

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// Cookie remembering the language.
pub const LANG_COOKIE: &str = "sb_lang";
/// Cookie with the browser's offset from UTC in minutes (set by `console.js`).
pub const TZ_COOKIE: &str = "sb_tz";
/// Offset used when neither the account nor the browser gives one: China Standard Time.
pub const DEFAULT_TZ_OFFSET_MINUTES: i32 = 8 * 60;

/// A user-facing language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// 简体中文 (default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// `zh` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    /// `zh-CN` or `en` for the `lang` attribute of `<html>`.
    pub fn html_code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// Parses `zh`, `zh-CN`, `en`, `en-US`...
    pub fn parse(text: &str) -> Option<Lang> {
        let lower = text.trim().to_ascii_lowercase();
        if lower.starts_with("zh") {
            Some(Lang::Zh)
        } else if lower.starts_with("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The text in this language: every user-facing string is written as a pair at
    /// its point of use, so none can be missing in either language.
    pub fn pick(self, zh: &'static str, en: &'static str) -> &'static str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// Label of a Sigma level.
    pub fn level(self, level: &str) -> String {
        let zh = match level {
            "critical" => "严重",
            "high" => "高",
            "medium" => "中",
            "low" => "低",
            "informational" => "信息",
            other => other,
        };
        match self {
            Lang::Zh => zh.to_owned(),
            Lang::En => level.to_owned(),
        }
    }
}

/// Value of cookie `name` in the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Language asked for in the query string (`lang=en`), if any.
pub fn lang_from_query(query: Option<&str>) -> Option<Lang> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "lang")
        .and_then(|(_, v)| Lang::parse(v))
}

/// The request's language: query, then cookie, then Chinese.
pub fn request_lang(headers: &HeaderMap, query: Option<&str>) -> (Lang, bool) {
    if let Some(lang) = lang_from_query(query) {
        return (lang, true);
    }
    let lang = cookie(headers, LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .unwrap_or_default();
    (lang, false)
}

/// The browser's offset from the `sb_tz` cookie, if sane (−14 h … +14 h).
pub fn browser_tz_offset(headers: &HeaderMap) -> Option<i32> {
    cookie(headers, TZ_COOKIE)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|m| m.abs() <= 14 * 60)
}

/// Formats unix nanoseconds as `YYYY-MM-DD HH:MM:SS` at `offset_minutes` east of UTC.
pub fn format_time(unix_nano: i64, offset_minutes: i32) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nano)) else {
        return String::new();
    };
    let offset =
        time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap_or(time::UtcOffset::UTC);
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    t.to_offset(offset).format(&fmt).unwrap_or_default()
}

/// `UTC+08:00`-style label of an offset.
pub fn offset_label(offset_minutes: i32) -> String {
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let m = offset_minutes.abs();
    format!("UTC{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Parses `2024-05-01T10:00` (an HTML `datetime-local` value) at the operator's offset.
pub fn parse_local_datetime(text: &str, offset_minutes: i32) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let with_secs =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let local = time::PrimitiveDateTime::parse(text, &fmt)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &with_secs))
        .ok()?;
    let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).ok()?;
    Some(local.assume_offset(offset).unix_timestamp_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_is_the_default_and_query_wins_over_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(request_lang(&headers, None), (Lang::Zh, false));
        headers.insert("cookie", "a=b; sb_lang=en".parse().unwrap());
        assert_eq!(request_lang(&headers, None), (Lang::En, false));
        assert_eq!(
            request_lang(&headers, Some("x=1&lang=zh")),
            (Lang::Zh, true)
        );
    }

    #[test]
    fn times_follow_the_operator_offset() {
        let t = 1_704_067_200_000_000_000; // 2024-01-01T00:00:00Z
        assert_eq!(format_time(t, 480), "2024-01-01 08:00:00");
        assert_eq!(format_time(t, -300), "2023-12-31 19:00:00");
        assert_eq!(offset_label(480), "UTC+08:00");
        assert_eq!(parse_local_datetime("2024-01-01T08:00", 480), Some(t));
        assert_eq!(parse_local_datetime("", 480), None);
    }

    #[test]
    fn browser_offset_is_bounded() {
        let mut headers = HeaderMap::new();
        headers.insert("cookie", "sb_tz=480".parse().unwrap());
        assert_eq!(browser_tz_offset(&headers), Some(480));
        headers.insert("cookie", "sb_tz=99999".parse().unwrap());
        assert_eq!(browser_tz_offset(&headers), None);
    }
}

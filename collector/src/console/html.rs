//! HTML building blocks for the server-rendered pages: escaping, the page layout with
//! the role's navigation, CSRF form fields, level and status badges, pagers.

use std::fmt::Write;

use axum::response::Html;

use super::access;
use super::context::Ctx;
use super::i18n::{self, Lang};
use crate::store::AlertStatus;

/// Escapes text for HTML element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes a path segment or query value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Navigation entries: path, Chinese, English. Shown only when the role may open them.
const NAV: &[(&str, &str, &str)] = &[
    ("/overview", "总览", "Overview"),
    ("/alerts", "告警", "Alerts"),
    ("/hosts", "主机", "Hosts"),
    ("/rules", "规则", "Rules"),
    ("/notifications", "通知", "Notifications"),
    ("/audit", "审计日志", "Audit log"),
    ("/users", "用户与角色", "Users & roles"),
    ("/reports", "合规报表", "Compliance"),
];

/// Hidden CSRF field for a form.
pub fn csrf_field(ctx: &Ctx) -> String {
    let token = ctx
        .operator
        .as_ref()
        .map(|o| o.csrf_token().to_owned())
        .unwrap_or_else(|| ctx.prelogin_csrf.clone());
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(&token)
    )
}

/// A whole page: header with navigation for the operator's role, the body, footer.
pub fn page(ctx: &Ctx, active: &str, title: &str, body: &str) -> Html<String> {
    let lang = ctx.lang;
    let mut nav = String::new();
    let mut me = String::new();
    if let Some(op) = &ctx.operator {
        if !op.user.must_change_password {
            for (path, zh, en) in NAV {
                if access::may_open(op.role(), path) {
                    let class = if *path == active {
                        " class=\"active\""
                    } else {
                        ""
                    };
                    let _ = write!(nav, r#"<a href="{path}"{class}>{}</a>"#, lang.pick(zh, en));
                }
            }
        }
        let _ = write!(
            me,
            r#"<a href="/account" class="who">{} · {}</a>
<form method="post" action="/logout" class="inline">{}<button type="submit" class="link" id="logout">{}</button></form>"#,
            esc(op.name()),
            op.role().label(lang),
            csrf_field(ctx),
            lang.pick("退出", "Log out"),
        );
    }
    let switch = match lang {
        Lang::Zh => r#"<a href="?lang=en" id="lang-switch">English</a>"#,
        Lang::En => r#"<a href="?lang=zh" id="lang-switch">中文</a>"#,
    };
    let csrf = ctx
        .operator
        .as_ref()
        .map(|o| o.csrf_token().to_owned())
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · {brand}</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body data-csrf="{csrf}" data-lang="{code}">
<header class="top">
<a class="brand" href="/">{brand_full}</a>
<nav>{nav}</nav>
<div class="me">{me} {switch}</div>
</header>
<main>
<h1>{title}</h1>
{body}
</main>
<footer>{tz_note} {tz} · {brand}</footer>
</body>
</html>"#,
        html_lang = lang.html_code(),
        title = esc(title),
        brand = lang.pick("哨兵", "Shaobing"),
        brand_full = lang.pick("哨兵 · 主机安全监测", "Shaobing host security"),
        csrf = esc(&csrf),
        code = lang.code(),
        tz_note = lang.pick("时间显示为", "Times shown in"),
        tz = i18n::offset_label(ctx.tz_offset_minutes),
    ))
}

/// A message box (`kind`: `ok`, `error`, `info`).
pub fn notice(kind: &str, text: &str) -> String {
    format!(
        r#"<div class="notice {kind}" role="status">{}</div>"#,
        esc(text)
    )
}

/// Coloured badge for a Sigma level.
pub fn level_badge(lang: Lang, level: &str) -> String {
    let class = match level {
        "critical" | "high" | "medium" | "low" => level,
        _ => "info",
    };
    format!(
        r#"<span class="badge level-{class}">{}</span>"#,
        esc(&lang.level(level))
    )
}

/// Label of a triage status.
pub fn status_label(lang: Lang, status: AlertStatus) -> &'static str {
    match status {
        AlertStatus::Open => lang.pick("未处理", "open"),
        AlertStatus::Acknowledged => lang.pick("处理中", "acknowledged"),
        AlertStatus::Closed => lang.pick("已关闭", "closed"),
    }
}

/// Badge for a triage status.
pub fn status_badge(lang: Lang, status: AlertStatus) -> String {
    format!(
        r#"<span class="badge status-{}">{}</span>"#,
        status.name(),
        status_label(lang, status)
    )
}

/// Previous / next links keeping the other query parameters.
pub fn pager(lang: Lang, base_query: &str, page: usize, has_next: bool) -> String {
    let mut out = String::from(r#"<div class="pager">"#);
    let link = |p: usize| {
        if base_query.is_empty() {
            format!("?page={p}")
        } else {
            format!("?{base_query}&page={p}")
        }
    };
    if page > 1 {
        let _ = write!(
            out,
            r#"<a href="{}" rel="prev">{}</a>"#,
            esc(&link(page - 1)),
            lang.pick("上一页", "Previous")
        );
    }
    let _ = write!(out, r#"<span>{} {page}</span>"#, lang.pick("第", "Page"));
    if lang == Lang::Zh {
        out.push_str("<span>页</span>");
    }
    if has_next {
        let _ = write!(
            out,
            r#"<a href="{}" rel="next">{}</a>"#,
            esc(&link(page + 1)),
            lang.pick("下一页", "Next")
        );
    }
    out.push_str("</div>");
    out
}

/// `<option>`s with one selected.
pub fn options(choices: &[(&str, &str)], selected: &str) -> String {
    choices
        .iter()
        .map(|(value, label)| {
            let sel = if *value == selected { " selected" } else { "" };
            format!(
                r#"<option value="{}"{sel}>{}</option>"#,
                esc(value),
                esc(label)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup() {
        assert_eq!(
            esc(r#"<script>"x" & 'y'"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
        assert_eq!(url_encode("a b/中"), "a%20b%2F%E4%B8%AD");
    }

    #[test]
    fn pager_keeps_filters() {
        let html = pager(Lang::En, "level=high", 2, true);
        assert!(html.contains("?level=high&amp;page=1"));
        assert!(html.contains("?level=high&amp;page=3"));
        assert!(!pager(Lang::En, "", 1, false).contains("rel=\"prev\""));
    }
}

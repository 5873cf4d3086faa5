//! The compliance officer's page: alerts per 等保 clause for a period, and the CSV
//! export (each export is audited).

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::super::audit;
use super::super::context::Op;
use super::super::html::{self, esc};
use super::super::reports;
use super::super::state::SharedState;
use super::respond;

/// Query of the reports page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportQuery {
    /// Period in days (default 30).
    pub days: Option<u32>,
}

/// `GET /reports`.
pub async fn page(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(q): Query<ReportQuery>,
) -> Response {
    let result =
        reports::summarise(&state, q.days.unwrap_or(30), shaobing_wire::now_unix_nano()).await;
    respond(&ctx, result.map(|s| {
        let lang = ctx.lang;
        let mut body = format!(
            r#"<form class="filters" method="get"><label>{}<select name="days">{}</select></label><button type="submit">{}</button> <a href="/reports/export.csv?days={}" id="export-csv">{}</a></form>
<p class="muted">{}</p>"#,
            lang.pick("统计周期", "Period"),
            html::options(&[("7", lang.pick("7 天", "7 days")), ("30", lang.pick("30 天", "30 days")), ("90", lang.pick("90 天", "90 days")), ("186", lang.pick("186 天", "186 days"))], &s.days.to_string()),
            lang.pick("查询", "Show"), s.days, lang.pick("导出 CSV", "Export CSV"),
            lang.pick("本页为自评估证据汇总，不代替测评机构的测评结论。", "This is a self-assessment evidence summary, not the licensed assessor's conclusion."),
        );
        let _ = write!(
            body,
            r#"<table id="mlps-table"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>"#,
            lang.pick("等保条款", "等保 clause"), lang.pick("告警", "Alerts"), lang.pick("未处理", "Open"), lang.pick("误报", "False positives"), lang.pick("主机数", "Hosts"), lang.pick("规则", "Rules"),
        );
        for r in &s.rows {
            let _ = write!(body, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&r.clause), r.alerts, r.open, r.false_positives, r.hosts, esc(&r.rules.join("; ")));
        }
        body.push_str("</tbody></table>");
        let _ = write!(body, r#"<p class="muted">{} {}</p>"#, lang.pick("未映射等保条款的告警：", "Alerts without a clause:"), s.unmapped);
        body.push_str(&retention_table(lang, &s));
        html::page(&ctx, "/reports", lang.pick("合规报表", "Compliance"), &body).into_response()
    }))
}

/// The store's retention settings, with whether events are kept the six months 等保 asks.
fn retention_table(lang: super::super::i18n::Lang, s: &reports::MlpsSummary) -> String {
    let days = |n: u32| format!("{n} {}", lang.pick("天", "days"));
    let verdict = if s.retention_meets_six_months {
        lang.pick(
            "满足等保“审计记录保存不少于 6 个月”的要求",
            "Meets 等保's six-month minimum for audit records",
        )
    } else {
        lang.pick(
            "不满足：事件保存少于 6 个月（186 天）",
            "Does not meet: events kept less than six months (186 days)",
        )
    };
    format!(
        r#"<h2>{}</h2><table id="retention-table"><tbody><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr><tr><th>{}</th><td>{}</td></tr></tbody></table><p class="muted" id="retention-verdict">{}</p>"#,
        lang.pick("数据保留", "Data retention"),
        lang.pick("事件", "Events"),
        days(s.retention.events_days),
        lang.pick("告警", "Alerts"),
        days(s.retention.alerts_days),
        lang.pick("审计日志", "Audit log"),
        days(s.retention.audit_log_days),
        verdict,
    )
}

/// `GET /reports/export.csv`.
pub async fn export(
    State(state): State<SharedState>,
    Op(_op, ctx): Op,
    Query(q): Query<ReportQuery>,
) -> Response {
    let result = async {
        let summary =
            reports::summarise(&state, q.days.unwrap_or(30), shaobing_wire::now_unix_nano())
                .await?;
        audit::record(
            &state,
            &ctx,
            "report.export",
            "mlps-summary",
            json!({ "days": summary.days, "format": "csv", "rows": summary.rows.len() }),
        )
        .await?;
        let filename = format!("shaobing-mlps-{}d.csv", summary.days);
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{filename}\""),
                ),
            ],
            reports::to_csv(&summary),
        )
            .into_response())
    }
    .await;
    respond(&ctx, result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::Lang;
    use crate::store::RetentionPolicy;

    fn summary(events_days: u32) -> reports::MlpsSummary {
        let retention = RetentionPolicy {
            events_days,
            alerts_days: 400,
            audit_log_days: 1096,
        };
        reports::MlpsSummary {
            days: 30,
            rows: Vec::new(),
            unmapped: 0,
            truncated: false,
            retention,
            retention_meets_six_months: retention.meets_six_month_minimum(),
        }
    }

    #[test]
    fn retention_is_shown_with_the_six_month_verdict() {
        let short = retention_table(Lang::Zh, &summary(90));
        assert!(short.contains("<td>90 天</td>"), "{short}");
        assert!(short.contains("<td>400 天</td>"), "{short}");
        assert!(short.contains("不满足"), "{short}");
        let long = retention_table(Lang::En, &summary(186));
        assert!(long.contains("<td>186 days</td>"), "{long}");
        assert!(long.contains("Meets"), "{long}");
        assert!(!long.contains("Does not meet"), "{long}");
    }
}

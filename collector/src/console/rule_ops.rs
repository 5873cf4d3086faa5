//! Rule operations shared by the rules pages and `/api/v1/rules`: the rule list with
//! each rule's state (enabled, or disabled by whom and when), enabling/disabling and
//! running a rule's tests. The work is done by [`crate::rule_admin::RuleAdmin`] on a
//! blocking thread; every change and every test run is written to the audit log.

use serde::Serialize;
use serde_json::json;
use shaobing_detect::{RuleInfo, TestOutcome};

use super::audit;
use super::context::Ctx;
use super::error::{ConsoleError, ConsoleResult};
use super::i18n::Lang;
use super::state::SharedState;
use crate::rule_admin::{RuleAdmin, RuleAdminError, Toggled};
use crate::rules::LOCAL_RULE_DIR;

/// One row of the rules page / API.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRow {
    /// The rule as loaded (for a disabled rule: id, title and origin as recorded).
    #[serde(flatten)]
    pub info: RuleInfo,
    /// In service.
    pub enabled: bool,
    /// Who disabled it.
    pub disabled_by: Option<String>,
    /// When it was disabled (unix nanoseconds).
    pub disabled_at_unix_nano: Option<i64>,
    /// Written by the collector (a false-positive filter from the console).
    pub local: bool,
    /// A `<name>.tests.yml` exists beside its file.
    pub has_tests: bool,
}

/// Loaded rules plus disabled ones, by title.
pub async fn list(state: &SharedState) -> ConsoleResult<Vec<RuleRow>> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let loaded = state.rules.rules();
        let disabled = match state.rules.admin() {
            Some(admin) => admin.state().map_err(admin_error_en)?.disabled,
            None => Default::default(),
        };
        let mut rows: Vec<RuleRow> = loaded
            .into_iter()
            .filter(|r| !disabled.contains_key(&r.id))
            .map(|info| row(info, None))
            .collect();
        rows.extend(disabled.into_iter().map(|(id, d)| {
            let info = RuleInfo {
                id,
                title: d.title,
                level: d.level,
                status: String::new(),
                kind: d.kind,
                logsource: d.logsource,
                mlps: Vec::new(),
                tags: Vec::new(),
                origin: d.origin,
                description: String::new(),
            };
            row(info, Some((d.by, d.at_unix_nano)))
        }));
        rows.sort_by(|a, b| a.info.title.cmp(&b.info.title));
        Ok::<_, ConsoleError>(rows)
    })
    .await?
}

fn row(info: RuleInfo, disabled: Option<(String, i64)>) -> RuleRow {
    let has_tests = crate::rules::tests_path(&info.origin).is_file();
    let local = info.origin.contains(&format!(
        "{}{LOCAL_RULE_DIR}{}",
        std::path::MAIN_SEPARATOR,
        std::path::MAIN_SEPARATOR
    ));
    let (disabled_by, disabled_at_unix_nano) = match disabled {
        Some((by, at)) => (Some(by), Some(at)),
        None => (None, None),
    };
    RuleRow {
        info,
        enabled: disabled_by.is_none(),
        disabled_by,
        disabled_at_unix_nano,
        local,
        has_tests,
    }
}

/// One rule (loaded or disabled).
pub async fn find(state: &SharedState, rule_id: &str) -> ConsoleResult<RuleRow> {
    list(state)
        .await?
        .into_iter()
        .find(|r| r.info.id == rule_id)
        .ok_or_else(|| ConsoleError::NotFound(rule_id.to_owned()))
}

/// Enables or disables a rule; audited as `rule.enable` / `rule.disable` (refusals
/// as `rule.enable.refused` / `rule.disable.refused`).
pub async fn set_enabled(
    state: &SharedState,
    ctx: &Ctx,
    rule_id: &str,
    enabled: bool,
) -> ConsoleResult<Toggled> {
    // Loaded or disabled: the title as the operator sees it on the rules page.
    let title = find(state, rule_id)
        .await
        .map(|r| r.info.title)
        .unwrap_or_default();
    let actor = ctx.actor();
    let (task_state, id) = (state.clone(), rule_id.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        let admin = admin_of(&task_state)?;
        Ok::<_, RuleAdminError>(admin.set_enabled(
            &id,
            enabled,
            &actor,
            shaobing_wire::now_unix_nano(),
        ))
    })
    .await?
    .map_err(|e| admin_error(ctx.lang, e))?;
    let action = if enabled {
        "rule.enable"
    } else {
        "rule.disable"
    };
    match outcome {
        Ok(toggled) => {
            let changed = toggled != Toggled::Unchanged;
            audit::record(
                state,
                ctx,
                action,
                rule_id,
                json!({ "title": title, "changed": changed }),
            )
            .await?;
            Ok(toggled)
        }
        Err(error) => {
            let reason = error.to_string();
            if matches!(error, RuleAdminError::Refused(_)) {
                audit::record(
                    state,
                    ctx,
                    &format!("{action}.refused"),
                    rule_id,
                    json!({ "title": title, "reason": reason }),
                )
                .await?;
            }
            Err(admin_error(ctx.lang, error))
        }
    }
}

/// Runs the tests beside a rule's file (off the runtime); audited as `rule.test`.
pub async fn run_tests(
    state: &SharedState,
    ctx: &Ctx,
    rule_id: &str,
) -> ConsoleResult<TestOutcome> {
    let (task_state, id) = (state.clone(), rule_id.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        let admin = admin_of(&task_state)?;
        admin.run_tests(&id)
    })
    .await?
    .map_err(|e| admin_error(ctx.lang, e))?;
    let failed = outcome.failures().count();
    audit::record(
        state,
        ctx,
        "rule.test",
        rule_id,
        json!({
            "tests": outcome.origin,
            "passed": outcome.passed(),
            "cases": outcome.cases.len(),
            "failed": failed,
            "error": outcome.error,
        }),
    )
    .await?;
    Ok(outcome)
}

/// The catalogue's admin, or a "read-only" error.
pub fn admin_of(state: &SharedState) -> Result<&RuleAdmin, RuleAdminError> {
    state.rules.admin().ok_or(RuleAdminError::ReadOnly)
}

/// An admin error as shown to the operator.
pub fn admin_error(lang: Lang, error: RuleAdminError) -> ConsoleError {
    match error {
        RuleAdminError::ReadOnly => ConsoleError::Conflict(
            lang.pick(
                "此采集器的规则集为只读（没有数据目录）",
                "This collector's rule set is read-only (no data directory)",
            )
            .to_owned(),
        ),
        RuleAdminError::NotFound(id) => ConsoleError::NotFound(id),
        RuleAdminError::NoTests(origin) => ConsoleError::Invalid(format!(
            "{}{origin}",
            lang.pick("规则文件旁没有测试文件：", "No tests file beside ")
        )),
        RuleAdminError::Refused(reasons) => ConsoleError::Conflict(format!(
            "{}{}",
            lang.pick(
                "规则集拒绝了此更改，未做任何修改：",
                "The rule set refused this change; nothing was changed: "
            ),
            reasons.join("；")
        )),
        RuleAdminError::Invalid(reason) => ConsoleError::Invalid(reason),
        RuleAdminError::Rules(error) => ConsoleError::Io {
            path: std::path::PathBuf::from("rules"),
            source: std::io::Error::other(error.to_string()),
        },
        RuleAdminError::Io { path, source } => ConsoleError::Io { path, source },
    }
}

fn admin_error_en(error: RuleAdminError) -> ConsoleError {
    admin_error(Lang::En, error)
}

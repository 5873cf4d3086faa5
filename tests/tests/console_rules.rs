//! Rule management from the console, end to end: a security administrator disables and
//! enables rules (page and API), runs a rule's tests, and turns a false positive into a
//! Sigma filter. Every effect is checked on the real detection pipeline (events sent
//! through `Pipeline::accept`/`complete` into the store), on the files the loader reads
//! (`rules-state.json`, `rules.local/filters/`), and in the audit log.

mod console_support;

use console_support::{
    FAIL_RULE_ID, PASSWORD, ROOT_RULE_ID, RULE_ID, SUDO_RULE_ID, TestConsole, failures,
    sample_alert,
};
use shaobing_collector::console::Role;
use shaobing_collector::rules::{RuleSet, RulesState};
use shaobing_detect::Detector;
use shaobing_tests::browser::WebClient;

fn log_in(console: &TestConsole) -> (WebClient, String) {
    console.add_user("sec", Role::Secadmin);
    let mut client = WebClient::new(&console.url);
    let response = client.login("sec", PASSWORD, "").expect("login");
    assert_eq!(response.status, 303, "{}", response.body);
    let csrf = client.csrf().expect("csrf");
    (client, csrf)
}

fn brute_force_alerts(console: &TestConsole, ip: &str) -> usize {
    console
        .alerts_of(RULE_ID, &format!("SourceIp={ip}"))
        .into_iter()
        .filter(|a| !a.alert_id.starts_with("fp"))
        .count()
}

fn state(console: &TestConsole) -> RulesState {
    RulesState::load(&console.data_dir.join("rules-state.json")).expect("state file")
}

#[test]
fn a_disabled_rule_stops_alerting_at_once_and_stays_disabled_after_a_restart() {
    let console = TestConsole::start(|_| {});
    let (mut client, csrf) = log_in(&console);

    console.ingest("agent-web-1", failures("web-1", "203.0.113.1", "root", 5));
    assert_eq!(
        brute_force_alerts(&console, "203.0.113.1"),
        1,
        "enabled: it fires"
    );

    let disabled = client
        .post_json(
            &format!("/api/v1/rules/{RULE_ID}/disable"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("disable");
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    let body = disabled.json().expect("json");
    assert_eq!(body["changed"], true);
    assert_eq!(body["rule"]["enabled"], false);
    assert_eq!(body["rule"]["disabled_by"], "sec");
    let saved = state(&console);
    assert_eq!(saved.disabled[RULE_ID].by, "sec");
    assert_eq!(saved.disabled[RULE_ID].title, "SSH 暴力破解");

    console.ingest("agent-web-1", failures("web-1", "203.0.113.2", "root", 6));
    assert_eq!(
        brute_force_alerts(&console, "203.0.113.2"),
        0,
        "disabled: no alert, without a restart"
    );
    assert!(
        console
            .alerts_of(FAIL_RULE_ID, "SourceIp=203.0.113.2")
            .is_empty(),
        "its building block stays silent"
    );

    let page = client.get("/rules").expect("rules page");
    assert_eq!(page.status, 200);
    let row_start = page
        .body
        .find(&format!("<tr data-rule-id=\"{RULE_ID}\""))
        .expect("the disabled rule is listed");
    let row = &page.body[row_start..];
    let row = &row[..row.find("</tr>").expect("row end")];
    assert!(row.contains("已停用") && row.contains("sec"), "{row}");
    assert!(row.contains("value=\"true\""), "offers to enable it: {row}");

    // A restarted collector reads the same state: the rule stays off.
    let rule_set = RuleSet::with_data_dir(
        vec![console.dir.path().join("rules")],
        console.data_dir.clone(),
    );
    let (restarted, report) = Detector::new(rule_set.read().expect("read"));
    assert_eq!(report.disabled, vec![RULE_ID.to_owned()]);
    assert!(restarted.rules().iter().all(|r| r.id != RULE_ID));

    // Enabled again from the page form.
    let enabled = client
        .post_form(
            &format!("/rules/{RULE_ID}/toggle"),
            &[("csrf", &csrf), ("enabled", "true")],
        )
        .expect("enable");
    assert_eq!(enabled.status, 303, "{}", enabled.body);
    assert_eq!(enabled.header("location"), Some("/rules?done=rule_enabled"));
    assert!(state(&console).disabled.is_empty());
    console.ingest("agent-web-1", failures("web-1", "203.0.113.3", "root", 5));
    assert_eq!(brute_force_alerts(&console, "203.0.113.3"), 1);

    let audit = console.audit_actions();
    for action in ["rule.disable", "rule.enable"] {
        let (_, _, detail) = audit
            .iter()
            .find(|(actor, a, _)| actor == "sec" && a == action)
            .unwrap_or_else(|| panic!("{action} audited: {audit:?}"));
        assert!(
            detail.contains("127.0.0.1") && detail.contains("SSH 暴力破解"),
            "{detail}"
        );
    }
}

#[test]
fn disabling_a_rule_that_a_correlation_needs_is_refused_and_changes_nothing() {
    let console = TestConsole::start(|_| {});
    let (mut client, csrf) = log_in(&console);
    let refused = client
        .post_json(
            &format!("/api/v1/rules/{FAIL_RULE_ID}/disable"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("disable");
    assert_eq!(refused.status, 409, "{}", refused.body);
    let message = refused.json().expect("json")["error"]
        .as_str()
        .expect("error")
        .to_owned();
    assert!(
        message.contains("规则集拒绝") && message.contains("ssh_fail_test"),
        "{message}"
    );
    assert!(state(&console).disabled.is_empty(), "the change was undone");
    console.ingest("agent-web-2", failures("web-2", "203.0.113.4", "root", 5));
    assert_eq!(brute_force_alerts(&console, "203.0.113.4"), 1);
    assert!(
        console
            .audit_actions()
            .iter()
            .any(|(actor, action, _)| actor == "sec" && action == "rule.disable.refused")
    );

    let unknown = client
        .post_json(
            "/api/v1/rules/no-such-rule/disable",
            &csrf,
            &serde_json::json!({}),
        )
        .expect("disable");
    assert_eq!(unknown.status, 404);
}

#[test]
fn a_rules_tests_run_from_the_console_with_each_case_and_its_reason() {
    let console = TestConsole::start(|_| {});
    let (mut client, csrf) = log_in(&console);

    let passing = client
        .post_json(
            &format!("/api/v1/rules/{RULE_ID}/test"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("test");
    assert_eq!(passing.status, 200, "{}", passing.body);
    let passing = passing.json().expect("json");
    assert_eq!(passing["passed"], true);
    assert_eq!(
        passing["outcome"]["cases"].as_array().expect("cases").len(),
        2
    );

    let failing = client
        .post_json(
            &format!("/api/v1/rules/{ROOT_RULE_ID}/test"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("test")
        .json()
        .expect("json");
    assert_eq!(failing["passed"], false);
    let cases = failing["outcome"]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    let failed: Vec<&serde_json::Value> = cases.iter().filter(|c| c["passed"] == false).collect();
    assert_eq!(failed.len(), 1, "{cases:?}");
    assert!(!failed[0]["detail"].as_str().expect("detail").is_empty());

    let page = client
        .post_form(&format!("/rules/{ROOT_RULE_ID}/test"), &[("csrf", &csrf)])
        .expect("test page");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"test-results\""));
    assert!(page.body.contains("测试未通过") && page.body.contains("test-case fail"));
    assert_eq!(page.body.matches("test-case pass").count(), 2);

    let untested = client
        .post_json(
            &format!("/api/v1/rules/{SUDO_RULE_ID}/test"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("test");
    assert_eq!(untested.status, 400, "{}", untested.body);

    let audit = console.audit_actions();
    let tests: Vec<&(String, String, String)> =
        audit.iter().filter(|(_, a, _)| a == "rule.test").collect();
    assert_eq!(tests.len(), 3, "{audit:?}");
    assert!(tests.iter().any(|(_, _, d)| d.contains("\"passed\":false")));
}

#[test]
fn a_false_positive_becomes_a_filter_that_excludes_only_events_like_it() {
    let console = TestConsole::start(|_| {});
    let (mut client, csrf) = log_in(&console);
    console.insert_alert(&sample_alert("fp1", "web-1", "203.0.113.9", "high", 30));
    let closed = client
        .post_json(
            "/api/v1/alerts/fp1/triage",
            &csrf,
            &serde_json::json!({ "action": "false_positive", "note": "运维跳板机" }),
        )
        .expect("close");
    assert_eq!(closed.status, 200, "{}", closed.body);

    // The form offers the matching events' fields, host, user and address ticked.
    let form = client.get("/alerts/fp1/filter").expect("form");
    assert_eq!(form.status, 200, "{}", form.body);
    for ticked in ["Hostname=web-1", "SourceIp=203.0.113.9", "User=root"] {
        let at = form
            .body
            .find(&format!("value=\"{ticked}\""))
            .expect(ticked);
        let input = &form.body[at..at + form.body[at..].find('>').expect("tag end")];
        assert!(input.contains("checked"), "{ticked} pre-selected: {input}");
    }

    // Preview (API): the filter names the detection rule the correlation counts.
    let preview = client
        .post_json("/api/v1/alerts/fp1/filter", &csrf, &serde_json::json!({}))
        .expect("preview")
        .json()
        .expect("json");
    assert_eq!(preview["targets"], serde_json::json!([FAIL_RULE_ID]));
    let yaml = preview["yaml"].as_str().expect("yaml");
    assert!(
        yaml.contains("condition: not selection") && yaml.contains("SourceIp: \"203.0.113.9\""),
        "{yaml}"
    );
    assert!(preview["saved"].is_null(), "a preview saves nothing");

    // Save from the page with host + address only (the operator unticked the user).
    let saved = client
        .post_form(
            "/alerts/fp1/filter",
            &[
                ("csrf", &csrf),
                ("sel", "Hostname=web-1"),
                ("sel", "SourceIp=203.0.113.9"),
                ("action", "save"),
            ],
        )
        .expect("save");
    assert_eq!(saved.status, 303, "{}", saved.body);
    let location = saved.header("location").expect("location").to_owned();
    assert!(location.ends_with("?done=filter_saved"), "{location}");
    let filter_id = location
        .trim_start_matches("/rules/")
        .trim_end_matches("?done=filter_saved")
        .to_owned();
    let file = console
        .data_dir
        .join("rules.local/filters")
        .join(format!("fp-{filter_id}.yml"));
    let text = std::fs::read_to_string(&file).expect("filter file");
    assert!(
        text.contains(FAIL_RULE_ID) && !text.contains("User:"),
        "{text}"
    );

    // Replaying the same events raises nothing; a different address or host still does.
    console.ingest("agent-web-1", failures("web-1", "203.0.113.9", "root", 6));
    assert_eq!(brute_force_alerts(&console, "203.0.113.9"), 0);
    console.ingest("agent-web-1", failures("web-1", "203.0.113.10", "root", 6));
    assert_eq!(brute_force_alerts(&console, "203.0.113.10"), 1);
    console.ingest("agent-web-2", failures("web-2", "203.0.113.9", "admin", 6));
    assert_eq!(brute_force_alerts(&console, "203.0.113.9"), 1, "other host");

    // The filter is a rule on the rules page, and can be disabled there.
    let detail = client.get(&location).expect("filter page");
    assert!(detail.body.contains("过滤规则已保存并生效") && detail.body.contains("filter"));
    let rules = client.get("/rules").expect("rules");
    assert!(
        rules
            .body
            .contains(&format!("<tr data-rule-id=\"{filter_id}\""))
    );
    let off = client
        .post_json(
            &format!("/api/v1/rules/{filter_id}/disable"),
            &csrf,
            &serde_json::json!({}),
        )
        .expect("disable filter");
    assert_eq!(off.status, 200, "{}", off.body);
    // (A correlation's alert is per address: web-1's failures now grow that alert.)
    let count = |console: &TestConsole| {
        console
            .alerts_of(RULE_ID, "SourceIp=203.0.113.9")
            .into_iter()
            .filter(|a| !a.alert_id.starts_with("fp"))
            .map(|a| a.count)
            .max()
            .expect("the other host's alert")
    };
    let before = count(&console);
    console.ingest("agent-web-1", failures("web-1", "203.0.113.9", "root", 6));
    assert!(
        count(&console) > before,
        "filter disabled: web-1's failures count again"
    );

    let audit = console.audit_actions();
    let (_, _, detail) = audit
        .iter()
        .find(|(actor, a, _)| actor == "sec" && a == "rule.filter.create")
        .expect("filter creation audited");
    assert!(
        detail.contains("fp1")
            && detail.contains("SourceIp=203.0.113.9")
            && detail.contains("127.0.0.1"),
        "{detail}"
    );
}

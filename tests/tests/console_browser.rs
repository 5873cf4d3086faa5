//! The console in a real browser (Debian's headless Chromium via chromedriver): a
//! security administrator logs in, sees a new alert appear without reloading (it is
//! inserted into the store while the page is open), opens it, closes it as a false
//! positive with a note and turns it into a Sigma filter (preview, save), disables a
//! rule on the rules page and runs a rule's tests; then the auditor finds those
//! actions in the audit log. Screenshots go to `$CARGO_TARGET_DIR/console-screenshots/`.

mod console_support;

use std::time::Duration;

use console_support::{PASSWORD, ROOT_RULE_ID, RULE_ID, TestConsole, sample_alert};
use shaobing_collector::console::Role;
use shaobing_collector::store::{AlertQuery, AlertStatus};
use shaobing_tests::browser::Browser;

const WAIT: Duration = Duration::from_secs(20);
const NOTE: &str = "内部漏洞扫描器的例行扫描，已确认误报";

fn log_in(browser: &Browser, base: &str, user: &str) {
    browser.goto(&format!("{base}/login")).expect("login page");
    let name = browser.wait_for("#username", WAIT).expect("form");
    browser.type_text(&name, user).expect("type user");
    let password = browser
        .find("#password")
        .expect("find")
        .expect("password field");
    browser
        .type_text(&password, PASSWORD)
        .expect("type password");
    let submit = browser
        .find("#login-submit")
        .expect("find")
        .expect("submit");
    browser.click(&submit).expect("submit");
    browser.wait_for("#logout", WAIT).expect("logged in");
}

#[test]
fn triage_a_live_alert_and_audit_it_in_chromium() {
    assert!(
        Browser::available(),
        "chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver"
    );
    let console = TestConsole::start(|_| {});
    console.add_user("sec", Role::Secadmin);
    console.add_user("aud", Role::Auditor);
    for (i, host) in ["web-1", "web-2", "db-1"].iter().enumerate() {
        let level = ["medium", "high", "low"][i];
        console.insert_alert(&sample_alert(
            &format!("old-{i}"),
            host,
            &format!("198.51.100.{i}"),
            level,
            3600 + 600 * i as i64,
        ));
    }
    let base = console.url.clone();
    let browser = Browser::start().expect("browser");

    log_in(&browser, &base, "sec");
    assert!(browser.url().expect("url").ends_with("/overview"));
    browser.wait_for("#severity-chart", WAIT).expect("chart");
    let overview = browser.source().expect("source");
    assert!(
        overview.contains("总览") && overview.contains("SSH 暴力破解"),
        "overview in Chinese with top rules"
    );
    browser.screenshot("01-overview").expect("screenshot");

    browser.goto(&format!("{base}/alerts")).expect("alerts");
    browser
        .wait_for("tr[data-id=\"old-0\"]", WAIT)
        .expect("existing rows");
    // A new alert arrives while the page is open.
    console.insert_alert(&sample_alert(
        "live-1",
        "web-9",
        "203.0.113.66",
        "critical",
        0,
    ));
    let row = browser
        .wait_for("tr[data-id=\"live-1\"]", WAIT)
        .expect("new alert appears without reload");
    let row_text = browser.text(&row).expect("row text");
    assert!(
        row_text.contains("web-9") && row_text.contains("严重"),
        "{row_text}"
    );
    browser.screenshot("02-alert-appeared").expect("screenshot");

    let link = browser
        .find("tr[data-id=\"live-1\"] a.alert-link")
        .expect("find")
        .expect("link");
    browser.click(&link).expect("open");
    browser.wait_for("#alert-facts", WAIT).expect("detail");
    let detail = browser.source().expect("source");
    assert!(
        detail.contains("Failed password for root from 203.0.113.66"),
        "raw lines of the matching events"
    );
    assert!(
        detail.contains("T1110") && detail.contains("8.1.4.2"),
        "ATT&CK and 等保 tags"
    );
    assert!(
        detail.contains("同一来源地址短时间内多次 SSH 登录失败"),
        "why it fired"
    );
    browser.screenshot("03-alert-detail").expect("screenshot");

    let note = browser.find("#close-note").expect("find").expect("note");
    browser.type_text(&note, NOTE).expect("note");
    let close = browser.find("#close-fp").expect("find").expect("button");
    browser.click(&close).expect("close");
    browser.wait_for(".notice.ok", WAIT).expect("confirmation");
    let status = browser
        .find("#alert-status")
        .expect("find")
        .expect("status");
    assert_eq!(browser.text(&status).expect("text"), "已关闭");
    let shown_note = browser.find("#alert-note").expect("find").expect("note");
    assert!(browser.text(&shown_note).expect("text").contains(NOTE));
    browser
        .screenshot("04-closed-false-positive")
        .expect("screenshot");
    let stored = console
        .runtime
        .block_on(console.store.alerts(&AlertQuery {
            limit: Some(100),
            ..AlertQuery::default()
        }))
        .expect("alerts")
        .into_iter()
        .find(|a| a.alert_id == "live-1")
        .expect("stored");
    assert_eq!(stored.status, AlertStatus::Closed);
    assert_eq!(stored.note, format!("[false_positive] {NOTE}"));

    // The false positive becomes a filter: fields pre-selected, YAML previewed, saved.
    let to_filter = browser.find("#to-filter").expect("find").expect("link");
    browser.click(&to_filter).expect("open filter form");
    browser.wait_for("#filter-form", WAIT).expect("filter form");
    let ticked = browser
        .execute("return Array.from(document.querySelectorAll('input[name=sel]:checked')).map(e => e.value);")
        .expect("ticked");
    let ticked: Vec<&str> = ticked
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        ticked.contains(&"Hostname=web-9") && ticked.contains(&"SourceIp=203.0.113.66"),
        "{ticked:?}"
    );
    let preview = browser
        .find("#filter-preview")
        .expect("find")
        .expect("preview");
    browser.click(&preview).expect("preview");
    let yaml = browser
        .wait_for("#filter-yaml", WAIT)
        .expect("yaml preview");
    let yaml = browser.text(&yaml).expect("text");
    assert!(
        yaml.contains("condition: not selection") && yaml.contains("203.0.113.66"),
        "{yaml}"
    );
    browser.screenshot("05-filter-preview").expect("screenshot");
    let save = browser.find("#filter-save").expect("find").expect("save");
    browser.click(&save).expect("save");
    browser
        .wait_for("#rule-facts", WAIT)
        .expect("the filter's rule page");
    let filter_page = browser.source().expect("source");
    assert!(filter_page.contains("过滤规则已保存并生效"), "saved notice");
    browser.screenshot("06-filter-saved").expect("screenshot");

    // Disable the brute-force rule on the rules page.
    browser.goto(&format!("{base}/rules")).expect("rules");
    browser.wait_for("#rules-table", WAIT).expect("rules table");
    let disable = browser
        .find(&format!(
            "tr[data-rule-id=\"{RULE_ID}\"] .toggle-form button"
        ))
        .expect("find")
        .expect("disable button");
    assert_eq!(browser.text(&disable).expect("text"), "停用");
    browser.click(&disable).expect("disable");
    browser.wait_for(".notice.ok", WAIT).expect("confirmation");
    let state = browser
        .find(&format!("tr[data-rule-id=\"{RULE_ID}\"] .rule-state"))
        .expect("find")
        .expect("state");
    assert_eq!(browser.text(&state).expect("text"), "已停用");
    browser.screenshot("07-rule-disabled").expect("screenshot");
    assert!(
        console
            .pipeline
            .detector
            .lock()
            .expect("detector")
            .rules()
            .iter()
            .all(|r| r.id != RULE_ID),
        "out of the running detector"
    );

    // Run a rule's tests from its page: one case fails, with its reason.
    browser
        .goto(&format!("{base}/rules/{ROOT_RULE_ID}"))
        .expect("rule page");
    let run = browser
        .wait_for(".test-form button", WAIT)
        .expect("run tests button");
    browser.click(&run).expect("run tests");
    let results = browser.wait_for("#test-results", WAIT).expect("results");
    let results = browser.text(&results).expect("text");
    assert!(
        results.contains("测试未通过") && results.contains("通过") && results.contains("失败"),
        "{results}"
    );
    browser.screenshot("08-rule-tests").expect("screenshot");

    let logout = browser.find("#logout").expect("find").expect("logout");
    browser.click(&logout).expect("logout");
    browser
        .wait_for("#login-form", WAIT)
        .expect("back at login");

    log_in(&browser, &base, "aud");
    assert!(
        browser.url().expect("url").ends_with("/audit"),
        "the auditor lands on the audit log"
    );
    let table = browser.wait_for("#audit-table", WAIT).expect("audit table");
    let audit_text = browser.text(&table).expect("text");
    assert!(
        audit_text.contains("alert.close.false_positive"),
        "{audit_text}"
    );
    assert!(
        audit_text.contains(NOTE) && audit_text.contains("sec") && audit_text.contains("127.0.0.1")
    );
    for action in ["rule.filter.create", "rule.disable", "rule.test"] {
        assert!(audit_text.contains(action), "{action} in {audit_text}");
    }
    let page = browser.source().expect("source");
    assert!(
        !page.contains("href=\"/alerts\""),
        "the auditor's navigation has no alerts page"
    );
    browser.screenshot("09-audit-log").expect("screenshot");

    browser
        .goto(&format!("{base}/audit?lang=en"))
        .expect("english");
    browser.wait_for("#audit-table", WAIT).expect("table");
    assert!(browser.source().expect("source").contains("Audit log"));
    browser.screenshot("10-audit-log-en").expect("screenshot");
}

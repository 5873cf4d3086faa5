//! Suite cases about the alerts list: every filter and every page must equal what a plain
//! in-memory model of the same alerts gives, with alerts raised several times (older versions
//! that matched other filters), triage changed several times, and equal times.

use shaobing_collector::store::{AlertQuery, AlertRecord, AlertStatus, Store};

use super::builders::*;
use super::harness::TestStore;

const ALERTS: usize = 180;
const PAGE: usize = 37;

/// The final state of alert `i`: level, host and times vary, and many alerts share a time.
fn final_state(i: usize) -> AlertRecord {
    let level = ["low", "high", "critical"][i % 3];
    let host = format!("web-{}", i % 4);
    let last = BASE_NS + ((i * 37) % 90) as i64 * SECOND;
    let versions = 1 + (i % 4) as u64;
    let mut a = alert(
        &format!("pg-{i:03}"),
        &host,
        level,
        last - 30 * SECOND,
        last,
        versions,
    );
    a.summary = format!("final {i}: {versions} failed logins");
    a
}

/// The versions detection raised before the final one: earlier times, a later first time,
/// another level and a summary with a word the final one lacks.
fn older_versions(last: &AlertRecord) -> Vec<AlertRecord> {
    (1..last.count)
        .map(|count| {
            let back = (last.count - count) as i64 * 10 * SECOND;
            let mut a = last.clone();
            a.count = count;
            a.event_ids.truncate(count as usize);
            a.last_time_unix_nano -= back;
            a.first_time_unix_nano += SECOND;
            a.level = "low".to_owned();
            a.rule_id = "rule-low".to_owned();
            a.summary = format!("older marker {count}");
            a
        })
        .collect()
}

/// Triage calls, in order: some alerts closed, then some of those acknowledged or reopened.
fn triage_calls() -> Vec<(usize, AlertStatus, &'static str)> {
    let mut calls = Vec::new();
    for i in (0..ALERTS).filter(|i| i % 6 == 0) {
        calls.push((i, AlertStatus::Closed, "误报：扫描"));
    }
    for i in (0..ALERTS).filter(|i| i % 12 == 0) {
        calls.push((i, AlertStatus::Acknowledged, "again"));
    }
    for i in (0..ALERTS).filter(|i| i % 18 == 0) {
        calls.push((i, AlertStatus::Open, "reopened"));
    }
    calls
}

fn model() -> Vec<AlertRecord> {
    let mut alerts: Vec<AlertRecord> = (0..ALERTS).map(final_state).collect();
    for (i, status, note) in triage_calls() {
        alerts[i].status = status;
        alerts[i].assignee = "li.lei".to_owned();
        alerts[i].note = note.to_owned();
    }
    alerts.sort_by(|a, b| {
        b.last_time_unix_nano
            .cmp(&a.last_time_unix_nano)
            .then_with(|| a.alert_id.cmp(&b.alert_id))
    });
    alerts
}

fn matches(a: &AlertRecord, q: &AlertQuery) -> bool {
    let text = q.text.as_deref().is_none_or(|needle| {
        let needle = needle.to_ascii_lowercase();
        [
            &a.rule_title,
            &a.rule_id,
            &a.summary,
            &a.hostname,
            &a.group_key,
        ]
        .iter()
        .any(|f| f.to_ascii_lowercase().contains(&needle))
    });
    text && q.alert_id.as_ref().is_none_or(|id| *id == a.alert_id)
        && q.since.is_none_or(|s| a.last_time_unix_nano >= s)
        && q.until.is_none_or(|u| a.first_time_unix_nano < u)
        && q.host.as_ref().is_none_or(|h| *h == a.hostname)
        && q.rule_id.as_ref().is_none_or(|r| *r == a.rule_id)
        && (q.levels.is_empty() || q.levels.contains(&a.level))
        && (q.statuses.is_empty() || q.statuses.contains(&a.status))
}

async fn store_with_history(store: &Store) {
    let finals: Vec<AlertRecord> = (0..ALERTS).map(final_state).collect();
    // Older versions first, then the final ones, then the older ones again (late, stale).
    let older: Vec<AlertRecord> = finals.iter().flat_map(older_versions).collect();
    upsert(store, &older).await;
    upsert(store, &finals).await;
    upsert(store, &older[..older.len() / 2]).await;
    for (i, status, note) in triage_calls() {
        store
            .set_alert_triage(&format!("pg-{i:03}"), status, "li.lei", note)
            .await
            .expect("triage");
    }
}

/// All pages of `q`, `PAGE` rows at a time.
async fn every_page(store: &Store, q: &AlertQuery) -> Vec<AlertRecord> {
    let mut all = Vec::new();
    loop {
        let page = store
            .alerts(&AlertQuery {
                limit: Some(PAGE),
                offset: all.len(),
                ..q.clone()
            })
            .await
            .expect("alerts page");
        let done = page.len() < PAGE;
        all.extend(page);
        if done {
            return all;
        }
    }
}

fn queries() -> Vec<(&'static str, AlertQuery)> {
    let q = AlertQuery::default;
    vec![
        ("everything", q()),
        (
            "closed (some closed alerts were later acknowledged or reopened)",
            AlertQuery {
                statuses: vec![AlertStatus::Closed],
                ..q()
            },
        ),
        (
            "open",
            AlertQuery {
                statuses: vec![AlertStatus::Open],
                ..q()
            },
        ),
        (
            "open or acknowledged",
            AlertQuery {
                statuses: vec![AlertStatus::Open, AlertStatus::Acknowledged],
                ..q()
            },
        ),
        (
            "low (every older version was low)",
            AlertQuery {
                levels: vec!["low".into()],
                ..q()
            },
        ),
        (
            "rule-low",
            AlertQuery {
                rule_id: Some("rule-low".into()),
                ..q()
            },
        ),
        (
            "critical on web-1",
            AlertQuery {
                levels: vec!["critical".into()],
                host: Some("web-1".into()),
                ..q()
            },
        ),
        (
            "text only older versions had",
            AlertQuery {
                text: Some("OLDER MARKER".into()),
                ..q()
            },
        ),
        (
            "text",
            AlertQuery {
                text: Some("Final 1".into()),
                ..q()
            },
        ),
        (
            "time window",
            AlertQuery {
                since: Some(BASE_NS + 20 * SECOND),
                until: Some(BASE_NS + 40 * SECOND),
                ..q()
            },
        ),
        (
            "acknowledged low since",
            AlertQuery {
                statuses: vec![AlertStatus::Acknowledged],
                levels: vec!["low".into()],
                since: Some(BASE_NS + 10 * SECOND),
                ..q()
            },
        ),
    ]
}

fn ids(alerts: &[AlertRecord]) -> Vec<&str> {
    alerts.iter().map(|a| a.alert_id.as_str()).collect()
}

pub async fn alert_pages_follow_the_newest_version_and_latest_triage(t: TestStore) {
    store_with_history(&t.store).await;
    let model = model();
    for (name, q) in queries() {
        let want: Vec<AlertRecord> = model.iter().filter(|a| matches(a, &q)).cloned().collect();
        let got = every_page(&t.store, &q).await;
        assert_eq!(ids(&got), ids(&want), "{name}: ids, in order");
        assert_eq!(got, want, "{name}: whole records");
        // One deep page on its own, as the console asks for it.
        let deep = t
            .store
            .alerts(&AlertQuery {
                limit: Some(11),
                offset: 23,
                ..q.clone()
            })
            .await
            .expect("deep page");
        let expected: Vec<&str> = ids(&want).into_iter().skip(23).take(11).collect();
        assert_eq!(ids(&deep), expected, "{name}: offset 23, limit 11");
    }
    // Sanity of the fixture: the filters above select different, non-empty sets.
    let count = |q: &AlertQuery| model.iter().filter(|a| matches(a, q)).count();
    let sizes: Vec<usize> = queries().iter().map(|(_, q)| count(q)).collect();
    assert_eq!(sizes[0], ALERTS);
    assert_eq!(sizes[7], 0, "older summaries must not match");
    assert!(sizes.iter().enumerate().all(|(i, n)| i == 7 || *n > 0));
}

pub async fn one_alert_is_found_by_id_with_its_latest_state(t: TestStore) {
    store_with_history(&t.store).await;
    let model = model();
    for i in [0, 12, 18, 31] {
        let id = format!("pg-{i:03}");
        let got = t
            .store
            .alerts(&AlertQuery {
                alert_id: Some(id.clone()),
                ..AlertQuery::default()
            })
            .await
            .expect("by id");
        let want: Vec<&AlertRecord> = model.iter().filter(|a| a.alert_id == id).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{id}");
    }
    let closed_but_reopened = t
        .store
        .alerts(&AlertQuery {
            alert_id: Some("pg-018".into()),
            statuses: vec![AlertStatus::Closed],
            ..AlertQuery::default()
        })
        .await
        .expect("by id and status");
    assert!(closed_but_reopened.is_empty(), "{closed_but_reopened:?}");
    let unknown = t
        .store
        .alerts(&AlertQuery {
            alert_id: Some("no-such-alert".into()),
            ..AlertQuery::default()
        })
        .await
        .expect("unknown id");
    assert!(unknown.is_empty());
}

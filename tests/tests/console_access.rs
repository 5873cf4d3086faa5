//! Console access control, end to end over HTTP: every route of the route table with
//! every role and with no session gets the expected allow/deny; state changes without a
//! CSRF token or from another origin are refused; the audit log cannot be changed.

mod console_support;

use console_support::{PASSWORD, RULE_ID, TestConsole, sample_alert};
use shaobing_collector::console::Role;
use shaobing_collector::console::access::{Access, ROUTES, RouteSpec, Verb};
use shaobing_collector::store::{AlertQuery, AlertStatus};
use shaobing_tests::browser::WebClient;

const REFUSED: &str = "x-shaobing-refused";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    LoginRequired,
    Forbidden,
}

fn expected(spec: &RouteSpec, role: Option<Role>) -> Outcome {
    match (spec.access, role) {
        (Access::Public, _) => Outcome::Allowed,
        (_, None) => Outcome::LoginRequired,
        (_, Some(role)) if spec.allows(role) => Outcome::Allowed,
        _ => Outcome::Forbidden,
    }
}

fn classify(status: u16, refused: Option<&str>, location: Option<&str>) -> Outcome {
    match refused {
        Some("not_logged_in") => {
            assert!(
                status == 401
                    || (status == 303 && location.is_some_and(|l| l.starts_with("/login")))
            );
            Outcome::LoginRequired
        }
        Some("wrong_role") => {
            assert_eq!(status, 403);
            Outcome::Forbidden
        }
        Some(other) => panic!("unexpected refusal {other} ({status})"),
        None => Outcome::Allowed,
    }
}

fn concrete_path(spec: &RouteSpec) -> String {
    spec.path
        .replace(
            "{id}",
            if spec.path.contains("alerts") {
                "m1"
            } else {
                "999"
            },
        )
        .replace("{username}", "nobody")
        .replace("{agent_id}", "agent-web-1")
        .replace("{rule_id}", RULE_ID)
}

fn login(console: &TestConsole, user: &str) -> (WebClient, String) {
    let mut client = WebClient::new(&console.url);
    let response = client.login(user, PASSWORD, "").expect("login");
    assert_eq!(response.status, 303, "login of {user}: {}", response.body);
    let csrf = client.csrf().expect("csrf");
    (client, csrf)
}

fn call(
    client: &mut WebClient,
    spec: &RouteSpec,
    csrf: &str,
) -> (u16, Option<String>, Option<String>) {
    let path = concrete_path(spec);
    let response = match spec.verb {
        Verb::Get => client.get(&path),
        Verb::Post if spec.is_api() => client.post_json(&path, csrf, &serde_json::json!({})),
        Verb::Post => {
            let prelogin = client
                .cookies
                .get("sb_prelogin")
                .cloned()
                .unwrap_or_default();
            let token = if spec.path == "/login" {
                prelogin.as_str()
            } else {
                csrf
            };
            client.post_form(&path, &[("csrf", token)])
        }
    }
    .expect("request");
    (
        response.status,
        response.header(REFUSED).map(str::to_owned),
        response.header("location").map(str::to_owned),
    )
}

#[test]
fn every_route_with_every_role_and_without_session() {
    let console = TestConsole::start(|_| {});
    console.add_role_users();
    console.insert_alert(&sample_alert("m1", "web-1", "203.0.113.9", "high", 60));
    let roles = [
        None,
        Some(Role::Sysadmin),
        Some(Role::Secadmin),
        Some(Role::Auditor),
        Some(Role::Compliance),
    ];
    let mut checked = 0;
    for role in roles {
        let user = match role {
            Some(Role::Sysadmin) => "sys",
            Some(Role::Secadmin) => "sec",
            Some(Role::Auditor) => "aud",
            Some(Role::Compliance) => "comp",
            None => "",
        };
        let (mut client, mut csrf) = match role {
            Some(_) => login(&console, user),
            None => {
                let mut c = WebClient::new(&console.url);
                c.get("/login").expect("login page");
                (c, String::new())
            }
        };
        for spec in ROUTES.iter() {
            let (status, refused, location) = call(&mut client, spec, &csrf);
            let got = classify(status, refused.as_deref(), location.as_deref());
            assert_eq!(
                got,
                expected(spec, role),
                "{:?} {} as {role:?}: status {status}, refused {refused:?}",
                spec.verb,
                spec.path
            );
            checked += 1;
            if role.is_some() && (spec.path == "/logout" || spec.path == "/login") {
                (client, csrf) = login(&console, user);
            }
        }
    }
    assert_eq!(checked, ROUTES.len() * 5);
    // The rule-management routes are in the table, hence in the matrix above.
    for (verb, path) in [
        (Verb::Get, "/rules/{rule_id}"),
        (Verb::Post, "/rules/{rule_id}/toggle"),
        (Verb::Post, "/rules/{rule_id}/test"),
        (Verb::Get, "/alerts/{id}/filter"),
        (Verb::Post, "/alerts/{id}/filter"),
        (Verb::Post, "/api/v1/rules/{rule_id}/enable"),
        (Verb::Post, "/api/v1/rules/{rule_id}/disable"),
        (Verb::Post, "/api/v1/rules/{rule_id}/test"),
        (Verb::Post, "/api/v1/alerts/{id}/filter"),
    ] {
        let spec = ROUTES
            .iter()
            .find(|r| r.verb == verb && r.path == path)
            .unwrap_or_else(|| panic!("{verb:?} {path} missing from the route table"));
        assert_eq!(spec.access, Access::Roles(&[Role::Secadmin]), "{path}");
    }
}

#[test]
fn a_one_time_password_only_opens_the_password_change() {
    let console = TestConsole::start(|_| {});
    let admin_password = console
        .handle()
        .bootstrap_password
        .clone()
        .expect("bootstrap password");
    let mut client = WebClient::new(&console.url);
    let response = client.login("admin", &admin_password, "").expect("login");
    assert_eq!(response.header("location"), Some("/account?must_change=1"));
    let page = client.get("/users").expect("users");
    assert_eq!(page.status, 303);
    assert_eq!(page.header(REFUSED), Some("password_change_required"));
    let api = client.get("/api/v1/users").expect("api");
    assert_eq!(api.status, 403);
    let csrf = client.csrf().expect("csrf");
    let changed = client
        .post_form(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", &admin_password),
                ("new", "Fresh-Start-2024"),
                ("repeat", "Fresh-Start-2024"),
            ],
        )
        .expect("change");
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(client.get("/users").expect("users").status, 200);
}

#[test]
fn state_changes_need_the_csrf_token_and_the_same_origin() {
    let console = TestConsole::start(|_| {});
    console.add_role_users();
    console.insert_alert(&sample_alert("c1", "web-1", "203.0.113.10", "high", 30));
    let (mut client, csrf) = login(&console, "sec");
    let triage = "/alerts/c1/triage";
    let ack = |token: &str| {
        vec![
            ("action", "acknowledge".to_owned()),
            ("csrf", token.to_owned()),
        ]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| {
        v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>()
    };

    let no_token = client
        .post_form(triage, &[("action", "acknowledge")])
        .expect("post");
    assert_eq!(
        (no_token.status, no_token.header(REFUSED)),
        (403, Some("csrf"))
    );
    let wrong = client
        .post_form(triage, &[("action", "acknowledge"), ("csrf", "0000")])
        .expect("post");
    assert_eq!((wrong.status, wrong.header(REFUSED)), (403, Some("csrf")));

    let body = shaobing_tests::browser::form_encode(
        &as_refs(&ack(&csrf))
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let evil = client
        .send(
            "POST",
            triage,
            &[form, ("Origin", "http://evil.example")],
            body.as_bytes(),
        )
        .expect("post");
    assert_eq!(
        (evil.status, evil.header(REFUSED)),
        (403, Some("cross_origin"))
    );
    client.origin = None;
    let nothing = client
        .send("POST", triage, &[form], body.as_bytes())
        .expect("post");
    assert_eq!(
        (nothing.status, nothing.header(REFUSED)),
        (403, Some("cross_origin"))
    );
    let evil_referer = client
        .send(
            "POST",
            triage,
            &[form, ("Referer", "http://evil.example/x")],
            body.as_bytes(),
        )
        .expect("post");
    assert_eq!(evil_referer.status, 403);

    let status = |console: &TestConsole| {
        console
            .runtime
            .block_on(console.store.alerts(&AlertQuery::default()))
            .expect("alerts")
            .into_iter()
            .find(|a| a.alert_id == "c1")
            .expect("c1")
            .status
    };
    assert_eq!(
        status(&console),
        AlertStatus::Open,
        "a refused request changed the alert"
    );

    let referer = format!("{}/alerts/c1", console.url);
    let same = client
        .send(
            "POST",
            triage,
            &[form, ("Referer", &referer)],
            body.as_bytes(),
        )
        .expect("post");
    assert_eq!(same.status, 303, "{}", same.body);
    assert_eq!(status(&console), AlertStatus::Acknowledged);

    client.origin = Some(console.url.clone());
    let api_without = client
        .send(
            "POST",
            "/api/v1/alerts/c1/triage",
            &[("Content-Type", "application/json")],
            br#"{"action":"reopen"}"#,
        )
        .expect("post");
    assert_eq!(
        (api_without.status, api_without.header(REFUSED)),
        (403, Some("csrf"))
    );

    let mut anonymous = WebClient::new(&console.url);
    let login_without = anonymous
        .post_form("/login", &[("username", "sec"), ("password", PASSWORD)])
        .expect("post");
    assert_eq!(
        (login_without.status, login_without.header(REFUSED)),
        (403, Some("csrf"))
    );
}

#[test]
fn the_audit_log_cannot_be_changed_or_deleted() {
    let console = TestConsole::start(|_| {});
    console.add_role_users();
    let (mut auditor, csrf) = login(&console, "aud");
    let before = console.audit_actions().len();
    assert!(before >= 2, "logins are audited");
    for method in ["DELETE", "PUT", "PATCH"] {
        for path in ["/api/v1/audit", "/audit"] {
            let r = auditor
                .send(
                    method,
                    path,
                    &[
                        ("X-CSRF-Token", &csrf),
                        ("Content-Type", "application/json"),
                    ],
                    b"{}",
                )
                .expect("request");
            assert_eq!(r.status, 405, "{method} {path}");
        }
    }
    let post = auditor
        .post_json("/api/v1/audit", &csrf, &serde_json::json!({}))
        .expect("post");
    assert_eq!(post.status, 405);
    let listed = auditor
        .get("/api/v1/audit?limit=1000")
        .expect("list")
        .json()
        .expect("json");
    let entries = listed["entries"].as_array().expect("entries").len();
    assert_eq!(entries, console.audit_actions().len());
    assert!(entries >= before, "entries disappeared");

    // Nobody else reads it, not even the system administrator.
    let (mut sys, _) = login(&console, "sys");
    assert_eq!(sys.get("/api/v1/audit").expect("get").status, 403);
}

#[test]
fn api_tokens_act_with_their_owners_role_and_need_no_csrf() {
    let console = TestConsole::start(|_| {});
    console.add_role_users();
    console.insert_alert(&sample_alert("t1", "db-1", "203.0.113.11", "critical", 10));
    let (mut sec, csrf) = login(&console, "sec");
    let created = sec
        .post_json(
            "/api/v1/tokens",
            &csrf,
            &serde_json::json!({ "name": "siem" }),
        )
        .expect("create")
        .json()
        .expect("json");
    let token = created["token"].as_str().expect("token").to_owned();
    let bearer = format!("Bearer {token}");
    let url = |p: &str| format!("{}{p}", console.url);
    let get = shaobing_tests::browser::http_request(
        "GET",
        &url("/api/v1/alerts?range=all"),
        &[("Authorization", &bearer)],
        b"",
    )
    .expect("get");
    assert_eq!(get.status, 200);
    assert_eq!(get.json().expect("json")["alerts"][0]["alert_id"], "t1");
    let triage = shaobing_tests::browser::http_request(
        "POST",
        &url("/api/v1/alerts/t1/triage"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        br#"{"action":"false_positive","note":"scanner of the SOC"}"#,
    )
    .expect("post");
    assert_eq!(triage.status, 200, "{}", triage.body);
    assert_eq!(triage.json().expect("json")["alert"]["status"], "closed");
    let forbidden = shaobing_tests::browser::http_request(
        "GET",
        &url("/api/v1/users"),
        &[("Authorization", &bearer)],
        b"",
    )
    .expect("get");
    assert_eq!(forbidden.status, 403);
    let page = shaobing_tests::browser::http_request(
        "GET",
        &url("/alerts"),
        &[("Authorization", &bearer)],
        b"",
    )
    .expect("get");
    assert_ne!(page.status, 200, "tokens are for the API only");
    let forged = shaobing_tests::browser::http_request(
        "GET",
        &url("/api/v1/alerts"),
        &[("Authorization", "Bearer sbt_forged")],
        b"",
    )
    .expect("get");
    assert_eq!(forged.status, 401);
    let audit = console.audit_actions();
    assert!(audit.iter().any(|(actor, action, detail)| actor == "sec"
        && action == "alert.close.false_positive"
        && detail.contains("scanner of the SOC")));
    assert!(
        audit
            .iter()
            .any(|(actor, action, _)| actor == "sec" && action == "token.create")
    );
}

#[test]
fn the_openapi_document_lists_the_api() {
    let console = TestConsole::start(|_| {});
    let doc = shaobing_tests::browser::http_request(
        "GET",
        &format!("{}/api/v1/openapi.json", console.url),
        &[],
        b"",
    )
    .expect("get")
    .json()
    .expect("json");
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/api/v1/alerts/{id}/triage"]["post"].is_object());
    for path in [
        "/api/v1/rules/{rule_id}/enable",
        "/api/v1/rules/{rule_id}/disable",
        "/api/v1/rules/{rule_id}/test",
        "/api/v1/alerts/{id}/filter",
    ] {
        assert!(doc["paths"][path]["post"].is_object(), "{path} documented");
        assert_eq!(doc["paths"][path]["post"]["parameters"][0]["in"], "path");
    }
    assert!(doc["paths"]["/api/v1/audit"]["delete"].is_null());
}

/// Who may use each area of the console, written down here from issue #9 (三员分立)
/// independently of the route table: `None` = public, `Some(&[])` = any logged-in operator
/// (own account), otherwise exactly these roles.
fn policy(path: &str) -> Option<&'static [Role]> {
    let area = path
        .trim_start_matches("/api/v1")
        .trim_start_matches('/')
        .split(['/', '.'])
        .next()
        .unwrap_or_default();
    match area {
        "login" | "healthz" | "assets" | "openapi" => None,
        "" | "logout" | "account" | "me" | "tokens" => Some(&[]),
        "overview" | "hosts" => Some(&[Role::Sysadmin, Role::Secadmin]),
        "alerts" | "rules" | "notifications" => Some(&[Role::Secadmin]),
        "users" => Some(&[Role::Sysadmin]),
        "audit" => Some(&[Role::Auditor]),
        "reports" => Some(&[Role::Compliance]),
        other => panic!("route {path}: area {other:?} has no policy: add it here"),
    }
}

#[test]
fn the_route_table_follows_the_separation_of_three_duties() {
    let all = [
        Role::Sysadmin,
        Role::Secadmin,
        Role::Auditor,
        Role::Compliance,
    ];
    for spec in ROUTES.iter() {
        let allowed: Vec<Role> = all.into_iter().filter(|r| spec.allows(*r)).collect();
        match policy(spec.path) {
            None => assert!(
                matches!(spec.access, Access::Public),
                "{} must be public",
                spec.path
            ),
            Some([]) => assert!(
                matches!(spec.access, Access::SelfService | Access::AnyRole),
                "{} is the operator's own account",
                spec.path
            ),
            Some(roles) => assert_eq!(allowed, roles, "{:?} {}: roles", spec.verb, spec.path),
        }
    }
    // The auditor reads the audit log and nothing else of the others' work.
    let auditor: Vec<&str> = ROUTES
        .iter()
        .filter(|s| matches!(s.access, Access::Roles(_)) && s.allows(Role::Auditor))
        .map(|s| s.path)
        .collect();
    assert_eq!(auditor, ["/audit", "/api/v1/audit"]);
}

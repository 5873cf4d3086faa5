//! Console authentication, end to end over HTTP: lockout after repeated failures, the
//! idle timeout (configured to one second here), the TOTP second factor, and the
//! bootstrap admin's one-time password.

mod console_support;

use std::time::Duration;

use console_support::{PASSWORD, TestConsole};
use shaobing_collector::console::{self, Role, totp};
use shaobing_tests::browser::{WebClient, element_text};

#[test]
fn repeated_failures_lock_the_account_for_the_configured_time() {
    let console = TestConsole::start(|c| {
        c.lockout_after = 3;
        c.lockout_for = Duration::from_secs(2);
    });
    console.add_user("sec", Role::Secadmin);
    let mut client = WebClient::new(&console.url);
    for _ in 0..3 {
        let r = client.login("sec", "wrong-password", "").expect("login");
        assert_eq!(r.status, 401);
    }
    let locked = client.login("sec", PASSWORD, "").expect("login");
    assert_eq!(
        locked.status, 401,
        "the right password must not open a locked account"
    );
    assert!(
        locked.body.contains("锁定"),
        "the operator is told the account is locked"
    );
    let audit = console.audit_actions();
    let failures = audit
        .iter()
        .filter(|(actor, action, _)| actor == "sec" && action == "login.failure")
        .count();
    assert_eq!(failures, 4);
    assert!(
        audit
            .iter()
            .any(|(_, action, detail)| action == "login.failure" && detail.contains("locked"))
    );
    assert!(
        audit
            .iter()
            .any(|(actor, action, _)| actor == "system" && action == "account.locked")
    );
    assert!(
        audit
            .iter()
            .filter(|(_, action, _)| action.starts_with("login."))
            .all(|(_, _, detail)| detail.contains("\"from\":\"127.0.0.1\"")),
        "every attempt records where it came from"
    );

    std::thread::sleep(Duration::from_millis(2200));
    let after = client.login("sec", PASSWORD, "").expect("login");
    assert_eq!(
        after.status, 303,
        "lockout should have ended: {}",
        after.body
    );
    assert_eq!(after.header("location"), Some("/overview"));
}

#[test]
fn idle_sessions_time_out_and_active_ones_stay() {
    let console = TestConsole::start(|c| c.idle_timeout = Duration::from_secs(1));
    console.add_user("sys", Role::Sysadmin);
    let mut client = WebClient::new(&console.url);
    assert_eq!(
        client.login("sys", PASSWORD, "").expect("login").status,
        303
    );
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            client.get("/overview").expect("get").status,
            200,
            "activity keeps the session"
        );
    }
    std::thread::sleep(Duration::from_millis(1300));
    let expired = client.get("/overview").expect("get");
    assert_eq!(expired.status, 303);
    assert_eq!(expired.header("location"), Some("/login?expired=1"));
    assert!(
        !client.cookies.contains_key("sb_session"),
        "the dead session cookie is cleared"
    );
    assert_eq!(client.get("/api/v1/me").expect("get").status, 401);
    let login_page = client.get("/login?expired=1").expect("get");
    assert!(login_page.body.contains("会话已超时"));
}

#[test]
fn totp_enrollment_then_every_login_needs_a_fresh_code() {
    let console = TestConsole::start(|_| {});
    console.add_user("sec", Role::Secadmin);
    let mut client = WebClient::new(&console.url);
    assert_eq!(
        client.login("sec", PASSWORD, "").expect("login").status,
        303
    );
    let csrf = client.csrf().expect("csrf");
    let setup = client
        .post_form("/account/totp/setup", &[("csrf", &csrf)])
        .expect("setup");
    assert_eq!(setup.status, 200);
    let secret = element_text(&setup.body, "totp-secret").expect("secret shown");
    let now = shaobing_wire::now_unix_nano() / 1_000_000_000;
    let wrong = client
        .post_form(
            "/account/totp/enable",
            &[("csrf", &csrf), ("code", "12345x")],
        )
        .expect("enable");
    assert_eq!(wrong.status, 400);
    let code = totp::current_code(&secret, now).expect("code");
    let enabled = client
        .post_form("/account/totp/enable", &[("csrf", &csrf), ("code", &code)])
        .expect("enable");
    assert_eq!(enabled.status, 303, "{}", enabled.body);
    let csrf = client.csrf().expect("csrf");
    assert_eq!(
        client
            .post_form("/logout", &[("csrf", &csrf)])
            .expect("logout")
            .status,
        303
    );

    let mut fresh = WebClient::new(&console.url);
    assert_eq!(
        fresh.login("sec", PASSWORD, "").expect("login").status,
        401,
        "code required"
    );
    assert_eq!(
        fresh.login("sec", PASSWORD, &code).expect("login").status,
        401,
        "a used code is refused"
    );
    let next = totp::current_code(&secret, now + totp::STEP_SECS).expect("code");
    let ok = fresh.login("sec", PASSWORD, &next).expect("login");
    assert_eq!(ok.status, 303, "{}", ok.body);
    let me = fresh.get("/api/v1/me").expect("me").json().expect("json");
    assert_eq!(me["user"]["totp_enabled"], true);
    let actions: Vec<String> = console
        .audit_actions()
        .into_iter()
        .map(|(_, a, _)| a)
        .collect();
    for wanted in [
        "account.totp_setup",
        "account.totp_enable",
        "logout",
        "login.success",
        "login.failure",
    ] {
        assert!(actions.iter().any(|a| a == wanted), "{wanted} not audited");
    }
}

#[test]
fn the_first_start_creates_admin_once_with_a_one_time_password() {
    let console = TestConsole::start(|_| {});
    let password = console
        .handle()
        .bootstrap_password
        .clone()
        .expect("one-time password");
    assert!(password.len() >= 16);
    let again = console
        .runtime
        .block_on(console::bootstrap_admin(&console.handle().state))
        .expect("bootstrap");
    assert_eq!(
        again, None,
        "a second start must not create or reveal anything"
    );
    let admin = console
        .runtime
        .block_on(console.handle().state.db.user("admin"))
        .expect("db")
        .expect("admin exists");
    assert_eq!(admin.role, Role::Sysadmin);
    assert!(admin.must_change_password);
    assert!(
        console
            .audit_actions()
            .iter()
            .any(|(_, action, _)| action == "user.bootstrap")
    );
}

//! The route table: every path and method the console serves, who may call it, and
//! its handler. This is the ONE place access is decided — [`super::guard`] looks each
//! request up here, the router is built from it, the navigation shows only pages the
//! role may open, and the OpenAPI document is generated from it. A request whose
//! method and path are not in the table is refused.

use axum::routing::{MethodFilter, MethodRouter, on};

use super::roles::Role;
use super::state::SharedState;
use super::{api, assets, pages};

/// HTTP methods the console uses. There is deliberately no PUT, PATCH or DELETE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Reads.
    Get,
    /// State changes (CSRF token and same-origin required for sessions).
    Post,
}

impl Verb {
    /// The verb of an HTTP method (`None` for methods the console never serves).
    pub fn of(method: &axum::http::Method) -> Option<Verb> {
        match *method {
            axum::http::Method::GET | axum::http::Method::HEAD => Some(Verb::Get),
            axum::http::Method::POST => Some(Verb::Post),
            _ => None,
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
        }
    }

    /// Lower-case name (OpenAPI).
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
        }
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no login (login page, assets, health, the OpenAPI document).
    Public,
    /// Any logged-in operator, even one who still has to change a one-time password
    /// (own account page, password change, logout).
    SelfService,
    /// Any logged-in operator with a changed password.
    AnyRole,
    /// Only these roles.
    Roles(&'static [Role]),
}

/// One route.
pub struct RouteSpec {
    /// Method.
    pub verb: Verb,
    /// axum path pattern (`{name}` for parameters).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// One line for the OpenAPI document.
    pub summary: &'static str,
    /// Query parameters (documented in OpenAPI).
    pub query: &'static [&'static str],
    /// Handler.
    pub handler: fn(MethodFilter) -> MethodRouter<SharedState>,
}

impl RouteSpec {
    /// Whether an operator with `role` may call this route.
    pub fn allows(&self, role: Role) -> bool {
        match self.access {
            Access::Public | Access::SelfService | Access::AnyRole => true,
            Access::Roles(roles) => roles.contains(&role),
        }
    }

    /// JSON API route (bearer tokens accepted, JSON errors).
    pub fn is_api(&self) -> bool {
        self.path.starts_with("/api/")
    }
}

const SYS: &[Role] = &[Role::Sysadmin];
const SEC: &[Role] = &[Role::Secadmin];
const AUD: &[Role] = &[Role::Auditor];
const COMP: &[Role] = &[Role::Compliance];
const SYS_SEC: &[Role] = &[Role::Sysadmin, Role::Secadmin];

const ALERT_FILTERS: &[&str] = &[
    "since", "until", "level", "status", "rule", "host", "q", "page", "per_page",
];

macro_rules! route {
    ($verb:ident $path:literal, $access:expr, $handler:path, $summary:literal $(, query = $query:expr)?) => {
        RouteSpec {
            verb: Verb::$verb,
            path: $path,
            access: $access,
            summary: $summary,
            query: route!(@query $($query)?),
            handler: |filter| on(filter, $handler),
        }
    };
    (@query) => { &[] };
    (@query $query:expr) => { $query };
}

/// Every route of the console.
pub static ROUTES: &[RouteSpec] = &[
    // Public.
    route!(Get "/login", Access::Public, pages::login::form, "Login page"),
    route!(Post "/login", Access::Public, pages::login::submit, "Log in (form)"),
    route!(Get "/healthz", Access::Public, assets::health, "Liveness"),
    route!(Get "/assets/console.css", Access::Public, assets::css, "Style sheet"),
    route!(Get "/assets/console.js", Access::Public, assets::js, "Live updates script"),
    route!(Get "/api/v1/openapi.json", Access::Public, api::openapi::document, "This OpenAPI document"),
    // Own account.
    route!(Get "/", Access::SelfService, pages::login::home, "Landing page of the role"),
    route!(Post "/logout", Access::SelfService, pages::login::logout, "Log out"),
    route!(Get "/account", Access::SelfService, pages::account::page, "Own account"),
    route!(Post "/account/password", Access::SelfService, pages::account::change_password, "Change own password"),
    route!(Post "/account/totp/setup", Access::AnyRole, pages::account::totp_setup, "Start TOTP enrollment"),
    route!(Post "/account/totp/enable", Access::AnyRole, pages::account::totp_enable, "Confirm TOTP with a code"),
    route!(Post "/account/totp/disable", Access::AnyRole, pages::account::totp_disable, "Turn TOTP off"),
    route!(Post "/account/preferences", Access::SelfService, pages::account::preferences, "Time zone"),
    route!(Post "/account/tokens", Access::AnyRole, pages::account::token_create, "Create an API token"),
    route!(Post "/account/tokens/{id}/revoke", Access::AnyRole, pages::account::token_revoke, "Revoke an API token"),
    route!(Get "/api/v1/me", Access::SelfService, api::account::me, "The calling operator"),
    route!(Get "/api/v1/tokens", Access::AnyRole, api::account::tokens, "Own API tokens"),
    route!(Post "/api/v1/tokens", Access::AnyRole, api::account::token_create, "Create an API token (secret returned once)"),
    route!(Post "/api/v1/tokens/{id}/revoke", Access::AnyRole, api::account::token_revoke, "Revoke an own API token"),
    // Overview and hosts: system and security administrators.
    route!(Get "/overview", Access::Roles(SYS_SEC), pages::overview::page, "Overview"),
    route!(Get "/api/v1/overview", Access::Roles(SYS_SEC), api::overview::overview, "Overview figures", query = &["hours"]),
    route!(Get "/hosts", Access::Roles(SYS_SEC), pages::hosts::list, "Hosts"),
    route!(Get "/hosts/{agent_id}", Access::Roles(SYS_SEC), pages::hosts::detail, "Host timeline", query = &["before"]),
    route!(Get "/api/v1/hosts", Access::Roles(SYS_SEC), api::hosts::list, "Agents with online state"),
    route!(Get "/api/v1/hosts/{agent_id}/events", Access::Roles(SYS_SEC), api::hosts::events, "Host timeline", query = &["since", "until", "kind", "limit"]),
    // Alerts, rules, notifications: security administrator.
    route!(Get "/alerts", Access::Roles(SEC), pages::alerts::list, "Alerts", query = ALERT_FILTERS),
    route!(Get "/alerts/fresh", Access::Roles(SEC), pages::alerts::fresh, "New alert rows since a time (live updates)", query = &["after"]),
    route!(Post "/alerts/bulk", Access::Roles(SEC), pages::alerts::bulk, "Acknowledge or close many alerts"),
    route!(Get "/alerts/{id}", Access::Roles(SEC), pages::alert_detail::page, "Alert detail"),
    route!(Post "/alerts/{id}/triage", Access::Roles(SEC), pages::alert_detail::triage, "Acknowledge, assign, close"),
    route!(Get "/api/v1/alerts", Access::Roles(SEC), api::alerts::list, "Alerts (filters, paging)", query = ALERT_FILTERS),
    route!(Get "/api/v1/alerts/{id}", Access::Roles(SEC), api::alerts::detail, "One alert with its matching events"),
    route!(Post "/api/v1/alerts/{id}/triage", Access::Roles(SEC), api::alerts::triage, "Triage one alert"),
    route!(Post "/api/v1/alerts/bulk", Access::Roles(SEC), api::alerts::bulk, "Triage many alerts"),
    route!(Get "/alerts/{id}/filter", Access::Roles(SEC), pages::rule_filter::page, "Turn a false positive into a Sigma filter"),
    route!(Post "/alerts/{id}/filter", Access::Roles(SEC), pages::rule_filter::submit, "Preview or save the filter"),
    route!(Post "/api/v1/alerts/{id}/filter", Access::Roles(SEC), api::rules::alert_filter, "Filter from an alert: candidates, YAML, save"),
    route!(Get "/rules", Access::Roles(SEC), pages::rules::list, "Rules", query = &["q"]),
    route!(Get "/rules/{rule_id}", Access::Roles(SEC), pages::rules::detail, "Rule detail"),
    route!(Post "/rules/{rule_id}/toggle", Access::Roles(SEC), pages::rules::toggle, "Enable or disable a rule"),
    route!(Post "/rules/{rule_id}/test", Access::Roles(SEC), pages::rules::test, "Run a rule's tests"),
    route!(Get "/api/v1/rules", Access::Roles(SEC), api::rules::list, "Rules with their state (enabled, disabled by whom)"),
    route!(Post "/api/v1/rules/{rule_id}/enable", Access::Roles(SEC), api::rules::enable, "Enable a rule (takes effect at once)"),
    route!(Post "/api/v1/rules/{rule_id}/disable", Access::Roles(SEC), api::rules::disable, "Disable a rule (takes effect at once)"),
    route!(Post "/api/v1/rules/{rule_id}/test", Access::Roles(SEC), api::rules::test, "Run a rule's tests"),
    route!(Get "/notifications", Access::Roles(SEC), pages::notifications::page, "Notification channels"),
    route!(Post "/notifications", Access::Roles(SEC), pages::notifications::create, "Add a channel"),
    route!(Post "/notifications/{id}/test", Access::Roles(SEC), pages::notifications::test, "Send a test message"),
    route!(Post "/notifications/{id}/toggle", Access::Roles(SEC), pages::notifications::toggle, "Enable or disable a channel"),
    route!(Get "/api/v1/notifications", Access::Roles(SEC), api::notifications::list, "Channels and recent deliveries"),
    route!(Post "/api/v1/notifications", Access::Roles(SEC), api::notifications::create, "Add a channel"),
    route!(Post "/api/v1/notifications/{id}/test", Access::Roles(SEC), api::notifications::test, "Send a test message"),
    // Audit log: auditor only, read only.
    route!(Get "/audit", Access::Roles(AUD), pages::audit_log::page, "Audit log", query = &["actor", "action", "since", "until"]),
    route!(Get "/api/v1/audit", Access::Roles(AUD), api::audit::list, "Audit log entries", query = &["actor", "action", "since", "until", "limit"]),
    // Users: system administrator.
    route!(Get "/users", Access::Roles(SYS), pages::users::list, "Users and roles"),
    route!(Post "/users", Access::Roles(SYS), pages::users::create, "Create a user"),
    route!(Post "/users/{username}", Access::Roles(SYS), pages::users::update, "Change role, lock, reset password"),
    route!(Get "/api/v1/users", Access::Roles(SYS), api::users::list, "Users"),
    route!(Post "/api/v1/users", Access::Roles(SYS), api::users::create, "Create a user (one-time password returned)"),
    route!(Post "/api/v1/users/{username}", Access::Roles(SYS), api::users::update, "Change a user"),
    // Reports: compliance officer.
    route!(Get "/reports", Access::Roles(COMP), pages::reports::page, "等保 evidence summary", query = &["days"]),
    route!(Get "/reports/export.csv", Access::Roles(COMP), pages::reports::export, "Export the summary (CSV)", query = &["days"]),
    route!(Get "/api/v1/reports/mlps", Access::Roles(COMP), api::reports::summary, "等保 clause summary", query = &["days"]),
];

/// The route for a method and matched path pattern.
pub fn find(verb: Verb, path_pattern: &str) -> Option<&'static RouteSpec> {
    ROUTES
        .iter()
        .find(|r| r.verb == verb && r.path == path_pattern)
}

/// Whether `role` may open the page at `path` (navigation).
pub fn may_open(role: Role, path: &str) -> bool {
    find(Verb::Get, path).is_some_and(|r| r.allows(role))
}

/// The router for every route in the table.
pub fn router() -> axum::Router<SharedState> {
    ROUTES.iter().fold(axum::Router::new(), |router, spec| {
        router.route(spec.path, (spec.handler)(spec.verb.filter()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates_and_audit_is_auditor_only() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.verb == b.verb && a.path == b.path),
                    "duplicate {}",
                    a.path
                );
            }
        }
        for spec in ROUTES.iter().filter(|r| r.path.contains("audit")) {
            assert_eq!(spec.verb, Verb::Get, "audit log must be read-only");
            assert_eq!(spec.access, Access::Roles(AUD));
        }
        assert!(may_open(Role::Auditor, "/audit"));
        assert!(!may_open(Role::Sysadmin, "/audit"));
        assert!(Verb::of(&axum::http::Method::DELETE).is_none());
    }
}

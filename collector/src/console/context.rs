//! Who is asking: the request context every handler gets from the guard (language,
//! time zone, client address, and the authenticated operator when there is one).

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::i18n::{self, Lang};
use super::roles::Role;
use super::sessions::{ApiToken, Session};
use super::users::User;

/// How the operator authenticated.
#[derive(Debug, Clone)]
pub enum AuthVia {
    /// Browser session cookie.
    Session(Box<Session>),
    /// `Authorization: Bearer` API token.
    Token(ApiToken),
}

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The account.
    pub user: User,
    /// Session or token.
    pub via: AuthVia,
}

impl Operator {
    /// Account name.
    pub fn name(&self) -> &str {
        &self.user.username
    }

    /// Account role.
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// The session's CSRF token (empty for API tokens, which need none).
    pub fn csrf_token(&self) -> &str {
        match &self.via {
            AuthVia::Session(s) => &s.csrf_token,
            AuthVia::Token(_) => "",
        }
    }
}

/// Context of one request, inserted by the guard for every routed request.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Operator language.
    pub lang: Lang,
    /// Minutes east of UTC for showing times.
    pub tz_offset_minutes: i32,
    /// Client address ("from where" in the audit log).
    pub client_ip: String,
    /// The operator, for authenticated routes.
    pub operator: Option<Operator>,
    /// Token for the pre-login form (double-submit cookie), public pages only.
    pub prelogin_csrf: String,
}

impl Ctx {
    /// Formats a time in the operator's zone.
    pub fn time(&self, unix_nano: i64) -> String {
        i18n::format_time(unix_nano, self.tz_offset_minutes)
    }

    /// Text in the operator's language.
    pub fn t(&self, zh: &'static str, en: &'static str) -> &'static str {
        self.lang.pick(zh, en)
    }

    /// Actor name for the audit log (`anonymous` before login).
    pub fn actor(&self) -> String {
        self.operator
            .as_ref()
            .map(|o| o.name().to_owned())
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The authenticated operator of a request (routes the guard let through as non-public).
#[derive(Debug, Clone)]
pub struct Op(pub Operator, pub Ctx);

impl<S: Send + Sync> FromRequestParts<S> for Op {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or(StatusCode::INTERNAL_SERVER_ERROR)?;
        let operator = ctx.operator.clone().ok_or(StatusCode::UNAUTHORIZED)?;
        Ok(Op(operator, ctx))
    }
}

//! The guard in front of every route: finds the route in [`super::access::ROUTES`],
//! authenticates (session cookie with idle timeout, or a bearer token on `/api/`),
//! enforces the forced password change, the role, and — for every state change made
//! with a browser session — the same-origin check and the CSRF token. Also sets the
//! language cookie and the security headers on every response.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::access::{self, Access, RouteSpec, Verb};
use super::context::{AuthVia, Ctx, Operator};
use super::i18n::{self, DEFAULT_TZ_OFFSET_MINUTES, LANG_COOKIE, Lang};
use super::password::random_token;
use super::sessions::SessionLookup;
use super::state::SharedState;

/// Session cookie name.
pub const SESSION_COOKIE: &str = "sb_session";
/// Double-submit cookie protecting the login form.
pub const PRELOGIN_COOKIE: &str = "sb_prelogin";
/// Header carrying the CSRF token for `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Form field carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// Header naming why the guard refused a request (`wrong_role`, `csrf`, ...).
pub const REFUSAL_HEADER: &str = "x-shaobing-refused";
/// Largest request body the console reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cache-control", "no-store"),
];

/// Why the guard refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    NoRoute,
    MethodNotAllowed,
    NotLoggedIn { expired: bool },
    PasswordChangeRequired,
    WrongRole,
    CrossOrigin,
    Csrf,
    BodyTooLarge,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::NoRoute => StatusCode::NOT_FOUND,
            Refusal::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Refusal::NotLoggedIn { .. } => StatusCode::UNAUTHORIZED,
            Refusal::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::PasswordChangeRequired
            | Refusal::WrongRole
            | Refusal::CrossOrigin
            | Refusal::Csrf => StatusCode::FORBIDDEN,
        }
    }

    fn message(self, lang: Lang) -> &'static str {
        match self {
            Refusal::NoRoute => lang.pick("页面不存在", "not found"),
            Refusal::MethodNotAllowed => lang.pick("不允许的请求方法", "method not allowed"),
            Refusal::NotLoggedIn { expired: true } => {
                lang.pick("会话已超时，请重新登录", "session expired, log in again")
            }
            Refusal::NotLoggedIn { expired: false } => lang.pick("请先登录", "login required"),
            Refusal::PasswordChangeRequired => {
                lang.pick("请先修改一次性密码", "change your one-time password first")
            }
            Refusal::WrongRole => lang.pick("当前角色无权访问", "your role may not do this"),
            Refusal::CrossOrigin => lang.pick("拒绝跨站请求", "cross-origin request refused"),
            Refusal::Csrf => lang.pick("CSRF 令牌缺失或错误", "CSRF token missing or wrong"),
            Refusal::BodyTooLarge => lang.pick("请求过大", "request too large"),
        }
    }

    /// Stable name, sent in the [`REFUSAL_HEADER`] header.
    fn name(self) -> &'static str {
        match self {
            Refusal::NoRoute => "no_route",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::NotLoggedIn { .. } => "not_logged_in",
            Refusal::PasswordChangeRequired => "password_change_required",
            Refusal::WrongRole => "wrong_role",
            Refusal::CrossOrigin => "cross_origin",
            Refusal::Csrf => "csrf",
            Refusal::BodyTooLarge => "body_too_large",
        }
    }

    fn respond(self, api: bool, verb: Option<Verb>, lang: Lang) -> Response {
        let mut response = self.response(api, verb, lang);
        response
            .headers_mut()
            .insert(REFUSAL_HEADER, HeaderValue::from_static(self.name()));
        response
    }

    fn response(self, api: bool, verb: Option<Verb>, lang: Lang) -> Response {
        let page_get = !api && verb == Some(Verb::Get);
        match self {
            Refusal::NotLoggedIn { expired } if page_get => Redirect::to(if expired {
                "/login?expired=1"
            } else {
                "/login"
            })
            .into_response(),
            Refusal::PasswordChangeRequired if page_get => {
                Redirect::to("/account?must_change=1").into_response()
            }
            _ if api => (
                self.status(),
                axum::Json(serde_json::json!({ "error": self.message(lang) })),
            )
                .into_response(),
            _ => (self.status(), self.message(lang)).into_response(),
        }
    }
}

/// Middleware applied to the whole router.
pub async fn guard(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let (lang, lang_from_query) = i18n::request_lang(request.headers(), request.uri().query());
    let verb = Verb::of(request.method());
    let pattern = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let is_api = request.uri().path().starts_with("/api/");
    let spec = match (&pattern, verb) {
        (None, _) => None,
        (Some(p), Some(v)) => access::find(v, p),
        (Some(_), None) => None,
    };
    let Some(spec) = spec else {
        let refusal = if pattern.is_some() {
            Refusal::MethodNotAllowed
        } else {
            Refusal::NoRoute
        };
        return finish(
            refusal.respond(is_api, verb, lang),
            lang,
            lang_from_query,
            &state,
        );
    };
    let mut response = match admit(&state, spec, request, lang).await {
        Ok((request, set_cookies)) => {
            let mut response = next.run(request).await;
            for cookie in set_cookies {
                append_cookie(response.headers_mut(), &cookie);
            }
            response
        }
        Err((refusal, clear_session)) => {
            let mut response = refusal.respond(spec.is_api(), Some(spec.verb), lang);
            if clear_session {
                append_cookie(
                    response.headers_mut(),
                    &cookie_header(SESSION_COOKIE, "", Some(0), state.config.secure_cookies),
                );
            }
            response
        }
    };
    response = finish(response, lang, lang_from_query, &state);
    response
}

type Admitted = (Request, Vec<String>);

/// Authenticates and authorises; returns the request with its [`Ctx`] attached and the
/// cookies to set, or the refusal (and whether to clear the session cookie).
async fn admit(
    state: &SharedState,
    spec: &'static RouteSpec,
    request: Request,
    lang: Lang,
) -> Result<Admitted, (Refusal, bool)> {
    let headers = request.headers().clone();
    let client_ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let now = shaobing_wire::now_unix_nano();
    let mut set_cookies = Vec::new();

    // Public routes never see a session: the login form always uses the pre-login token.
    let (operator, expired) = if spec.access == Access::Public {
        (None, false)
    } else {
        authenticate(state, spec, &headers, now).await
    };
    let via_token = matches!(
        operator,
        Some(Operator {
            via: AuthVia::Token(_),
            ..
        })
    );
    if spec.access != Access::Public {
        let Some(op) = &operator else {
            return Err((Refusal::NotLoggedIn { expired }, expired));
        };
        if op.user.must_change_password && spec.access != Access::SelfService {
            return Err((Refusal::PasswordChangeRequired, false));
        }
        if !spec.allows(op.role()) {
            return Err((Refusal::WrongRole, false));
        }
    }

    let mut prelogin_csrf = String::new();
    if spec.access == Access::Public {
        prelogin_csrf = i18n::cookie(&headers, PRELOGIN_COOKIE).unwrap_or_default();
        if prelogin_csrf.len() != 64 && spec.verb == Verb::Get {
            prelogin_csrf = random_token(32);
            set_cookies.push(cookie_header(
                PRELOGIN_COOKIE,
                &prelogin_csrf,
                None,
                state.config.secure_cookies,
            ));
        }
    }

    let mut request = request;
    if spec.verb == Verb::Post && !via_token {
        if !same_origin(&headers, &state.config.allowed_origins) {
            return Err((Refusal::CrossOrigin, false));
        }
        let expected = match &operator {
            Some(op) => op.csrf_token().to_owned(),
            None => prelogin_csrf.clone(),
        };
        let (body_csrf, rebuilt) = read_form_csrf(request).await.map_err(|r| (r, false))?;
        request = rebuilt;
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or(body_csrf)
            .unwrap_or_default();
        if expected.is_empty() || !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err((Refusal::Csrf, false));
        }
    }

    let tz_offset_minutes = operator
        .as_ref()
        .and_then(|o| o.user.tz_offset_minutes)
        .or_else(|| i18n::browser_tz_offset(&headers))
        .unwrap_or(DEFAULT_TZ_OFFSET_MINUTES);
    request.extensions_mut().insert(Ctx {
        lang,
        tz_offset_minutes,
        client_ip,
        operator,
        prelogin_csrf,
    });
    Ok((request, set_cookies))
}

/// The operator behind the request, and whether a session cookie had timed out.
async fn authenticate(
    state: &SharedState,
    spec: &RouteSpec,
    headers: &HeaderMap,
    now: i64,
) -> (Option<Operator>, bool) {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(secret) = bearer {
        if !spec.is_api() {
            return (None, false);
        }
        let token = match state.db.resolve_api_token(secret, now).await {
            Ok(token) => token,
            Err(error) => {
                tracing::error!(%error, "API token lookup failed");
                None
            }
        };
        let Some(token) = token else {
            return (None, false);
        };
        return match state.db.user(&token.username).await {
            Ok(Some(user)) if !user.disabled && !user.is_locked(now) => (
                Some(Operator {
                    user,
                    via: AuthVia::Token(token),
                }),
                false,
            ),
            _ => (None, false),
        };
    }
    let Some(cookie) = i18n::cookie(headers, SESSION_COOKIE).filter(|c| !c.is_empty()) else {
        return (None, false);
    };
    let lookup = state
        .db
        .resume_session(&cookie, state.config.idle_timeout, now)
        .await;
    match lookup {
        Ok(SessionLookup::Active(session)) => match state.db.user(&session.username).await {
            Ok(Some(user)) if !user.disabled => (
                Some(Operator {
                    user,
                    via: AuthVia::Session(Box::new(session)),
                }),
                false,
            ),
            _ => (None, false),
        },
        Ok(SessionLookup::Expired) => (None, true),
        Ok(SessionLookup::Missing) => (None, false),
        Err(error) => {
            tracing::error!(%error, "session lookup failed");
            (None, false)
        }
    }
}

/// Buffers the body; for form posts returns the `csrf` field.
async fn read_form_csrf(request: Request) -> Result<(Option<String>, Request), Refusal> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| Refusal::BodyTooLarge)?;
    let csrf = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .ok()
            .and_then(|pairs| {
                pairs
                    .into_iter()
                    .find(|(k, _)| k == CSRF_FIELD)
                    .map(|(_, v)| v)
            })
    } else {
        None
    };
    Ok((csrf, Request::from_parts(parts, Body::from(bytes))))
}

/// A state change must come from a page of this console: `Origin` (or, without it,
/// `Referer`) must name the host the request was sent to, or an allowed origin.
pub fn same_origin(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let source = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok());
    let Some(source) = source else {
        return false;
    };
    let Some((scheme, rest)) = source.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let origin = format!("{scheme}://{authority}");
    (matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host))
        || allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&origin))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when configured.
pub fn cookie_header(name: &str, value: &str, max_age_secs: Option<i64>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age_secs {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// Adds a `Set-Cookie` header.
pub fn append_cookie(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

fn finish(
    mut response: Response,
    lang: Lang,
    remember_lang: bool,
    state: &SharedState,
) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        if !headers.contains_key(name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if state.config.secure_cookies {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if remember_lang {
        append_cookie(
            headers,
            &cookie_header(
                LANG_COOKIE,
                lang.code(),
                Some(365 * 86_400),
                state.config.secure_cookies,
            ),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn same_origin_needs_a_matching_origin_or_referer() {
        let allowed = vec!["https://soc.example".to_owned()];
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://127.0.0.1:8080")
            ]),
            &[]
        ));
        assert!(same_origin(
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("referer", "http://127.0.0.1:8080/alerts")
            ]),
            &[]
        ));
        assert!(!same_origin(
            &headers(&[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example")
            ]),
            &[]
        ));
        assert!(!same_origin(
            &headers(&[("host", "127.0.0.1:8080"), ("origin", "null")]),
            &[]
        ));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")]), &[]));
        assert!(same_origin(
            &headers(&[("host", "10.0.0.1"), ("origin", "https://soc.example")]),
            &allowed
        ));
    }

    #[test]
    fn cookies_are_strict_and_secure_when_asked() {
        let c = cookie_header("sb_session", "abc", None, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("Secure"));
        assert!(!cookie_header("a", "b", Some(0), false).contains("Secure"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
    }
}

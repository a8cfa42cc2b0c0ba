//! Signing in to the console: the ledger's own credentials (a password, with
//! its TOTP code when it has one, an app password, or an API key) are checked
//! exactly as an API request's are, by [`Authenticator::authenticate`] (so a
//! failure counts toward the same limiter), and exchanged for a random
//! session token in a cookie: `HttpOnly`, `SameSite=Strict`, `Path=/console`,
//! and `Secure` when the console is served over https.
//!
//! A session lasts [`IDLE`] without a request and [`LIFETIME`] at most. The
//! server keeps only the token's blake3 digest. Every request rechecks the
//! login behind it ([`crate::auth::Session::current`]): a removed or changed
//! credential, a disabled or moved account, or a request from another address
//! than the sign-in's ends the session, and the permissions are recomputed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, FromRequest, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::html;
use serde::Deserialize;

use super::layout::{self, Section};
use crate::auth::{AuthError, Principal};
use crate::http::{AppState, PrincipalCell, client_ip, now};

/// A session ends after this long without a request.
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, used or not.
pub(crate) const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);
/// Sessions kept at most. When they are all taken a sign-in is refused: one
/// principal's sign-ins never end another's sessions.
const MAX_SESSIONS: usize = 10_000;
/// Sessions one principal may hold; its next sign-in ends its least recently
/// used one.
pub(crate) const MAX_PER_PRINCIPAL: usize = 16;
/// The largest sign-in form read (bytes).
const MAX_FORM: usize = 16 * 1024;
/// The cookie's name.
pub(crate) const COOKIE: &str = "ledger_console";

/// A session: the login it stands for and its times.
struct Entry {
    login: Arc<crate::auth::Session>,
    /// Whose session it is ([`Principal::key`]), for the per-principal cap.
    owner: String,
    ip: IpAddr,
    started: Instant,
    seen: Instant,
}

/// The open sessions, by the blake3 digest of their token.
#[derive(Default)]
pub(crate) struct Sessions {
    open: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session for `login` of `owner`; returns its token (43
    /// base64url characters), or `None` when every place is taken.
    fn open(&self, login: crate::auth::Session, owner: String, ip: IpAddr) -> Option<String> {
        let mut token = [0u8; 32];
        getrandom::fill(&mut token).expect("the operating system's random source is readable");
        let clock = Instant::now();
        let mut open = self.lock();
        open.retain(|_, e| live(e, clock));
        let own: Vec<([u8; 32], Instant)> =
            open.iter().filter(|(_, e)| e.owner == owner).map(|(k, e)| (*k, e.seen)).collect();
        if own.len() >= MAX_PER_PRINCIPAL
            && let Some((oldest, _)) = own.iter().min_by_key(|(_, seen)| *seen)
        {
            open.remove(oldest);
        }
        if open.len() >= MAX_SESSIONS {
            return None;
        }
        let entry = Entry { login: Arc::new(login), owner, ip, started: clock, seen: clock };
        open.insert(*blake3::hash(&token).as_bytes(), entry);
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token))
    }

    /// Whether the session `key` is still open (without counting as use): a
    /// live stream asks before every batch, so sign-out and expiry end it.
    pub(crate) fn alive(&self, key: &[u8; 32]) -> bool {
        let clock = Instant::now();
        self.lock().get(key).is_some_and(|e| live(e, clock))
    }

    /// The login of a token, if its session is open and the request comes from
    /// the address it was opened from; marks it used.
    fn find(&self, token: &str, ip: IpAddr) -> Option<(Arc<crate::auth::Session>, [u8; 32])> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).ok()?;
        let key = *blake3::hash(&raw).as_bytes();
        let clock = Instant::now();
        let mut open = self.lock();
        let entry = open.get_mut(&key)?;
        if !live(entry, clock) || entry.ip != ip {
            open.remove(&key);
            return None;
        }
        entry.seen = clock;
        Some((Arc::clone(&entry.login), key))
    }

    fn close(&self, key: &[u8; 32]) {
        self.lock().remove(key);
    }

    /// Sessions open now (for tests and `/metrics`).
    pub(crate) fn len(&self) -> usize {
        let clock = Instant::now();
        self.lock().values().filter(|e| live(e, clock)).count()
    }
}

fn live(e: &Entry, clock: Instant) -> bool {
    clock.duration_since(e.seen) < IDLE && clock.duration_since(e.started) < LIFETIME
}

/// Whether the console is reached over https (the cookie is then `Secure`).
fn https(app: &AppState) -> bool {
    app.tls.is_some() || app.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

/// The signed-in principal of a console request, as the ledger has it now.
/// A request without a live session is sent to the sign-in page (an
/// `EventSource` or other non-page request gets 401).
pub(crate) struct Viewer {
    pub(crate) principal: Arc<Principal>,
    pub(crate) login: Arc<crate::auth::Session>,
    /// The session's key in [`Sessions`].
    pub(crate) key: [u8; 32],
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        let refuse = |parts: &Parts| {
            if parts.uri.path() == "/console/live" {
                return StatusCode::UNAUTHORIZED.into_response();
            }
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/console/");
            let target = format!("/console/sign-in?next={}", urlencode(next));
            Redirect::to(&target).into_response()
        };
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let (Some(token), Some(peer)) = (token_of(&parts.headers), peer) else { return Err(refuse(parts)) };
        let ip = client_ip(app, peer, &parts.headers);
        let Some((login, key)) = app.console.sessions.find(&token, ip) else { return Err(refuse(parts)) };
        let (read, check) = (app.ledger.clone(), Arc::clone(&login));
        let current = tokio::task::spawn_blocking(move || check.current(&read.read().view, now())).await;
        let Ok(Some(principal)) = current else {
            app.console.sessions.close(&key);
            return Err(refuse(parts));
        };
        PrincipalCell::record(&parts.extensions, &principal.name);
        Ok(Viewer { principal: Arc::new(principal), login, key })
    }
}

/// What a link target keeps as is: RFC 3986's unreserved characters and `/`.
const KEPT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// Percent-encodes a path segment or query value (RFC 3986 §2.1).
pub(crate) fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, KEPT).to_string()
}

/// Where to go after signing in: a console path, else the overview. Never
/// another site or another part of this one: `//host`, `/\host`, dot
/// segments, and anything but visible ASCII are refused.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/console/")
                && n.len() <= 2048
                && !n.contains("//")
                && !n.contains('\\')
                && !n.split(['/', '?', '#']).any(|seg| seg == "." || seg == "..")
                && !n.to_ascii_lowercase().contains("%2e")
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/console/",
    }
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// `GET /console/sign-in`: the form.
pub(super) async fn form(Query(q): Query<NextQuery>) -> Response {
    sign_in_page(StatusCode::OK, safe_next(q.next.as_deref()), None)
}

fn sign_in_page(status: StatusCode, next: &str, problem: Option<&str>) -> Response {
    let body = html! {
        h1 { "Sign in" }
        p { "Sign in with your ledger account: a password (and its one-time code, if it has one), an app password, or an API key (leave the user name empty)." }
        @if let Some(problem) = problem {
            p.error role="alert" id="sign-in-problem" { (problem) }
        }
        form.sign-in method="post" action="/console/sign-in" {
            input type="hidden" name="next" value=(next);
            label for="username" { "User name or email address" }
            input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false";
            label for="secret" { "Password, app password or API key" }
            input id="secret" name="secret" type="password" autocomplete="current-password" required;
            label for="code" { "One-time code " span.hint { "(only if your password has one)" } }
            input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6,8}";
            button type="submit" { "Sign in" }
        }
    };
    (status, layout::page("Sign in", None, Section::None, body)).into_response()
}

#[derive(Deserialize)]
pub(super) struct SignIn {
    #[serde(default)]
    username: String,
    secret: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// Whether a form post comes from this console: `Origin` (or, without it,
/// `Sec-Fetch-Site`) must name this server. Sign-in and sign-out are the
/// console's only posts; this keeps other sites from signing a browser in or out.
fn same_site_post(headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        return crate::http::same_origin(origin.to_str().unwrap_or_default(), host);
    }
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).is_none_or(|s| s == "same-origin" || s == "none")
}

/// `POST /console/sign-in`: checks the credentials as the API does, then sets
/// the session cookie and goes to `next`.
pub(super) async fn sign_in(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    if !same_site_post(&headers) {
        let text = "This form may only be sent from the console itself.";
        return sign_in_page(StatusCode::FORBIDDEN, "/console/", Some(text));
    }
    // The body before anything else is done with it: bounded in size and time.
    let read = tokio::time::timeout(crate::http::BODY_TIMEOUT, crate::http::read_limited(body, MAX_FORM)).await;
    let Ok(Ok(bytes)) = read else {
        return sign_in_page(StatusCode::PAYLOAD_TOO_LARGE, "/console/", Some("The form was too large or too slow."));
    };
    let mut request = axum::http::Request::new(axum::body::Body::from(bytes));
    *request.method_mut() = axum::http::Method::POST;
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        request.headers_mut().insert(header::CONTENT_TYPE, kind.clone());
    }
    let Ok(Form(form)) = Form::<SignIn>::from_request(request, &()).await else {
        return sign_in_page(StatusCode::BAD_REQUEST, "/console/", Some("The form could not be read."));
    };
    let next = safe_next(form.next.as_deref()).to_owned();
    let ip = client_ip(&app, peer, &headers);
    let username = form.username.trim();
    let authorization = if username.is_empty() {
        format!("Bearer {}", form.secret)
    } else {
        let secret = match form.code.trim() {
            "" => form.secret.clone(),
            code => format!("{}${code}", form.secret),
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{secret}"));
        format!("Basic {encoded}")
    };
    let (auth, ledger) = (Arc::clone(&app.auth), app.ledger.clone());
    let outcome =
        tokio::task::spawn_blocking(move || auth.authenticate(&ledger, Some(&authorization), ip, now())).await;
    match outcome {
        Ok(Ok(principal)) => {
            tracing::info!(principal = %principal.name.escape_debug(), %ip, "console sign-in");
            let owner = principal.key();
            let login = crate::auth::Session::new(Arc::clone(&app.auth), Arc::new(principal), ip);
            let Some(token) = app.console.sessions.open(login, owner, ip) else {
                tracing::warn!("console sign-in refused: every session place is taken");
                let text = "Too many people are signed in to the console. Try again later.";
                return sign_in_page(StatusCode::SERVICE_UNAVAILABLE, &next, Some(text));
            };
            redirect_setting(&app, &next, Some(token))
        }
        Ok(Err(AuthError::RateLimited(retry))) => {
            app.health.login_blocked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%ip, "console sign-in attempts from this address are rate-limited");
            let text = format!("Too many failed sign-ins from your address. Try again in {retry} seconds.");
            let mut response = sign_in_page(StatusCode::TOO_MANY_REQUESTS, &next, Some(&text));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
            response
        }
        Ok(Err(AuthError::Busy)) => sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            &next,
            Some("The server is busy checking sign-ins. Try again."),
        ),
        Ok(Err(AuthError::Unauthorized)) | Err(_) => {
            tracing::info!(%ip, "console sign-in failed");
            sign_in_page(StatusCode::UNAUTHORIZED, &next, Some("Those credentials were not accepted."))
        }
    }
}

/// `POST /console/sign-out`: ends the session and clears the cookie.
pub(super) async fn sign_out(State(app): State<AppState>, headers: HeaderMap) -> Response {
    if !same_site_post(&headers) {
        return (StatusCode::FORBIDDEN, "sign-out is only accepted from the console").into_response();
    }
    if let Some(raw) = token_of(&headers).and_then(|t| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t).ok())
    {
        app.console.sessions.close(blake3::hash(&raw).as_bytes());
    }
    redirect_setting(&app, "/console/sign-in", None)
}

/// A redirect to `to` that sets the session cookie to `token`, or clears it
/// (`None`: empty, `Max-Age=0`). The attributes are the module doc's.
fn redirect_setting(app: &AppState, to: &str, token: Option<String>) -> Response {
    let clear = token.is_none();
    let mut cookie = cookie::Cookie::build((COOKIE, token.unwrap_or_default()))
        .path("/console")
        .http_only(true)
        .secure(https(app))
        .same_site(cookie::SameSite::Strict);
    if clear {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    let mut response = Redirect::to(to).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie.build().encoded().to_string()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/accounts?text=a")), "/console/accounts?text=a");
        assert_eq!(safe_next(Some("https://evil.example/")), "/console/");
        assert_eq!(safe_next(Some("/console//evil.example")), "/console/");
        assert_eq!(safe_next(Some("/console/\\evil")), "/console/");
        assert_eq!(safe_next(Some("/api")), "/console/");
        assert_eq!(safe_next(Some("/console/../../api")), "/console/");
        assert_eq!(safe_next(Some("/console/%2e%2e/api")), "/console/");
        assert_eq!(safe_next(Some("/console/\r\nX: y")), "/console/");
        assert_eq!(safe_next(Some("/console/a b")), "/console/");
        assert_eq!(safe_next(None), "/console/");
    }

    /// An authenticator with a throw-away sealing key (kept in the returned directory).
    fn authenticator() -> (Arc<crate::auth::Authenticator>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let sealing = crate::secrets::SealingKey::load_or_create(dir.path()).expect("sealing key");
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI"
            .parse()
            .expect("hash");
        let config = crate::auth::AuthConfig::default();
        (Arc::new(crate::auth::Authenticator::new(&config, hash, Arc::new(sealing))), dir)
    }

    #[test]
    fn a_session_is_found_by_its_token_from_its_address_only() {
        let sessions = Sessions::default();
        let (auth, _dir) = authenticator();
        let ip: IpAddr = "192.0.2.1".parse().expect("address");
        let login = crate::auth::Session::new(auth, Arc::new(Principal::fallback("admin")), ip);
        let token = sessions.open(login, "admin".into(), ip).expect("a place");
        assert!(sessions.find("not-a-token", ip).is_none());
        assert!(sessions.find(&token, ip).is_some());
        // Another address: refused, and the session is gone.
        assert!(sessions.find(&token, "192.0.2.2".parse().expect("address")).is_none());
        assert!(sessions.find(&token, ip).is_none());
        assert_eq!(sessions.len(), 0);
    }

    #[test]
    fn a_principal_signing_in_again_and_again_ends_only_its_own_sessions() {
        let sessions = Sessions::default();
        let (auth, _dir) = authenticator();
        let ip: IpAddr = "192.0.2.1".parse().expect("address");
        let login = |name: &str| crate::auth::Session::new(Arc::clone(&auth), Arc::new(Principal::fallback(name)), ip);
        let admin = sessions.open(login("admin"), "admin".into(), ip).expect("a place");
        let first = sessions.open(login("user"), "user".into(), ip).expect("a place");
        for _ in 0..100 {
            sessions.open(login("user"), "user".into(), ip).expect("a place");
        }
        assert_eq!(sessions.len(), 1 + MAX_PER_PRINCIPAL);
        assert!(sessions.find(&admin, ip).is_some(), "another principal's session stays");
        assert!(sessions.find(&first, ip).is_none(), "the user's oldest session made way");
    }
}

//! The HTTP surface: one `AppState`, thin handlers. JMAP requests go to
//! [`crate::jmap::api`]; the feed, push and audit routes frame what their
//! modules produce.

mod audit;
mod backup;
mod console;
mod feed;
pub mod health;
mod log;
mod metrics;
mod push;
mod schema;
mod serve;
mod streams;

pub use serve::{ConnectionLimits, effective_max_connections, raise_open_file_limit};

use std::net::SocketAddr;
use std::sync::Arc;

use std::path::Path;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ledger_events::values::UtcDateTime;
use serde_json::{Value, json};

use crate::auth::{AuthConfig, AuthError, Authenticator, Principal, admin};
use crate::secrets::{Plaintext, SealingKey};
use tokio::net::TcpListener;

use crate::jmap::{self, RequestError, Services, ServicesConfig};
use crate::store::Ledger;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    /// What JMAP methods use.
    pub services: Services,
    pub auth: Arc<Authenticator>,
    /// Turns true when the server starts shutting down: long-lived streams end
    /// so that the graceful shutdown can finish.
    pub stopping: tokio::sync::watch::Sender<bool>,
    /// Bounds on connections and streams (set before [`serve`]).
    pub connections: ConnectionLimits,
    /// Connections open now (for operators and tests to watch; a borrow of
    /// its value must not be held, or the accept loop waits for it).
    pub open_connections: tokio::sync::watch::Sender<usize>,
    /// Event streams open per principal.
    pub(crate) streams: Arc<streams::OpenStreams>,
    /// TLS on every connection, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The URL clients reach the service at (`https://ledger.example.org`),
    /// when it is not the scheme and Host of the request (behind a proxy).
    pub public_url: Option<String>,
    /// Readiness and the counters `/metrics` shows.
    pub health: Arc<health::Health>,
    /// The audit console's sessions and caches.
    pub(crate) console: Arc<console::Console>,
    /// The Merkle tree, the log key and its signed checkpoints.
    pub notary: Arc<crate::audit::notary::Notary>,
    /// How often a checkpoint is signed while the log grows (zero: only on demand).
    pub checkpoint_interval: std::time::Duration,
}

impl AppState {
    /// Sets up authentication and the JMAP services for the ledger in
    /// `data_dir`. Returns the fallback administrator's password when it was
    /// just generated, to be shown once.
    pub fn open(
        ledger: Ledger,
        data_dir: &Path,
        auth: &AuthConfig,
        services: ServicesConfig,
    ) -> std::io::Result<(Self, Option<Plaintext>)> {
        Self::open_with(ledger, data_dir, auth, services, &crate::audit::notary::NotaryConfig::default())
    }

    /// [`Self::open`] with the log key of `notary` (see [`crate::audit::notary`]).
    pub fn open_with(
        ledger: Ledger,
        data_dir: &Path,
        auth: &AuthConfig,
        services: ServicesConfig,
        notary: &crate::audit::notary::NotaryConfig,
    ) -> std::io::Result<(Self, Option<Plaintext>)> {
        let notary = crate::audit::notary::Notary::open(&ledger, data_dir, notary).map_err(std::io::Error::other)?;
        // The admin password is generated last: nothing after it can fail
        // before the caller shows it.
        let sealing = Arc::new(SealingKey::load_or_create(data_dir)?);
        let admin = admin::load_or_create(data_dir, auth.admin_password.as_deref())?;
        let authenticator = Arc::new(Authenticator::new(auth, admin.hash, Arc::clone(&sealing)));
        let state = AppState {
            services: Services::new(ledger.clone(), sealing, services),
            ledger,
            auth: authenticator,
            stopping: tokio::sync::watch::Sender::new(false),
            connections: ConnectionLimits::default(),
            open_connections: tokio::sync::watch::Sender::new(0),
            streams: Arc::default(),
            tls: None,
            public_url: None,
            health: Arc::default(),
            console: Arc::default(),
            notary: Arc::new(notary),
            checkpoint_interval: std::time::Duration::from_secs(60),
        };
        Ok((state, admin.generated))
    }
}

pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route("/.well-known/jmap", get(session))
        // stalwart-cli asks the session at this fixed path, then posts to the
        // path of `apiUrl` (Stalwart's is `/jmap/`, its client trims the slash).
        .route("/jmap/session", get(session))
        .route("/api", post(api))
        .route("/jmap", post(api))
        .route("/jmap/", post(api))
        .route("/api/audit/export", get(audit::export))
        .route("/api/audit/checkpoint", get(audit::checkpoint))
        .route("/api/audit/key", get(audit::key))
        .route("/api/audit/proof/inclusion", get(audit::inclusion))
        .route("/api/audit/proof/consistency", get(audit::consistency))
        .route("/api/feed", get(feed::feed))
        .route("/api/backup", get(backup::backup))
        .route("/api/schema", get(schema::latest))
        .route("/api/schema/{hash}", get(schema::by_hash))
        .route("/eventsource/", get(push::event_source))
        .route("/api/log", get(log::log))
        // Inside the login check: only a signed-in client may make a request wait.
        .route_layer(middleware::from_fn_with_state(state.clone(), log::positions))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .route_layer(middleware::from_fn(refuse_cross_site));
    Router::new()
        .route("/healthz", get(health::ready))
        .route("/healthz/live", get(health::live))
        .route("/healthz/ready", get(health::ready))
        .route("/metrics", get(metrics::metrics))
        .merge(authenticated)
        // The console signs in with a cookie, not Authorization; its pages check it.
        .merge(console::routes(state.clone()))
        .layer(middleware::from_fn_with_state(state.clone(), access_log))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// A problem details body (RFC 9457) with `status` and `detail`, for the
/// non-JMAP routes.
pub(crate) fn problem(status: StatusCode, detail: String) -> Response {
    (status, Json(json!({"type": "about:blank", "status": status.as_u16(), "detail": detail}))).into_response()
}

/// The `Last-Event-ID` header of a reconnecting EventSource, as a log position
/// (absent or not a number: `None`).
pub(crate) struct LastEventId(pub Option<u64>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for LastEventId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get("last-event-id").and_then(|v| v.to_str().ok());
        Ok(LastEventId(value.and_then(|v| v.trim().parse().ok())))
    }
}

/// The client address a request was authenticated from (see
/// [`crate::auth::Authenticator::client_ip`]); streams recheck it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub(crate) std::net::IpAddr);

/// When a request's login was checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AuthenticatedAt(pub(crate) std::time::Instant);

/// A body that takes longer than this to arrive after the login was checked
/// has its login checked again. (Writes re-read their writer's credential in
/// the commit whatever the delay; this bounds how long a read may run on a
/// login since revoked.)
const RECHECK_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// The wall clock as the ledger records time.
pub(crate) fn now() -> UtcDateTime {
    UtcDateTime::from_millis(jiff::Timestamp::now().as_millisecond())
}

/// Lets a request in only with valid credentials; puts its `Principal` in the
/// request's extensions.
async fn authenticate(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let ip = client_ip(&app, peer, headers);
    let now = now();
    let (auth, ledger) = (Arc::clone(&app.auth), app.ledger.clone());
    let outcome =
        tokio::task::spawn_blocking(move || auth.authenticate(&ledger, authorization.as_deref(), ip, now)).await;
    match outcome {
        Ok(Ok(principal)) => {
            PrincipalCell::record(request.extensions(), &principal.name);
            request.extensions_mut().insert(Arc::new(principal));
            request.extensions_mut().insert(ClientIp(ip));
            request.extensions_mut().insert(AuthenticatedAt(std::time::Instant::now()));
            next.run(request).await
        }
        Ok(Err(AuthError::RateLimited(retry))) => {
            app.health.login_blocked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(%ip, "login attempts from this address are rate-limited");
            let mut response =
                problem(StatusCode::TOO_MANY_REQUESTS, "too many failed logins; try again later".to_owned());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
            response
        }
        Ok(Err(AuthError::Busy)) => {
            let mut response =
                problem(StatusCode::SERVICE_UNAVAILABLE, "too many logins are being checked; try again".to_owned());
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(1));
            response
        }
        Ok(Err(AuthError::Unauthorized)) | Err(_) => {
            tracing::info!(%ip, "authentication failed");
            let mut response = problem(StatusCode::UNAUTHORIZED, "valid credentials are required".to_owned());
            let headers = response.headers_mut();
            headers.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"account-ledger\", charset=\"UTF-8\""),
            );
            headers.append(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"account-ledger\""));
            response
        }
    }
}

/// Refuses cross-site requests before credentials are looked at. A browser
/// sends stored Basic credentials with a cross-site form post or a no-cors
/// `fetch`, but only as a "simple" request: it cannot send
/// `Content-Type: application/json` without a CORS preflight, which this server
/// never grants. So every `POST` must declare `application/json` (RFC 8620
/// §3.3: the request is a JSON object), else 415; and any request whose
/// `Origin` is not this server's own (the `Host` it was sent to) is 403.
async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        if !same_origin(origin.to_str().unwrap_or_default(), host) {
            return problem(StatusCode::FORBIDDEN, "cross-origin requests are not accepted".to_owned());
        }
    }
    if request.method() == axum::http::Method::POST {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a JMAP request is sent with Content-Type: application/json".to_owned(),
            );
        }
    }
    next.run(request).await
}

/// Whether an `Origin` header (`scheme://host[:port]`) names the host the
/// request was sent to.
fn same_origin(origin: &str, host: &str) -> bool {
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|a| !host.is_empty() && a.eq_ignore_ascii_case(host))
}

/// One access log line per request (target `access`): method, path,
/// status, principal, duration. The query string is left out (it may name
/// an account).
async fn access_log(State(_app): State<AppState>, request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let principal = PrincipalCell::default();
    let mut request = request;
    request.extensions_mut().insert(principal.clone());
    let response = next.run(request).await;
    let who = principal.0.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| "-".to_owned());
    tracing::info!(
        target: "access",
        %method,
        // Escaped: a path or name cannot break or colour the line.
        path = %path.escape_debug(),
        status = response.status().as_u16(),
        principal = %who.escape_debug(),
        millis = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        "request"
    );
    response
}

/// Where authentication leaves the principal's name for the access log.
#[derive(Clone, Default)]
struct PrincipalCell(Arc<std::sync::Mutex<Option<String>>>);

impl PrincipalCell {
    /// Leaves `name` for the access line of the request whose extensions these are.
    fn record(extensions: &axum::http::Extensions, name: &str) {
        if let Some(cell) = extensions.get::<PrincipalCell>() {
            *cell.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(name.to_owned());
        }
    }
}

/// The client's address a request is authenticated from: the peer, or the
/// address trusted proxies name in `X-Forwarded-For` (see
/// [`crate::auth::Authenticator::client_ip`]).
fn client_ip(app: &AppState, peer: SocketAddr, headers: &HeaderMap) -> std::net::IpAddr {
    // Every X-Forwarded-For line, in order (RFC 9110 §5.3: one list):
    // a proxy may add its own line instead of appending to the client's.
    let lines: Vec<&str> = headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
    let forwarded_for = (!lines.is_empty()).then(|| lines.join(","));
    app.auth.client_ip(peer, forwarded_for.as_deref())
}

/// The JMAP Session object, with URLs on the host the client used.
async fn session(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    headers: HeaderMap,
) -> Json<Value> {
    let base = match &state.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let scheme = if state.tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{host}")
        }
    };
    Json(jmap::session::session(&state.services.limits(), &base, &principal.name))
}

/// Reads at most `maxSizeRequest` bytes of the body, then hands it to JMAP.
async fn api(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(AuthenticatedAt(checked)): Extension<AuthenticatedAt>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let max = state.services.limits().max_size_request;
    // A header that is not visible ASCII is passed on as it reads, so that
    // JMAP refuses it (`invalidArguments`) rather than the server ignoring it.
    let request_id = headers.get("x-request-id").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let request_id = request_id.as_deref();
    let body = match tokio::time::timeout(BODY_TIMEOUT, read_limited(body, max)).await {
        Ok(body) => body,
        Err(_) => {
            return problem(
                StatusCode::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {BODY_TIMEOUT:?}"),
            );
        }
    };
    // A body that was long on its way: the login is checked again, so a
    // credential removed or expired meanwhile acts no more.
    let principal = if checked.elapsed() < RECHECK_AFTER {
        principal
    } else {
        let session = crate::auth::Session::new(Arc::clone(&state.auth), principal, ip);
        let read = state.ledger.clone();
        let current = tokio::task::spawn_blocking(move || session.current(&read.read().view, now())).await;
        let Ok(Some(principal)) = current else {
            return problem(StatusCode::UNAUTHORIZED, "valid credentials are required".to_owned());
        };
        Arc::new(principal)
    };
    let answer = match body {
        Ok(bytes) => jmap::api(&state.services, principal, request_id, &bytes).await,
        Err(()) => Err(RequestError::Limit {
            limit: "maxSizeRequest",
            detail: format!("the request is larger than {max} bytes"),
        }),
    };
    match answer {
        Ok(response) => Json(response).into_response(),
        Err(e) => {
            let mut response = (StatusCode::BAD_REQUEST, Json(e.to_problem())).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
            response
        }
    }
}

/// How long a request body may take to arrive once its headers are in.
pub(crate) const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Collects a body of at most `max` bytes. A larger one is refused, but read on
/// (discarded, up to a bound) before the answer, because closing a connection
/// with unread bytes resets it and the client would never see why.
pub(crate) async fn read_limited(body: axum::body::Body, max: usize) -> Result<axum::body::Bytes, ()> {
    use tokio_stream::StreamExt;
    const DRAIN_AT_MOST: usize = 64 * 1024 * 1024;
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        // A broken body means the client is gone; the answer goes nowhere.
        let Ok(chunk) = chunk else { return Err(()) };
        seen += chunk.len();
        if seen <= max {
            collected.extend_from_slice(&chunk);
        } else if seen > max + DRAIN_AT_MOST {
            break;
        }
    }
    if seen > max { Err(()) } else { Ok(collected.into()) }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
/// Connections are bounded by `state.connections` (see [`ConnectionLimits`]).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stopping = state.stopping.clone();
    let watched = stopping.subscribe();
    Arc::clone(&state.notary).spawn(state.checkpoint_interval, stopping.subscribe());
    tokio::spawn(async move {
        shutdown.await;
        stopping.send_replace(true);
    });
    let (limits, auth, open) = (state.connections, Arc::clone(&state.auth), state.open_connections.clone());
    let tls = state.tls.clone();
    let exempt = move |ip| auth.is_trusted_proxy(ip);
    serve::serve_connections(listener, router(state), serve::Settings { limits, exempt, open, tls }, watched).await
}

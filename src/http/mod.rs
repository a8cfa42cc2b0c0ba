//! The HTTP surface: one `AppState`, thin handlers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger_events::{Actor, AuthMethod};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::jmap::{self, error::RequestError, session::Limits};
use crate::store::Ledger;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Ledger,
    pub limits: Limits,
    /// Permits for `maxConcurrentRequests`.
    pub concurrency: Arc<Semaphore>,
}

impl AppState {
    pub fn new(ledger: Ledger) -> Self {
        let limits = Limits::default();
        AppState { ledger, limits, concurrency: Arc::new(Semaphore::new(limits.max_concurrent_requests)) }
    }

    /// Who the current request acts as.
    pub fn actor(&self) -> Actor {
        Actor { principal_id: String::new(), name: self.username(), auth_method: AuthMethod::Fallback }
    }

    pub fn username(&self) -> String {
        "admin".to_owned()
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/.well-known/jmap", get(session))
        .route("/api", post(api))
        .route("/jmap", post(api))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Liveness plus the log position readers currently see.
async fn healthz(State(state): State<AppState>) -> Json<Value> {
    let read = state.ledger.read();
    Json(json!({ "status": "ok", "lastSeq": read.last_seq }))
}

/// The JMAP Session object, with URLs on the host the client used.
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("http://{host}");
    Json(jmap::session::session(&state.limits, &base, &state.username()))
}

/// Reads at most `maxSizeRequest` bytes of the body, then hands it to JMAP.
async fn api(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let max = state.limits.max_size_request;
    match axum::body::to_bytes(body, max).await {
        Ok(bytes) => jmap::api(State(state), headers, bytes).await,
        Err(_) => {
            RequestError::Limit { limit: "maxSizeRequest", detail: format!("the request is larger than {max} bytes") }
                .into_response()
        }
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

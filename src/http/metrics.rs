//! `GET /metrics`: Prometheus text exposition (format 0.0.4) of the
//! service's counters, built per scrape from the live values. No
//! credentials, and nothing but numbers: the method label is from a fixed
//! set, no account data appears.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::AppState;

fn counter(value: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(value);
    c
}

fn gauge(value: u64) -> Gauge {
    let g = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    g
}

/// Bytes a file takes on disk (its allocated blocks: fjall preallocates its
/// journal, whose length is not what it uses).
fn on_disk(meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        std::os::unix::fs::MetadataExt::blocks(meta) * 512
    }
    #[cfg(not(unix))]
    {
        meta.len()
    }
}

/// The bytes every file under `dir` takes on disk.
fn size_of(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size_of(&e.path()),
            Ok(_) => e.metadata().map(|m| on_disk(&m)).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

pub(super) async fn metrics(State(app): State<AppState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let data_dir = app.ledger.log().path().to_path_buf();
    let store_bytes = tokio::task::spawn_blocking(move || size_of(&data_dir)).await.unwrap_or(0);
    let stats = app.ledger.metrics();
    let mut registry = Registry::with_prefix("ledger");
    registry.register("commits", "Commits that recorded events", counter(stats.commits.load(Relaxed)));
    registry.register("events", "Events appended to the log", counter(stats.events.load(Relaxed)));
    registry.register("fsyncs", "fsync calls of group commits", counter(stats.fsyncs.load(Relaxed)));
    registry.register("write_failures", "Group commits that failed", counter(stats.write_failures.load(Relaxed)));
    registry.register("commit_group_size", "Commits per group commit", stats.group_sizes.clone());
    registry.register("fsync_duration_seconds", "Time of one group commit's fsync", stats.fsync_seconds.clone());
    registry.register("log_position", "Last durable log position", gauge(app.ledger.read().last_seq));
    registry.register("store_size_bytes", "Bytes of the data directory", gauge(store_bytes));
    registry.register("open_connections", "Open HTTP connections", gauge(*app.open_connections.borrow() as u64));
    registry.register("open_streams", "Open feed, push and console live streams", gauge(app.streams.total() as u64));
    registry.register("console_sessions", "Signed-in audit console sessions", gauge(app.console.sessions.len() as u64));
    registry.register(
        "login_blocked",
        "Logins refused by the brute-force limiter (429)",
        counter(app.health.login_blocked.load(Relaxed)),
    );
    registry.register("method_duration_seconds", "Time per JMAP method call", app.services.method_seconds.clone());
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &registry).is_err() {
        return super::problem(StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be encoded".into());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

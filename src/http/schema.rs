//! `GET /api/schema`: the schema document Stalwart's client reads before
//! every command (stalwart-cli-wire.md §2.1), generated once per process
//! from the ledger's object descriptions ([`crate::jmap::schema_document`]).
//! As Stalwart serves it: `/api/schema` answers 307 to
//! `/api/schema/<hash>`, where `<hash>` is the SHA-256 of the JSON document,
//! base64url without padding (the name the client caches it under), and
//! that path answers the gzip body, immutable. A request for another hash
//! is sent to the current one. Authenticated like every API route.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::Digest;

/// The document: its hash and its gzip bytes.
pub(crate) struct Schema {
    pub(crate) hash: String,
    pub(crate) gzip: Vec<u8>,
}

pub(crate) static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    let json = serde_json::to_vec(&crate::jmap::schema_document()).unwrap_or_default();
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&json));
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let gzip = std::io::Write::write_all(&mut encoder, &json).and_then(|()| encoder.finish()).unwrap_or_default();
    Schema { hash, gzip }
});

fn to_current() -> Response {
    let location = format!("/api/schema/{}", SCHEMA.hash);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /api/schema`: 307 to the current document.
pub(super) async fn latest() -> Response {
    to_current()
}

/// `GET /api/schema/{hash}`: the document, gzip, cached for good.
pub(super) async fn by_hash(Path(hash): Path<String>) -> Response {
    if hash != SCHEMA.hash {
        return to_current();
    }
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        SCHEMA.gzip.clone(),
    )
        .into_response()
}

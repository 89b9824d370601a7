//! The page's static files, embedded in the binary.

use axum::http::header;
use axum::response::IntoResponse;

/// The page: markup, style and script in one document.
const INDEX: &str = include_str!("assets/index.html");
/// Street geometry derived from the routing graph's OpenStreetMap extract.
const STREETS: &str = include_str!("assets/streets.json");

pub(super) async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:",
            ),
        ],
        INDEX,
    )
}

pub(super) async fn streets() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STREETS,
    )
}

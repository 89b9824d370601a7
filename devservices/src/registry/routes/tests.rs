//! HTTP-level tests: paths, status codes, error bodies and content type.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::registry::api::CONTENT_TYPE;

const V1: &str = r#"{"type":"record","name":"Loc","fields":[{"name":"lat","type":"double"}]}"#;
const V2_BAD: &str = r#"{"type":"record","name":"Loc","fields":[{"name":"lat","type":"double"},{"name":"lon","type":"double"}]}"#;

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, CONTENT_TYPE)
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())));
    let request = match request {
        Ok(r) => r,
        Err(err) => panic!("{err}"),
    };
    let response = match app.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    if status != StatusCode::METHOD_NOT_ALLOWED {
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(CONTENT_TYPE.as_bytes()),
            "{method} {uri}"
        );
    }
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await;
    let value = bytes
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (status, value)
}

fn app() -> Router {
    router(AppState::new(Registry::new(), None))
}

#[tokio::test]
async fn register_fetch_and_list() {
    let app = app();
    let (status, body) = call(
        &app,
        "POST",
        "/subjects/loc-value/versions",
        Some(json!({"schema": V1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let id = body["id"].as_u64().unwrap_or(0);
    assert!(id >= 1);

    let (status, body) = call(
        &app,
        "GET",
        &format!("/schemas/ids/{id}?deleted=true"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["schema"]
            .as_str()
            .is_some_and(|s| s.contains("\"Loc\""))
    );
    assert!(body.get("references").is_none());

    let (_, body) = call(&app, "GET", "/subjects", None).await;
    assert_eq!(body, json!(["loc-value"]));
    let (_, body) = call(&app, "GET", "/subjects/loc-value/versions", None).await;
    assert_eq!(body, json!([1]));
    let (status, body) = call(&app, "GET", "/subjects/loc-value/versions/latest", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["subject"], "loc-value");
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], id);

    let (status, body) = call(
        &app,
        "POST",
        "/subjects/loc-value?deleted=false",
        Some(json!({"schema": V1, "schemaType": "AVRO"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 1);
}

#[tokio::test]
async fn errors_carry_confluent_codes() {
    let app = app();
    let (status, body) = call(&app, "GET", "/schemas/ids/99", None).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40403))
    );
    let (status, body) = call(&app, "GET", "/subjects/nope/versions/1", None).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40401))
    );
    let (status, body) = call(
        &app,
        "POST",
        "/subjects/s/versions",
        Some(json!({"schema": "{\"type\":\"oops\"}"})),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42201))
    );
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let (status, body) = call(&app, "GET", "/subjects/s/versions/zero", None).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42202))
    );
    let (status, body) = call(&app, "GET", "/no/such/path", None).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    let (status, body) = call(
        &app,
        "POST",
        "/subjects/s/versions",
        Some(json!({"nope": 1})),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::BAD_REQUEST, json!(400))
    );
}

#[tokio::test]
async fn incompatible_registration_is_409_and_compatibility_endpoint_agrees() {
    let app = app();
    call(
        &app,
        "POST",
        "/subjects/s/versions",
        Some(json!({"schema": V1})),
    )
    .await;
    let (status, body) = call(
        &app,
        "POST",
        "/subjects/s/versions",
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::CONFLICT, json!(409))
    );

    let (status, body) = call(
        &app,
        "POST",
        "/compatibility/subjects/s/versions/latest",
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"is_compatible": false}));
    let (_, body) = call(
        &app,
        "POST",
        "/compatibility/subjects/s/versions?verbose=true",
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(body["is_compatible"], false);
    assert!(body["messages"].as_array().is_some_and(|m| !m.is_empty()));
    let (_, body) = call(
        &app,
        "POST",
        "/compatibility/subjects/s/versions/1",
        Some(json!({"schema": V1})),
    )
    .await;
    assert_eq!(body, json!({"is_compatible": true}));

    // Relax the subject and the same schema goes in as version 2.
    let (status, body) = call(
        &app,
        "PUT",
        "/config/s",
        Some(json!({"compatibility": "NONE"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"compatibility": "NONE"}))
    );
    let (status, _) = call(
        &app,
        "POST",
        "/subjects/s/versions",
        Some(json!({"schema": V2_BAD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(&app, "GET", "/subjects/s/versions", None).await;
    assert_eq!(body, json!([1, 2]));
}

#[tokio::test]
async fn config_endpoints() {
    let app = app();
    let (_, body) = call(&app, "GET", "/config", None).await;
    assert_eq!(body, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, body) = call(
        &app,
        "PUT",
        "/config",
        Some(json!({"compatibility": "FULL"})),
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"compatibility": "FULL"}))
    );
    let (status, body) = call(&app, "GET", "/config/x", None).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!(40408))
    );
    let (_, body) = call(&app, "GET", "/config/x?defaultToGlobal=true", None).await;
    assert_eq!(body, json!({"compatibilityLevel": "FULL"}));
    let (status, body) = call(
        &app,
        "PUT",
        "/config/x",
        Some(json!({"compatibility": "SIDEWAYS"})),
    )
    .await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!(42203))
    );
}

#[tokio::test]
async fn percent_encoded_subjects_are_decoded() {
    let app = app();
    let (status, _) = call(
        &app,
        "POST",
        "/subjects/a%2Fb/versions",
        Some(json!({"schema": V1})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = call(&app, "GET", "/subjects", None).await;
    assert_eq!(body, json!(["a/b"]));
}

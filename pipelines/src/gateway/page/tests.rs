use super::*;
use axum::body::Body;
use axum::http::Request;
use doorstep_schemas::events::StatusChange;
use doorstep_schemas::model::{
    Actor, CustomerId, DriverId, EventId, HistoryEntryKind, OrderId, OrderStatus, RestaurantId,
    Timestamp,
};
use std::collections::BTreeMap;
use tower::ServiceExt;

const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";

fn change(order: &str, seq: u32, to: OrderStatus, driver: Option<&str>) -> StatusChange {
    StatusChange {
        event_id: EventId::new(format!("e-{order}-{seq}")),
        order_id: OrderId::new(order),
        seq,
        kind: HistoryEntryKind::Transition,
        from: None,
        to,
        actor: Actor::new(ActorKind::Restaurant, "r-1"),
        reason: None,
        customer_id: CustomerId::new("c-9"),
        restaurant_id: RestaurantId::new("r-1"),
        driver_id: driver.map(DriverId::new),
        refund_cents: None,
        at: Timestamp::now().plus_millis(i64::from(seq)),
    }
}

async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn recent_orders_follow_the_stream_and_ignore_stale_rereads() {
    let view = RecentOrders::new();
    view.apply(&change("o-1", 0, OrderStatus::Placed, None));
    view.apply(&change("o-1", 1, OrderStatus::Placed, Some("d-1")));
    view.apply(&change("o-1", 2, OrderStatus::Confirmed, Some("d-1")));
    view.apply(&change("o-1", 0, OrderStatus::Placed, None)); // re-read after a restart
    view.apply(&change("o-2", 0, OrderStatus::Placed, None));
    let o1 = view.get("o-1").unwrap();
    assert_eq!(o1.status, OrderStatus::Confirmed);
    assert_eq!(o1.driver_id.as_deref(), Some("d-1"));
    assert_eq!(o1.changes, 3);
    assert_eq!(o1.customer_id, "c-9");
    let listed: Vec<_> = view.list().into_iter().map(|o| o.order_id).collect();
    assert_eq!(listed.len(), 2);
    assert!(view.get("o-3").is_none());
}

#[test]
fn samples_are_summed_per_family_whatever_the_labels() {
    let mut totals: BTreeMap<String, f64> =
        FAMILIES.iter().map(|f| ((*f).to_owned(), 0.0)).collect();
    let text = "# HELP doorstep_pipeline_records_in_total x\n\
        # TYPE doorstep_pipeline_records_in_total counter\n\
        doorstep_pipeline_records_in_total{pipeline=\"status\",topic=\"a{b}\"} 10\n\
        doorstep_pipeline_records_in_total{pipeline=\"location\",topic=\"t\"} 5.5\n\
        doorstep_kafka_consumer_lag_records 3\n\
        doorstep_other_total 100\n\
        doorstep_eta_routing_cache_hits_total NaN\n";
    add_samples(text, &mut totals);
    assert_eq!(totals["doorstep_pipeline_records_in_total"], 15.5);
    assert_eq!(totals["doorstep_kafka_consumer_lag_records"], 3.0);
    assert_eq!(totals["doorstep_eta_routing_cache_hits_total"], 0.0);
    assert!(!totals.contains_key("doorstep_other_total"));
}

#[tokio::test]
async fn the_page_serves_its_files_and_mints_tokens_only_for_seen_orders() {
    let key = TokenKey::new(SECRET).unwrap();
    let view = RecentOrders::new();
    view.apply(&change("o-1", 0, OrderStatus::Placed, None));
    let registry = Registry::new();
    let app = DemoPage::new(
        key.clone(),
        view,
        registry,
        vec!["http://127.0.0.1:9/metrics".into()],
    )
    .router();

    let (s, html) = call(&app, "GET", "/demo").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("/v1/orders/") && html.contains("/track"));
    let (s, streets) = call(&app, "GET", "/demo/streets.json").await;
    assert_eq!(s, StatusCode::OK);
    let streets: serde_json::Value = serde_json::from_str(&streets).unwrap();
    assert!(streets["ways"].as_array().unwrap().len() > 500);
    assert!(
        streets["attribution"]
            .as_str()
            .unwrap()
            .contains("OpenStreetMap")
    );

    let (s, list) = call(&app, "GET", "/demo/api/orders").await;
    assert_eq!(s, StatusCode::OK);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["orders"][0]["order_id"], "o-1");
    assert!(list["orders"][0].get("customer_id").is_none());
    assert_eq!(
        list["restaurants"].as_array().unwrap().len(),
        RESTAURANTS.len()
    );

    let (s, minted) = call(&app, "POST", "/demo/api/orders/o-1/token").await;
    assert_eq!(s, StatusCode::OK);
    let minted: serde_json::Value = serde_json::from_str(&minted).unwrap();
    let claims = key
        .verify(minted["token"].as_str().unwrap(), unix_now())
        .unwrap();
    assert_eq!(claims.sub_kind, ActorKind::Customer);
    assert_eq!(claims.sub, "c-9");
    assert_eq!(claims.order_id.as_deref(), Some("o-1"));
    assert!(claims.exp <= unix_now() + TOKEN_TTL_S);
    let (s, _) = call(&app, "POST", "/demo/api/orders/o-404/token").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, ops) = call(&app, "GET", "/demo/api/ops").await;
    assert_eq!(s, StatusCode::OK);
    let ops: serde_json::Value = serde_json::from_str(&ops).unwrap();
    assert_eq!(ops["sources"][0]["status"], "ok");
    assert_ne!(
        ops["sources"][1]["status"], "ok",
        "nothing listens on port 9"
    );
}

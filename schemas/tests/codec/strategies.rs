//! proptest strategies for every topic record: arbitrary unicode strings (empty included),
//! `None` and `Some`, extreme integers and timestamps, every enum variant, positions up to
//! the range edges. Doubles are anything but NaN (NaN ≠ NaN; a test checks NaN separately).

use doorstep_schemas::events::{
    EtaUpdate, LocationPing, Notification, OrderCommand, OrderEvent, PlaceOrder, RecipientKind,
    RejectedRecord, StatusChange,
};
use doorstep_schemas::model::{
    Actor, ActorKind, CustomerId, DriverId, EventId, GeoPoint, HistoryEntryKind, OrderId,
    OrderItem, OrderStatus, RestaurantId, Timestamp, TrackingEventType, TrackingUpdate,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => Just("ørder 🍕 — 配達 \u{0} \u{10FFFF}".to_owned()),
        8 => any::<String>(),
    ]
}

pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        1 => select(vec![i64::MIN, -1, 0, 1, i64::MAX]),
        4 => any::<i64>(),
        4 => 1_500_000_000_000i64..2_500_000_000_000,
    ]
    .prop_map(Timestamp::from_millis)
}

/// Any double but NaN: infinities, zeros of both signs, subnormals, extremes.
pub fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => select(vec![0.0, -0.0, f64::MIN, f64::MAX, f64::MIN_POSITIVE, f64::INFINITY, f64::NEG_INFINITY, 5e-324]),
        4 => any::<f64>().prop_filter("NaN is not equal to itself", |x| !x.is_nan()),
    ]
}

pub fn u32_edge() -> impl Strategy<Value = u32> {
    prop_oneof![1 => select(vec![0, 1, u32::MAX]), 3 => any::<u32>()]
}

pub fn i64_edge() -> impl Strategy<Value = i64> {
    prop_oneof![1 => select(vec![i64::MIN, -1, 0, i64::MAX]), 3 => any::<i64>()]
}

pub fn geo_point() -> impl Strategy<Value = GeoPoint> {
    let lat = prop_oneof![1 => select(vec![-90.0, 90.0, 0.0, -0.0]), 4 => -90.0f64..=90.0];
    let lng = prop_oneof![1 => select(vec![-180.0, 180.0, 0.0]), 4 => -180.0f64..=180.0];
    (lat, lng).prop_map(|(lat, lng)| GeoPoint { lat, lng })
}

pub fn status() -> impl Strategy<Value = OrderStatus> {
    select(OrderStatus::ALL.to_vec())
}

pub fn actor() -> impl Strategy<Value = Actor> {
    (select(ActorKind::ALL.to_vec()), text()).prop_map(|(kind, id)| Actor { kind, id })
}

pub fn order_item() -> impl Strategy<Value = OrderItem> {
    (text(), text(), u32_edge(), i64_edge()).prop_map(
        |(item_id, name, quantity, unit_price_cents)| OrderItem {
            item_id,
            name,
            quantity,
            unit_price_cents,
        },
    )
}

pub fn place_order() -> impl Strategy<Value = PlaceOrder> {
    (
        text(),
        text(),
        vec(order_item(), 0..5),
        i64_edge(),
        geo_point(),
        geo_point(),
    )
        .prop_map(
            |(customer, restaurant, items, total_cents, restaurant_location, delivery_location)| {
                PlaceOrder {
                    customer_id: CustomerId(customer),
                    restaurant_id: RestaurantId(restaurant),
                    items,
                    total_cents,
                    restaurant_location,
                    delivery_location,
                }
            },
        )
}

pub fn command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        place_order().prop_map(OrderCommand::Place),
        text().prop_map(|d| OrderCommand::AssignDriver {
            driver_id: DriverId(d)
        }),
        status().prop_map(|to| OrderCommand::Transition { to }),
        text().prop_map(|reason| OrderCommand::Cancel { reason }),
    ]
}

pub fn order_event() -> impl Strategy<Value = OrderEvent> {
    (text(), text(), timestamp(), actor(), command()).prop_map(
        |(event, order, occurred_at, actor, command)| OrderEvent {
            event_id: EventId(event),
            order_id: OrderId(order),
            occurred_at,
            actor,
            command,
        },
    )
}

pub fn status_change() -> impl Strategy<Value = StatusChange> {
    let kind = select(vec![
        HistoryEntryKind::Placed,
        HistoryEntryKind::Transition,
        HistoryEntryKind::Cancelled,
        HistoryEntryKind::DriverAssigned,
        HistoryEntryKind::DriverUnassigned,
    ]);
    (
        (
            text(),
            text(),
            u32_edge(),
            kind,
            option::of(status()),
            status(),
            actor(),
        ),
        (
            option::of(text()),
            text(),
            text(),
            option::of(text()),
            option::of(i64_edge()),
            timestamp(),
        ),
    )
        .prop_map(
            |(
                (event, order, seq, kind, from, to, actor),
                (reason, customer, restaurant, driver, refund_cents, at),
            )| {
                StatusChange {
                    event_id: EventId(event),
                    order_id: OrderId(order),
                    seq,
                    kind,
                    from,
                    to,
                    actor,
                    reason,
                    customer_id: CustomerId(customer),
                    restaurant_id: RestaurantId(restaurant),
                    driver_id: driver.map(DriverId),
                    refund_cents,
                    at,
                }
            },
        )
}

pub fn rejected_record() -> impl Strategy<Value = RejectedRecord> {
    (
        (
            text(),
            any::<i32>(),
            i64_edge(),
            option::of(vec(any::<u8>(), 0..64)),
            vec(any::<u8>(), 0..256),
        ),
        (
            option::of(text()),
            option::of(text()),
            text(),
            text(),
            text(),
            timestamp(),
        ),
    )
        .prop_map(
            |(
                (source_topic, source_partition, source_offset, original_key, original_value),
                (event, order, rejected_by, reason_code, message, rejected_at),
            )| {
                RejectedRecord {
                    source_topic,
                    source_partition,
                    source_offset,
                    original_key,
                    original_value,
                    event_id: event.map(EventId),
                    order_id: order.map(OrderId),
                    rejected_by,
                    reason_code,
                    message,
                    rejected_at,
                }
            },
        )
}

pub fn location_ping() -> impl Strategy<Value = LocationPing> {
    (
        text(),
        text(),
        geo_point(),
        option::of(double()),
        option::of(double()),
        option::of(double()),
        timestamp(),
        timestamp(),
    )
        .prop_map(
            |(
                ping,
                driver,
                location,
                accuracy_m,
                heading_deg,
                speed_mps,
                recorded_at,
                received_at,
            )| {
                LocationPing {
                    ping_id: EventId(ping),
                    driver_id: DriverId(driver),
                    location,
                    accuracy_m,
                    heading_deg,
                    speed_mps,
                    recorded_at,
                    received_at,
                }
            },
        )
}

pub fn tracking_update() -> impl Strategy<Value = TrackingUpdate> {
    let event_type = select(vec![
        TrackingEventType::LocationUpdate,
        TrackingEventType::StatusChange,
    ]);
    (
        text(),
        text(),
        option::of(text()),
        option::of(geo_point()),
        timestamp(),
        event_type,
        option::of(status()),
        option::of(u32_edge()),
    )
        .prop_map(
            |(update, order, driver, driver_location, timestamp, event_type, status, seq)| {
                TrackingUpdate {
                    update_id: EventId(update),
                    order_id: OrderId(order),
                    driver_id: driver.map(DriverId),
                    driver_location,
                    timestamp,
                    event_type,
                    status,
                    status_seq: seq,
                }
            },
        )
}

pub fn eta_update() -> impl Strategy<Value = EtaUpdate> {
    (
        text(),
        timestamp(),
        double(),
        double(),
        double(),
        timestamp(),
        u32_edge(),
        u32_edge(),
        any::<bool>(),
    )
        .prop_map(
            |(order, computed_at, prep, pickup, delivery, estimated, low, high, fallback)| {
                EtaUpdate {
                    order_id: OrderId(order),
                    computed_at,
                    prep_remaining_s: prep,
                    pickup_travel_s: pickup,
                    delivery_travel_s: delivery,
                    estimated_delivery_at: estimated,
                    range_low_min: low,
                    range_high_min: high,
                    fallback,
                }
            },
        )
}

pub fn notification() -> impl Strategy<Value = Notification> {
    let kind = select(vec![
        RecipientKind::Customer,
        RecipientKind::Restaurant,
        RecipientKind::Driver,
    ]);
    (text(), kind, text(), text(), status(), text(), timestamp()).prop_map(
        |(notification_id, recipient_kind, recipient_id, order, status, message, created_at)| {
            Notification {
                notification_id,
                recipient_kind,
                recipient_id,
                order_id: OrderId(order),
                status,
                message,
                created_at,
            }
        },
    )
}

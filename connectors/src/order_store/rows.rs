//! Mapping between the model ([`OrderState`], [`StatusHistoryEntry`]) and CQL rows, both
//! ways. Pure functions, unit-tested here; the integration tests check the same round trip
//! through a real CQL server.

use super::Error;
use doorstep_operators::order::OrderState;
use doorstep_schemas::model::{
    Actor, ActorKind, Cancellation, DriverId, EventId, GeoPoint, HistoryEntryKind, Order, OrderId,
    OrderItem, OrderStatus, StatusHistoryEntry, Timestamp,
};
use scylla::value::CqlTimestamp;
use serde::{Deserialize, Serialize};

/// The static columns of `orders` (the order's current fields) that
/// [`save`](super::OrderStore::save) writes, in the order of the INSERT statement. `estimated_delivery_at` is not among them: the ETA pipeline owns it
/// ([`set_eta`](super::OrderStore::set_eta)), so a status save never overwrites a fresh ETA.
#[derive(Debug, Clone, PartialEq, scylla::SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(super) struct OrderWrite {
    pub order_id: String,
    pub customer_id: String,
    pub restaurant_id: String,
    pub driver_id: Option<String>,
    pub items: String,
    pub total_cents: i64,
    pub status: String,
    pub placed_at: CqlTimestamp,
    pub updated_at: CqlTimestamp,
    pub restaurant_lat: f64,
    pub restaurant_lng: f64,
    pub delivery_lat: f64,
    pub delivery_lng: f64,
    pub cancellation_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<CqlTimestamp>,
    pub refund_cents: Option<i64>,
    pub preparing_since: Option<CqlTimestamp>,
    pub last_seq: i32,
    pub last_source_offset: i64,
    pub outbox: Vec<u8>,
}

/// The column list of [`OrderWrite`], for the INSERT.
pub(super) const ORDER_WRITE_COLUMNS: &str = "order_id, customer_id, restaurant_id, driver_id, \
    items, total_cents, status, placed_at, updated_at, restaurant_lat, restaurant_lng, \
    delivery_lat, delivery_lng, cancellation_reason, cancelled_by, cancelled_at, refund_cents, \
    preparing_since, last_seq, last_source_offset, outbox";

/// The order's current fields (the static columns of its partition). Every column but the
/// key is optional here so that a partial row (written by `set_eta` for an order that was
/// never saved) is reported as [`Error::Corrupt`] naming the column instead of as a driver
/// type error.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct OrderRead {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub restaurant_id: Option<String>,
    pub driver_id: Option<String>,
    pub items: Option<String>,
    pub total_cents: Option<i64>,
    pub status: Option<String>,
    pub placed_at: Option<CqlTimestamp>,
    pub updated_at: Option<CqlTimestamp>,
    pub estimated_delivery_at: Option<CqlTimestamp>,
    pub restaurant_lat: Option<f64>,
    pub restaurant_lng: Option<f64>,
    pub delivery_lat: Option<f64>,
    pub delivery_lng: Option<f64>,
    pub cancellation_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<CqlTimestamp>,
    pub refund_cents: Option<i64>,
    pub preparing_since: Option<CqlTimestamp>,
    pub last_seq: Option<i32>,
    pub last_source_offset: Option<i64>,
}

/// One row of an order's partition as read: the static columns (repeated on every row) and
/// one timeline entry, whose columns are all NULL on the one row of a partition that has
/// static columns only.
#[derive(Debug, Clone, PartialEq, scylla::DeserializeRow)]
pub(super) struct PartitionRow {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub restaurant_id: Option<String>,
    pub driver_id: Option<String>,
    pub items: Option<String>,
    pub total_cents: Option<i64>,
    pub status: Option<String>,
    pub placed_at: Option<CqlTimestamp>,
    pub updated_at: Option<CqlTimestamp>,
    pub estimated_delivery_at: Option<CqlTimestamp>,
    pub restaurant_lat: Option<f64>,
    pub restaurant_lng: Option<f64>,
    pub delivery_lat: Option<f64>,
    pub delivery_lng: Option<f64>,
    pub cancellation_reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub cancelled_at: Option<CqlTimestamp>,
    pub refund_cents: Option<i64>,
    pub preparing_since: Option<CqlTimestamp>,
    pub last_seq: Option<i32>,
    pub last_source_offset: Option<i64>,
    pub outbox: Option<Vec<u8>>,
    pub seq: Option<i32>,
    pub event_id: Option<String>,
    pub kind: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub actor_kind: Option<String>,
    pub actor_id: Option<String>,
    pub reason: Option<String>,
    pub entry_driver_id: Option<String>,
    pub at: Option<CqlTimestamp>,
}

/// The column list of [`PartitionRow`], for the SELECT.
pub(super) const PARTITION_READ_COLUMNS: &str = "order_id, customer_id, restaurant_id, \
    driver_id, items, total_cents, status, placed_at, updated_at, estimated_delivery_at, \
    restaurant_lat, restaurant_lng, delivery_lat, delivery_lng, cancellation_reason, \
    cancelled_by, cancelled_at, refund_cents, preparing_since, last_seq, last_source_offset, \
    outbox, seq, event_id, kind, from_status, to_status, actor_kind, actor_id, reason, entry_driver_id, \
    at";

impl PartitionRow {
    /// The order's current fields.
    pub(super) fn order(&self) -> OrderRead {
        OrderRead {
            order_id: self.order_id.clone(),
            customer_id: self.customer_id.clone(),
            restaurant_id: self.restaurant_id.clone(),
            driver_id: self.driver_id.clone(),
            items: self.items.clone(),
            total_cents: self.total_cents,
            status: self.status.clone(),
            placed_at: self.placed_at,
            updated_at: self.updated_at,
            estimated_delivery_at: self.estimated_delivery_at,
            restaurant_lat: self.restaurant_lat,
            restaurant_lng: self.restaurant_lng,
            delivery_lat: self.delivery_lat,
            delivery_lng: self.delivery_lng,
            cancellation_reason: self.cancellation_reason.clone(),
            cancelled_by: self.cancelled_by.clone(),
            cancelled_at: self.cancelled_at,
            refund_cents: self.refund_cents,
            preparing_since: self.preparing_since,
            last_seq: self.last_seq,
            last_source_offset: self.last_source_offset,
        }
    }

    /// The timeline entry of this row: `None` on a static-only row, an error when the entry
    /// is only partly there.
    pub(super) fn entry(self) -> Result<Option<HistoryRow>, Error> {
        let Some(seq) = self.seq else {
            return Ok(None);
        };
        let id = self.order_id.clone();
        let missing = |column: &str| {
            Error::corrupt(&id, format!("history entry {seq}: column {column} is null"))
        };
        Ok(Some(HistoryRow {
            seq,
            event_id: self.event_id.ok_or_else(|| missing("event_id"))?,
            kind: self.kind.ok_or_else(|| missing("kind"))?,
            from_status: self.from_status,
            to_status: self.to_status.ok_or_else(|| missing("to_status"))?,
            actor_kind: self.actor_kind.ok_or_else(|| missing("actor_kind"))?,
            actor_id: self.actor_id.ok_or_else(|| missing("actor_id"))?,
            reason: self.reason,
            driver_id: self.entry_driver_id,
            at: self.at.ok_or_else(|| missing("at"))?,
            order_id: self.order_id,
        }))
    }
}

/// One timeline entry (a clustering row of `orders`), as written.
#[derive(Debug, Clone, PartialEq, scylla::SerializeRow)]
#[scylla(flavor = "enforce_order", skip_name_checks)]
pub(super) struct HistoryRow {
    pub order_id: String,
    pub seq: i32,
    pub event_id: String,
    pub kind: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub reason: Option<String>,
    pub driver_id: Option<String>,
    pub at: CqlTimestamp,
}

/// The column list of [`HistoryRow`], for the INSERT (the entry's driver is `entry_driver_id`,
/// beside the order's static `driver_id`).
pub(super) const HISTORY_COLUMNS: &str = "order_id, seq, event_id, kind, from_status, to_status, actor_kind, actor_id, reason, entry_driver_id, at";

/// An order item as stored in the `items` JSON, independent of the model's serde attributes
/// so that a change there cannot silently change what is on disk.
#[derive(Debug, Serialize, Deserialize)]
struct ItemJson {
    item_id: String,
    name: String,
    quantity: u32,
    unit_price_cents: i64,
}

pub(super) fn ts(t: Timestamp) -> CqlTimestamp {
    CqlTimestamp(t.as_millis())
}

pub(super) fn from_ts(t: CqlTimestamp) -> Timestamp {
    Timestamp::from_millis(t.0)
}

/// `seq` or a history length as an `int` column.
pub(super) fn seq_to_int(seq: u32) -> Result<i32, Error> {
    i32::try_from(seq).map_err(|_| Error::Unstorable {
        what: "history sequence number",
        detail: format!("{seq} is larger than a CQL int"),
    })
}

/// The order row for `state`.
///
/// `last_source_offset` is the offset (in its partition of `orders.events.v1`) of the last
/// event processed for this order, accepted or rejected; −1 when unknown.
pub(super) fn order_write(
    state: &OrderState,
    last_source_offset: i64,
    outbox: &[u8],
) -> Result<OrderWrite, Error> {
    let o = &state.order;
    let items: Vec<ItemJson> = o
        .items
        .iter()
        .map(|i| ItemJson {
            item_id: i.item_id.clone(),
            name: i.name.clone(),
            quantity: i.quantity,
            unit_price_cents: i.unit_price_cents,
        })
        .collect();
    let items = serde_json::to_string(&items).map_err(|e| Error::Unstorable {
        what: "order items",
        detail: e.to_string(),
    })?;
    let last_seq = match state.history.len() {
        0 => -1,
        n => seq_to_int(u32::try_from(n - 1).unwrap_or(u32::MAX))?,
    };
    let c = o.cancellation.as_ref();
    Ok(OrderWrite {
        order_id: o.order_id.to_string(),
        customer_id: o.customer_id.to_string(),
        restaurant_id: o.restaurant_id.to_string(),
        // NULL when no driver is assigned: the upsert clears the column of a driver who
        // handed the order back.
        driver_id: o.driver_id.as_ref().map(ToString::to_string),
        items,
        total_cents: o.total_cents,
        status: o.status.as_str().to_owned(),
        placed_at: ts(o.placed_at),
        updated_at: ts(o.updated_at),
        restaurant_lat: o.restaurant_location.lat,
        restaurant_lng: o.restaurant_location.lng,
        delivery_lat: o.delivery_location.lat,
        delivery_lng: o.delivery_location.lng,
        cancellation_reason: c.map(|c| c.reason.clone()),
        cancelled_by: c.map(|c| c.cancelled_by.to_string()),
        cancelled_at: c.map(|c| ts(c.cancelled_at)),
        refund_cents: c.map(|c| c.refund_cents),
        preparing_since: o.preparing_since.map(ts),
        last_seq,
        last_source_offset,
        outbox: outbox.to_vec(),
    })
}

/// The history row for `entry`.
pub(super) fn history_write(entry: &StatusHistoryEntry) -> Result<HistoryRow, Error> {
    Ok(HistoryRow {
        order_id: entry.order_id.to_string(),
        seq: seq_to_int(entry.seq)?,
        event_id: entry.event_id.to_string(),
        kind: kind_str(entry.kind).to_owned(),
        from_status: entry.from.map(|s| s.as_str().to_owned()),
        to_status: entry.to.as_str().to_owned(),
        actor_kind: entry.actor.kind.as_str().to_owned(),
        actor_id: entry.actor.id.clone(),
        reason: entry.reason.clone(),
        driver_id: entry.driver_id.as_ref().map(ToString::to_string),
        at: ts(entry.at),
    })
}

/// The order of a row, and the row's `last_seq`.
pub(super) fn order_from_row(row: OrderRead) -> Result<(Order, i32), Error> {
    let id = row.order_id.clone();
    let missing = |column: &str| Error::corrupt(&id, format!("column {column} is null"));
    let status_raw = row.status.ok_or_else(|| missing("status"))?;
    let status = status_raw
        .parse::<OrderStatus>()
        .map_err(|e| Error::corrupt(&id, e.to_string()))?;
    let items_raw = row.items.ok_or_else(|| missing("items"))?;
    let items: Vec<ItemJson> = serde_json::from_str(&items_raw)
        .map_err(|e| Error::corrupt(&id, format!("items are not the expected JSON: {e}")))?;
    let cancellation = match (
        row.cancellation_reason,
        row.cancelled_by,
        row.cancelled_at,
        row.refund_cents,
    ) {
        (None, None, None, None) => None,
        (Some(reason), Some(by), Some(at), Some(refund_cents)) => Some(Cancellation {
            reason,
            cancelled_by: parse_actor(&by).map_err(|e| Error::corrupt(&id, e))?,
            cancelled_at: from_ts(at),
            refund_cents,
        }),
        _ => {
            return Err(Error::corrupt(
                &id,
                "cancellation columns are only partly set",
            ));
        }
    };
    let point = |lat: Option<f64>, lng: Option<f64>, what: &str| match (lat, lng) {
        (Some(lat), Some(lng)) => Ok(GeoPoint { lat, lng }),
        _ => Err(missing(what)),
    };
    let order = Order {
        order_id: OrderId::new(row.order_id.clone()),
        customer_id: row
            .customer_id
            .ok_or_else(|| missing("customer_id"))?
            .into(),
        restaurant_id: row
            .restaurant_id
            .ok_or_else(|| missing("restaurant_id"))?
            .into(),
        // Rows written before driver_id was a real NULL hold "" for "no driver".
        driver_id: row.driver_id.filter(|d| !d.is_empty()).map(DriverId::new),
        items: items
            .into_iter()
            .map(|i| OrderItem {
                item_id: i.item_id,
                name: i.name,
                quantity: i.quantity,
                unit_price_cents: i.unit_price_cents,
            })
            .collect(),
        total_cents: row.total_cents.ok_or_else(|| missing("total_cents"))?,
        status,
        placed_at: from_ts(row.placed_at.ok_or_else(|| missing("placed_at"))?),
        estimated_delivery_at: row.estimated_delivery_at.map(from_ts),
        restaurant_location: point(row.restaurant_lat, row.restaurant_lng, "restaurant_lat/lng")?,
        delivery_location: point(row.delivery_lat, row.delivery_lng, "delivery_lat/lng")?,
        cancellation,
        updated_at: from_ts(row.updated_at.ok_or_else(|| missing("updated_at"))?),
        preparing_since: row.preparing_since.map(from_ts),
    };
    let last_seq = row.last_seq.ok_or_else(|| missing("last_seq"))?;
    Ok((order, last_seq))
}

/// The history entry of a row.
pub(super) fn entry_from_row(row: HistoryRow) -> Result<StatusHistoryEntry, Error> {
    let id = row.order_id.clone();
    let bad = |e: String| Error::corrupt(&id, format!("history entry {}: {e}", row.seq));
    let seq = u32::try_from(row.seq).map_err(|_| bad("negative seq".to_owned()))?;
    let status = |s: &str| s.parse::<OrderStatus>().map_err(|e| e.to_string());
    Ok(StatusHistoryEntry {
        order_id: OrderId::new(row.order_id.clone()),
        seq,
        event_id: EventId::new(row.event_id.clone()),
        kind: parse_kind(&row.kind).map_err(bad)?,
        from: row
            .from_status
            .as_deref()
            .map(status)
            .transpose()
            .map_err(bad)?,
        to: status(&row.to_status).map_err(bad)?,
        actor: Actor::new(
            parse_actor_kind(&row.actor_kind).map_err(bad)?,
            row.actor_id.clone(),
        ),
        reason: row.reason.clone(),
        driver_id: row.driver_id.clone().map(DriverId::new),
        at: from_ts(row.at),
    })
}

/// Puts an order and its history rows together: sorts by seq, checks the history is
/// `0..=last_seq` without gaps or duplicates.
pub(super) fn assemble(
    order: Order,
    last_seq: i32,
    mut rows: Vec<HistoryRow>,
) -> Result<OrderState, Error> {
    let id = order.order_id.to_string();
    rows.sort_by_key(|r| r.seq);
    let history = rows
        .into_iter()
        .map(entry_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    for (i, entry) in history.iter().enumerate() {
        if usize::try_from(entry.seq).ok() != Some(i) {
            return Err(Error::corrupt(
                &id,
                format!("history entry at position {i} has seq {}", entry.seq),
            ));
        }
    }
    let expected = usize::try_from(i64::from(last_seq) + 1).unwrap_or(0);
    if history.len() != expected {
        return Err(Error::corrupt(
            &id,
            format!(
                "the order row says the last seq is {last_seq} but the history has {} entries",
                history.len()
            ),
        ));
    }
    Ok(OrderState { order, history })
}

/// `KIND:id`, as `Actor`'s `Display` writes it.
pub(super) fn parse_actor(s: &str) -> Result<Actor, String> {
    let (kind, id) = s
        .split_once(':')
        .ok_or_else(|| format!("actor {s:?} is not KIND:id"))?;
    Ok(Actor::new(parse_actor_kind(kind)?, id))
}

fn parse_actor_kind(s: &str) -> Result<ActorKind, String> {
    ActorKind::ALL
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| format!("unknown actor kind {s:?}"))
}

/// The stored name of a history entry kind.
pub(super) const fn kind_str(kind: HistoryEntryKind) -> &'static str {
    match kind {
        HistoryEntryKind::Placed => "PLACED",
        HistoryEntryKind::Transition => "TRANSITION",
        HistoryEntryKind::Cancelled => "CANCELLED",
        HistoryEntryKind::DriverAssigned => "DRIVER_ASSIGNED",
        HistoryEntryKind::DriverUnassigned => "DRIVER_UNASSIGNED",
    }
}

fn parse_kind(s: &str) -> Result<HistoryEntryKind, String> {
    [
        HistoryEntryKind::Placed,
        HistoryEntryKind::Transition,
        HistoryEntryKind::Cancelled,
        HistoryEntryKind::DriverAssigned,
        HistoryEntryKind::DriverUnassigned,
    ]
    .into_iter()
    .find(|k| kind_str(*k) == s)
    .ok_or_else(|| format!("unknown history entry kind {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        Order {
            order_id: "o-1".into(),
            customer_id: "c-1".into(),
            restaurant_id: "r-1".into(),
            driver_id: Some("d-1".into()),
            items: vec![OrderItem {
                item_id: "pizza".into(),
                name: "Pizza \"Quattro\" ★".into(),
                quantity: 2,
                unit_price_cents: 1_250,
            }],
            total_cents: 2_500,
            status: OrderStatus::Cancelled,
            placed_at: Timestamp::from_millis(1_700_000_000_123),
            estimated_delivery_at: None,
            restaurant_location: GeoPoint {
                lat: 60.169_912_345,
                lng: 24.938_456_789,
            },
            delivery_location: GeoPoint {
                lat: -33.868_8,
                lng: 151.209_3,
            },
            cancellation: Some(Cancellation {
                reason: "closed: out of dough".into(),
                cancelled_by: Actor::restaurant("r-1:kitchen"),
                cancelled_at: Timestamp::from_millis(1_700_000_100_000),
                refund_cents: 2_500,
            }),
            updated_at: Timestamp::from_millis(1_700_000_100_000),
            preparing_since: Some(Timestamp::from_millis(1_700_000_050_000)),
        }
    }

    fn entry(
        seq: u32,
        kind: HistoryEntryKind,
        from: Option<OrderStatus>,
        to: OrderStatus,
    ) -> StatusHistoryEntry {
        StatusHistoryEntry {
            order_id: "o-1".into(),
            seq,
            event_id: EventId::new(format!("e-{seq}")),
            kind,
            from,
            to,
            actor: Actor::system("dispatch"),
            reason: (seq == 1).then(|| "why".to_owned()),
            driver_id: (seq > 0).then(|| DriverId::from("d-1")),
            at: Timestamp::from_millis(1_700_000_000_000 + i64::from(seq)),
        }
    }

    fn read_of(w: &OrderWrite, eta: Option<CqlTimestamp>) -> OrderRead {
        OrderRead {
            order_id: w.order_id.clone(),
            customer_id: Some(w.customer_id.clone()),
            restaurant_id: Some(w.restaurant_id.clone()),
            driver_id: w.driver_id.clone(),
            items: Some(w.items.clone()),
            total_cents: Some(w.total_cents),
            status: Some(w.status.clone()),
            placed_at: Some(w.placed_at),
            updated_at: Some(w.updated_at),
            estimated_delivery_at: eta,
            restaurant_lat: Some(w.restaurant_lat),
            restaurant_lng: Some(w.restaurant_lng),
            delivery_lat: Some(w.delivery_lat),
            delivery_lng: Some(w.delivery_lng),
            cancellation_reason: w.cancellation_reason.clone(),
            cancelled_by: w.cancelled_by.clone(),
            cancelled_at: w.cancelled_at,
            refund_cents: w.refund_cents,
            preparing_since: w.preparing_since,
            last_seq: Some(w.last_seq),
            last_source_offset: Some(w.last_source_offset),
        }
    }

    #[test]
    fn every_field_round_trips() {
        let history = vec![
            entry(0, HistoryEntryKind::Placed, None, OrderStatus::Placed),
            entry(
                1,
                HistoryEntryKind::DriverAssigned,
                Some(OrderStatus::Placed),
                OrderStatus::Placed,
            ),
            entry(
                2,
                HistoryEntryKind::Cancelled,
                Some(OrderStatus::Placed),
                OrderStatus::Cancelled,
            ),
        ];
        let state = OrderState {
            order: order(),
            history,
        };
        let w = order_write(&state, 7, &[]).unwrap();
        assert_eq!(w.last_seq, 2);
        assert_eq!(w.cancelled_by.as_deref(), Some("RESTAURANT:r-1:kitchen"));
        let rows: Vec<HistoryRow> = state
            .history
            .iter()
            .rev()
            .map(|e| history_write(e).unwrap())
            .collect();
        let (order, last_seq) = order_from_row(read_of(&w, None)).unwrap();
        let back = assemble(order, last_seq, rows).unwrap();
        assert_eq!(back, state);

        let (with_eta, _) =
            order_from_row(read_of(&w, Some(CqlTimestamp(1_700_000_900_000)))).unwrap();
        assert_eq!(
            with_eta.estimated_delivery_at,
            Some(Timestamp::from_millis(1_700_000_900_000))
        );
    }

    #[test]
    fn every_entry_kind_and_actor_kind_round_trips() {
        for kind in [
            HistoryEntryKind::Placed,
            HistoryEntryKind::Transition,
            HistoryEntryKind::Cancelled,
            HistoryEntryKind::DriverAssigned,
            HistoryEntryKind::DriverUnassigned,
        ] {
            assert_eq!(parse_kind(kind_str(kind)), Ok(kind));
        }
        for k in ActorKind::ALL {
            let a = Actor::new(k, "x:y");
            assert_eq!(parse_actor(&a.to_string()), Ok(a));
        }
        for st in OrderStatus::ALL {
            let mut e = entry(0, HistoryEntryKind::Transition, Some(st), st);
            e.actor = Actor::customer("c");
            assert_eq!(entry_from_row(history_write(&e).unwrap()).unwrap(), e);
        }
    }

    #[test]
    fn inconsistencies_are_reported() {
        let state = OrderState {
            order: order(),
            history: vec![
                entry(0, HistoryEntryKind::Placed, None, OrderStatus::Placed),
                entry(
                    1,
                    HistoryEntryKind::Transition,
                    Some(OrderStatus::Placed),
                    OrderStatus::Confirmed,
                ),
            ],
        };
        let w = order_write(&state, 7, &[]).unwrap();
        let row0 = history_write(&state.history[0]).unwrap();
        // A gap: only entry 1.
        let (o, last) = order_from_row(read_of(&w, None)).unwrap();
        let gap = assemble(
            o.clone(),
            last,
            vec![history_write(&state.history[1]).unwrap()],
        );
        assert!(matches!(gap, Err(Error::Corrupt { .. })), "{gap:?}");
        // Fewer entries than last_seq says.
        let short = assemble(o, last, vec![row0]);
        assert!(matches!(short, Err(Error::Corrupt { .. })), "{short:?}");
        // A partial row.
        let mut partial = read_of(&w, None);
        partial.status = None;
        let err = order_from_row(partial).unwrap_err();
        assert!(err.to_string().contains("status"), "{err}");
        // Half a cancellation.
        let mut half = read_of(&w, None);
        half.refund_cents = None;
        assert!(order_from_row(half).is_err());
        assert!(!Error::corrupt("o", "x").is_retriable());
    }

    #[test]
    fn sequence_numbers_must_fit_an_int() {
        let mut e = entry(0, HistoryEntryKind::Placed, None, OrderStatus::Placed);
        e.seq = u32::MAX;
        assert!(matches!(history_write(&e), Err(Error::Unstorable { .. })));
    }
}

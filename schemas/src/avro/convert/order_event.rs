//! `OrderEvent` ↔ `order_event.avsc`. The [`OrderCommand`] enum travels as the union
//! `[PlaceOrder, AssignDriver, Transition, Cancel]`: the branch index is the variant.

use super::common::{
    actor, enum_value, geo_point, order_item, read_actor, read_enum, read_geo_point,
    read_order_item,
};
use super::value::{Fields, Read, record, string, timestamp, to_array, unexpected};
use crate::avro::error::DomainError;
use crate::avro::record::{TopicRecord, sealed::AvroRecord};
use crate::events::{OrderCommand, OrderEvent, PlaceOrder, topics};
use crate::model::{CustomerId, DriverId, EventId, OrderId, RestaurantId};
use apache_avro::types::Value;

impl TopicRecord for OrderEvent {
    const TOPIC: &'static str = topics::ORDER_EVENTS;
    const RECORD: &'static str = "io.doorstep.v1.OrderEvent";
    const NOUN: &'static str = "an order event";

    fn key(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.order_id.as_str())
    }

    fn id(&self) -> std::borrow::Cow<'_, str> {
        std::borrow::Cow::Borrowed(self.event_id.as_str())
    }
}

impl AvroRecord for OrderEvent {
    fn to_avro(&self) -> Result<Value, DomainError> {
        Ok(record([
            ("event_id", string(self.event_id.as_str())),
            ("order_id", string(self.order_id.as_str())),
            ("occurred_at", timestamp(self.occurred_at)),
            ("actor", actor(&self.actor)),
            ("command", command(&self.command)?),
        ]))
    }

    fn from_avro(value: Value) -> Result<Self, DomainError> {
        let mut f = Fields::of("OrderEvent", value)?;
        Ok(Self {
            event_id: EventId(f.string("event_id")?),
            order_id: OrderId(f.string("order_id")?),
            occurred_at: f.timestamp("occurred_at")?,
            actor: f.with("actor", read_actor)?,
            command: f.with("command", read_command)?,
        })
    }
}

/// Union branch indexes, in `.avsc` order.
const PLACE: u32 = 0;
const ASSIGN_DRIVER: u32 = 1;
const TRANSITION: u32 = 2;
const CANCEL: u32 = 3;

fn command(command: &OrderCommand) -> Result<Value, DomainError> {
    let (branch, value) = match command {
        OrderCommand::Place(place) => (PLACE, place_order(place)?),
        OrderCommand::AssignDriver { driver_id } => (
            ASSIGN_DRIVER,
            record([("driver_id", string(driver_id.as_str()))]),
        ),
        OrderCommand::Transition { to } => (TRANSITION, record([("to", enum_value(*to))])),
        OrderCommand::Cancel { reason } => (CANCEL, record([("reason", string(reason))])),
    };
    Ok(Value::Union(branch, Box::new(value)))
}

fn read_command(field: &'static str, value: Value) -> Read<OrderCommand> {
    let (branch, value) = match value {
        Value::Union(branch, value) => (branch, *value),
        other => return Err(unexpected(field, "union", &other)),
    };
    match branch {
        PLACE => read_place_order("PlaceOrder", value).map(OrderCommand::Place),
        ASSIGN_DRIVER => {
            let mut f = Fields::of("AssignDriver", value)?;
            Ok(OrderCommand::AssignDriver {
                driver_id: DriverId(f.string("driver_id")?),
            })
        }
        TRANSITION => {
            let mut f = Fields::of("Transition", value)?;
            Ok(OrderCommand::Transition {
                to: f.with("to", read_enum)?,
            })
        }
        CANCEL => {
            let mut f = Fields::of("Cancel", value)?;
            Ok(OrderCommand::Cancel {
                reason: f.string("reason")?,
            })
        }
        index => Err(DomainError::UnknownBranch { field, index }),
    }
}

fn place_order(place: &PlaceOrder) -> Result<Value, DomainError> {
    Ok(record([
        ("customer_id", string(place.customer_id.as_str())),
        ("restaurant_id", string(place.restaurant_id.as_str())),
        (
            "items",
            Value::Array(place.items.iter().map(order_item).collect()),
        ),
        ("total_cents", Value::Long(place.total_cents)),
        (
            "restaurant_location",
            geo_point("restaurant_location", &place.restaurant_location)?,
        ),
        (
            "delivery_location",
            geo_point("delivery_location", &place.delivery_location)?,
        ),
    ]))
}

fn read_place_order(field: &'static str, value: Value) -> Read<PlaceOrder> {
    let mut f = Fields::of(field, value)?;
    Ok(PlaceOrder {
        customer_id: CustomerId(f.string("customer_id")?),
        restaurant_id: RestaurantId(f.string("restaurant_id")?),
        items: f
            .with("items", to_array)?
            .into_iter()
            .map(|item| read_order_item("items", item))
            .collect::<Read<_>>()?,
        total_cents: f.long("total_cents")?,
        restaurant_location: f.with("restaurant_location", read_geo_point)?,
        delivery_location: f.with("delivery_location", read_geo_point)?,
    })
}

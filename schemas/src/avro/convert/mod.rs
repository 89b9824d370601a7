//! The Rust side of each `.avsc` file: one file per topic record converting it to and from
//! apache-avro values, plus the shared pieces ([`common`]) and value helpers ([`value`]).

pub(crate) mod common;
mod eta;
mod location;
mod notification;
mod order_event;
mod rejected;
mod status_change;
mod tracking;
pub(crate) mod value;

//! Identifier newtypes. Ids are opaque strings chosen by the producing system (the gateway
//! mints UUIDv7 for new orders and events); the newtypes keep an order id from being passed
//! where a driver id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a string as this id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// Identifies an order for its whole life; the key of every order topic.
    OrderId
);
id_type!(
    /// Identifies a customer (the person who places and tracks an order).
    CustomerId
);
id_type!(
    /// Identifies a restaurant.
    RestaurantId
);
id_type!(
    /// Identifies a driver; the key of `drivers.locations.v1`.
    DriverId
);
id_type!(
    /// Identifies one event (a request from an app, a ping, a timer firing). Effects are
    /// keyed by it so that re-reading an event never repeats its effect.
    EventId
);

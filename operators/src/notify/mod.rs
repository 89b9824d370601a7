//! The notifier's message table: which status change sends which push to whom.

use doorstep_schemas::events::RecipientKind;
use doorstep_schemas::model::{OrderId, OrderStatus};

/// The customer-facing message for a status (the seed design's `STATUS_MESSAGES`), or
/// `None` when that status sends no push (`PLACED`, `EN_ROUTE`).
pub const fn customer_message(status: OrderStatus) -> Option<&'static str> {
    match status {
        OrderStatus::Confirmed => Some("Your order has been confirmed!"),
        OrderStatus::Preparing => Some("Restaurant is preparing your food"),
        OrderStatus::ReadyForPickup => Some("Driver is picking up your order"),
        OrderStatus::PickedUp => Some("Your food is on the way!"),
        OrderStatus::Delivered => Some("Your order has been delivered. Enjoy!"),
        OrderStatus::Cancelled => Some("Your order has been cancelled"),
        OrderStatus::Placed | OrderStatus::EnRoute => None,
    }
}

/// The message for `recipient` about `status` of `order_id`, or `None` when nothing is
/// sent. Restaurants and drivers are only told about cancellations (the "other parties" of
/// the cancellation rules).
pub fn message_for(
    recipient: RecipientKind,
    order_id: &OrderId,
    status: OrderStatus,
) -> Option<String> {
    match recipient {
        RecipientKind::Customer => customer_message(status).map(str::to_owned),
        RecipientKind::Restaurant | RecipientKind::Driver => (status == OrderStatus::Cancelled)
            .then(|| format!("Order {order_id} has been cancelled")),
    }
}

/// The idempotency key of a notification: one push per (order, status, recipient kind),
/// whatever replays or restarts happen.
pub fn notification_id(
    order_id: &OrderId,
    status: OrderStatus,
    recipient: RecipientKind,
) -> String {
    let who = match recipient {
        RecipientKind::Customer => "customer",
        RecipientKind::Restaurant => "restaurant",
        RecipientKind::Driver => "driver",
    };
    format!("{order_id}:{status}:{who}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_table_is_exact() {
        let expected = [
            ("CONFIRMED", "Your order has been confirmed!"),
            ("PREPARING", "Restaurant is preparing your food"),
            ("READY_FOR_PICKUP", "Driver is picking up your order"),
            ("PICKED_UP", "Your food is on the way!"),
            ("DELIVERED", "Your order has been delivered. Enjoy!"),
            ("CANCELLED", "Your order has been cancelled"),
        ];
        let mut with_message = 0;
        for st in OrderStatus::ALL {
            let want = expected
                .iter()
                .find(|(s, _)| *s == st.as_str())
                .map(|(_, m)| *m);
            assert_eq!(customer_message(st), want, "{st}");
            with_message += usize::from(want.is_some());
        }
        assert_eq!(with_message, 6);
    }

    #[test]
    fn other_parties_hear_only_of_cancellations() {
        let id = OrderId::from("o-1");
        for st in OrderStatus::ALL {
            let m = message_for(RecipientKind::Restaurant, &id, st);
            assert_eq!(m.is_some(), st == OrderStatus::Cancelled);
        }
    }

    #[test]
    fn notification_ids_differ_per_status_and_recipient() {
        let id = OrderId::from("o-1");
        let a = notification_id(&id, OrderStatus::Confirmed, RecipientKind::Customer);
        let b = notification_id(&id, OrderStatus::Preparing, RecipientKind::Customer);
        let c = notification_id(&id, OrderStatus::Confirmed, RecipientKind::Driver);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            a,
            notification_id(&id, OrderStatus::Confirmed, RecipientKind::Customer)
        );
    }
}

//! State-independent checks of what an order event carries: ids, the contents of a new order,
//! a cancellation reason. The state machine runs them when it decides (so every producer is
//! held to them), and the gateway runs the very same functions before it produces, so a bad
//! request gets an HTTP 422 with the same code instead of a reject record later.

use doorstep_schemas::events::PlaceOrder;
use doorstep_schemas::model::{GeoError, OrderItem};

/// Most lines an order may have.
pub const MAX_ITEMS: usize = 200;
/// Longest id (order, customer, restaurant, driver, item, event), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest item display name, in characters.
pub const MAX_ITEM_NAME_CHARS: usize = 200;
/// Longest cancellation reason, in bytes.
pub const MAX_REASON_LEN: usize = 500;

/// Why an event's contents are invalid whatever the order's state. [`code`](Self::code) is the
/// stable machine-readable name (the gateway's HTTP error code).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// An id is empty, too long, or uses characters outside `[A-Za-z0-9._:-]`.
    #[error("{field} {why}")]
    InvalidId {
        /// Which id (`order_id`, `restaurant_id`, ...).
        field: &'static str,
        /// What is wrong with it.
        why: IdProblem,
    },
    /// An order without items.
    #[error("an order needs at least one item")]
    NoItems,
    /// More than [`MAX_ITEMS`] lines.
    #[error("an order has at most {MAX_ITEMS} items, got {count}")]
    TooManyItems {
        /// How many were given.
        count: usize,
    },
    /// A line with quantity 0.
    #[error("item {index} ({item_id}) has quantity 0")]
    ZeroQuantity {
        /// Position of the line.
        index: usize,
        /// The line's item id.
        item_id: String,
    },
    /// A line with a negative unit price.
    #[error("item {index} ({item_id}) has a negative price")]
    NegativePrice {
        /// Position of the line.
        index: usize,
        /// The line's item id.
        item_id: String,
    },
    /// A line whose name is empty, too long or has control characters.
    #[error(
        "item {index} ({item_id}) needs a name of 1 to {MAX_ITEM_NAME_CHARS} printable characters"
    )]
    InvalidItemName {
        /// Position of the line.
        index: usize,
        /// The line's item id.
        item_id: String,
    },
    /// The sum of the lines does not fit in 64 bits.
    #[error("the order total overflows")]
    TotalOverflow,
    /// `total_cents` is not the sum of the lines.
    #[error("total_cents is {total} but the items add up to {sum}")]
    TotalMismatch {
        /// What was given.
        total: i64,
        /// What the lines add up to.
        sum: i64,
    },
    /// A position out of range.
    #[error("{field}: {source}")]
    InvalidLocation {
        /// `restaurant_location` or `delivery_location`.
        field: &'static str,
        /// The range error.
        source: GeoError,
    },
    /// A cancellation without a reason.
    #[error("a cancellation needs a reason")]
    MissingReason,
    /// A cancellation reason longer than [`MAX_REASON_LEN`] bytes.
    #[error("a cancellation reason has at most {MAX_REASON_LEN} bytes, got {len}")]
    ReasonTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A cancellation reason with control or bidirectional-formatting characters (which can
    /// make a reason shown to a restaurant or in a log read differently than it is).
    #[error(
        "a cancellation reason must be printable text without control or bidirectional-formatting characters (found U+{code:04X})"
    )]
    UnprintableReason {
        /// The first such character.
        code: u32,
    },
}

/// What is wrong with an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdProblem {
    /// Empty.
    #[error("is empty")]
    Empty,
    /// Longer than [`MAX_ID_LEN`] bytes.
    #[error("is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    /// Has a character outside `[A-Za-z0-9._:-]`.
    #[error("may only contain letters, digits, '.', '_', ':' and '-'")]
    Charset,
}

impl InvalidInput {
    /// The stable machine-readable code (snake_case).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::InvalidId { .. } => "invalid_id",
            Self::NoItems => "no_items",
            Self::TooManyItems { .. } => "too_many_items",
            Self::ZeroQuantity { .. } => "invalid_quantity",
            Self::NegativePrice { .. } => "negative_price",
            Self::InvalidItemName { .. } => "invalid_item_name",
            Self::TotalOverflow => "total_overflow",
            Self::TotalMismatch { .. } => "total_mismatch",
            Self::InvalidLocation { .. } => "invalid_location",
            Self::MissingReason => "missing_reason",
            Self::ReasonTooLong { .. } => "reason_too_long",
            Self::UnprintableReason { .. } => "unprintable_reason",
        }
    }
}

/// Checks an id: 1 to [`MAX_ID_LEN`] bytes of `[A-Za-z0-9._:-]` (UUIDs, `c-1`,
/// `restaurant:42`). `field` names it in the error.
pub fn validate_id(field: &'static str, id: &str) -> Result<(), InvalidInput> {
    let why = if id.is_empty() {
        IdProblem::Empty
    } else if id.len() > MAX_ID_LEN {
        IdProblem::TooLong
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        IdProblem::Charset
    } else {
        return Ok(());
    };
    Err(InvalidInput::InvalidId { field, why })
}

/// Checks the contents of a new order `order_id`: ids, 1 to [`MAX_ITEMS`] lines with quantity
/// ≥ 1, price ≥ 0 and a name, `total_cents` equal to the sum of the lines, positions in range.
pub fn validate_place(order_id: &str, p: &PlaceOrder) -> Result<(), InvalidInput> {
    validate_id("order_id", order_id)?;
    validate_id("customer_id", p.customer_id.as_str())?;
    validate_id("restaurant_id", p.restaurant_id.as_str())?;
    if p.items.is_empty() {
        return Err(InvalidInput::NoItems);
    }
    if p.items.len() > MAX_ITEMS {
        return Err(InvalidInput::TooManyItems {
            count: p.items.len(),
        });
    }
    let mut sum: i64 = 0;
    for (index, item) in p.items.iter().enumerate() {
        validate_item(index, item)?;
        sum = item
            .line_total_cents()
            .and_then(|line| sum.checked_add(line))
            .ok_or(InvalidInput::TotalOverflow)?;
    }
    if p.total_cents != sum {
        return Err(InvalidInput::TotalMismatch {
            total: p.total_cents,
            sum,
        });
    }
    p.restaurant_location
        .validate()
        .map_err(|source| InvalidInput::InvalidLocation {
            field: "restaurant_location",
            source,
        })?;
    p.delivery_location
        .validate()
        .map_err(|source| InvalidInput::InvalidLocation {
            field: "delivery_location",
            source,
        })?;
    Ok(())
}

fn validate_item(index: usize, item: &OrderItem) -> Result<(), InvalidInput> {
    validate_id("item_id", &item.item_id)?;
    let item_id = || item.item_id.clone();
    if item.quantity == 0 {
        return Err(InvalidInput::ZeroQuantity {
            index,
            item_id: item_id(),
        });
    }
    if item.unit_price_cents < 0 {
        return Err(InvalidInput::NegativePrice {
            index,
            item_id: item_id(),
        });
    }
    let name = item.name.trim();
    // The whole name is checked, not the trimmed one: the name travels as sent, and a
    // trailing U+0085 (a control character that is also whitespace) would ride along.
    if name.is_empty()
        || name.chars().count() > MAX_ITEM_NAME_CHARS
        || item.name.chars().any(is_unprintable)
    {
        return Err(InvalidInput::InvalidItemName {
            index,
            item_id: item_id(),
        });
    }
    Ok(())
}

/// Checks a cancellation reason: not blank, at most [`MAX_REASON_LEN`] bytes, no control or
/// bidirectional-formatting characters. Returns it trimmed.
pub fn validate_reason(reason: &str) -> Result<&str, InvalidInput> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(InvalidInput::MissingReason);
    }
    if reason.len() > MAX_REASON_LEN {
        return Err(InvalidInput::ReasonTooLong { len: reason.len() });
    }
    if let Some(c) = reason.chars().find(|c| is_unprintable(*c)) {
        return Err(InvalidInput::UnprintableReason { code: u32::from(c) });
    }
    Ok(reason)
}

/// Whether `c` must not appear in text people read (item names, reasons): a control character
/// or a bidirectional-formatting one (embeddings, overrides, isolates, marks).
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {

    #[test]
    fn reasons_with_control_or_bidi_characters_are_refused() {
        assert_eq!(
            validate_reason("  ordered by mistake "),
            Ok("ordered by mistake")
        );
        for bad in [
            "evil\u{202E}txt.exe",
            "a\u{0007}b",
            "x\u{2066}y",
            "ok\u{200F}",
        ] {
            assert!(
                matches!(
                    validate_reason(bad),
                    Err(InvalidInput::UnprintableReason { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            InvalidInput::UnprintableReason { code: 0x202E }.code(),
            "unprintable_reason"
        );
    }

    /// A name is produced as sent, so it is checked whole: a trailing U+0085 (a control
    /// character `trim` takes for whitespace) made it through before (found by
    /// tests/tests/hostile_input.rs).
    #[test]
    fn item_names_are_checked_whole() {
        for bad in ["Pizza\u{0085}", "\u{0085}Pizza", "Piz\u{202E}za"] {
            let mut p = place_cmd();
            p.items[0].name = bad.into();
            assert!(
                matches!(
                    validate_place("o-1", &p),
                    Err(InvalidInput::InvalidItemName { .. })
                ),
                "{bad:?}"
            );
        }
        let mut p = place_cmd();
        p.items[0].name = "  Pizza  ".into();
        assert_eq!(validate_place("o-1", &p), Ok(()));
    }

    use super::*;
    use crate::order::test_support::place_cmd;

    fn code(r: Result<(), InvalidInput>) -> Option<&'static str> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn ids() {
        assert!(validate_id("order_id", "0190f5c2-7d3e-7cc1-9a63-0f6b5d1d7a01").is_ok());
        assert!(validate_id("order_id", "restaurant:42.a_b").is_ok());
        assert_eq!(code(validate_id("order_id", "")), Some("invalid_id"));
        assert_eq!(code(validate_id("order_id", "a b")), Some("invalid_id"));
        assert_eq!(code(validate_id("order_id", "é")), Some("invalid_id"));
        assert!(validate_id("order_id", &"a".repeat(MAX_ID_LEN)).is_ok());
        let e = validate_id("driver_id", &"a".repeat(MAX_ID_LEN + 1)).unwrap_err();
        assert_eq!(e.to_string(), "driver_id is longer than 128 bytes");
    }

    #[test]
    fn a_good_order_passes() {
        assert_eq!(validate_place("o-1", &place_cmd()), Ok(()));
    }

    #[test]
    fn every_problem_has_its_code() {
        let check = |f: fn(&mut PlaceOrder), want: &str| {
            let mut p = place_cmd();
            f(&mut p);
            assert_eq!(code(validate_place("o-1", &p)), Some(want), "{p:?}");
        };
        check(|p| p.items.clear(), "no_items");
        check(
            |p| {
                let item = p.items[0].clone();
                p.items = vec![item; MAX_ITEMS + 1];
            },
            "too_many_items",
        );
        check(|p| p.items[1].quantity = 0, "invalid_quantity");
        check(|p| p.items[0].unit_price_cents = -1, "negative_price");
        check(|p| p.items[0].name = " ".into(), "invalid_item_name");
        check(|p| p.items[0].name = "a\u{7}".into(), "invalid_item_name");
        check(|p| p.items[0].item_id = "x y".into(), "invalid_id");
        check(|p| p.total_cents += 1, "total_mismatch");
        check(
            |p| {
                p.items[0].unit_price_cents = i64::MAX;
                p.items[0].quantity = 2;
            },
            "total_overflow",
        );
        check(|p| p.delivery_location.lat = 91.0, "invalid_location");
        check(|p| p.restaurant_location.lng = f64::NAN, "invalid_location");
        check(|p| p.restaurant_id = "".into(), "invalid_id");
        assert_eq!(code(validate_place("", &place_cmd())), Some("invalid_id"));
    }

    #[test]
    fn reasons() {
        assert_eq!(validate_reason("  closed  "), Ok("closed"));
        assert_eq!(
            validate_reason(" \n ").map_err(|e| e.code()),
            Err("missing_reason")
        );
        assert_eq!(
            validate_reason(&"x".repeat(MAX_REASON_LEN + 1)).map_err(|e| e.code()),
            Err("reason_too_long")
        );
    }
}

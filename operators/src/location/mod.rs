//! The location filter: which GPS pings of a driver are believable, and the region a
//! position belongs to (for sharding the active-drivers GEO set).
//!
//! [`LocationFilter::decide`] judges one ping against the driver's last *accepted* ping and
//! a caller-given "now" (the ping's `received_at` in the pipeline, so a replay decides
//! exactly as the live run did). Checks, in order: `out_of_range`, `duplicate` (same ping
//! id or same `recorded_at` as the last accepted), `out_of_order` (older than the last
//! accepted), `stale` (older than now − `max_age_ms`), `impossible_speed` (the implied speed
//! from the last accepted point exceeds `max_speed_mps`). Rejected pings never become the
//! last accepted one.

use doorstep_schemas::events::LocationPing;
use doorstep_schemas::model::{EventId, GeoPoint, Timestamp};
use std::fmt;

/// The thresholds of the filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocationPolicy {
    /// Fastest believable speed between two fixes, m/s (70 m/s = 252 km/h).
    pub max_speed_mps: f64,
    /// Oldest believable fix relative to "now", milliseconds.
    pub max_age_ms: i64,
}

impl Default for LocationPolicy {
    fn default() -> Self {
        Self {
            max_speed_mps: 70.0,
            max_age_ms: 120_000,
        }
    }
}

/// What the filter remembers of a driver's last accepted ping.
#[derive(Debug, Clone, PartialEq)]
pub struct LastPing {
    /// Its id.
    pub ping_id: EventId,
    /// Where.
    pub location: GeoPoint,
    /// When the phone took the fix.
    pub recorded_at: Timestamp,
}

impl LastPing {
    /// The memory of an accepted ping.
    pub fn of(ping: &LocationPing) -> Self {
        Self {
            ping_id: ping.ping_id.clone(),
            location: ping.location,
            recorded_at: ping.recorded_at,
        }
    }
}

/// Why a ping is refused. [`PingRejection::code`] is the machine-readable reason.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PingRejection {
    /// Coordinates outside the valid ranges.
    OutOfRange(String),
    /// Same ping id or same fix time as the last accepted ping.
    Duplicate,
    /// Older than the last accepted ping by this many milliseconds.
    OutOfOrder {
        /// How much older.
        behind_ms: i64,
    },
    /// Older than now − max age.
    Stale {
        /// Age of the fix at "now", milliseconds.
        age_ms: i64,
    },
    /// The implied speed from the last accepted point is too high.
    ImpossibleSpeed {
        /// Implied speed, m/s.
        speed_mps: f64,
        /// Distance from the last accepted point, metres.
        distance_m: f64,
    },
}

impl PingRejection {
    /// The stable reason code (`out_of_range`, `duplicate`, `out_of_order`, `stale`,
    /// `impossible_speed`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::OutOfRange(_) => "out_of_range",
            Self::Duplicate => "duplicate",
            Self::OutOfOrder { .. } => "out_of_order",
            Self::Stale { .. } => "stale",
            Self::ImpossibleSpeed { .. } => "impossible_speed",
        }
    }
}

impl fmt::Display for PingRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange(e) => write!(f, "position out of range: {e}"),
            Self::Duplicate => f.write_str("same ping id or fix time as the last accepted ping"),
            Self::OutOfOrder { behind_ms } => {
                write!(f, "fix is {behind_ms} ms older than the last accepted one")
            }
            Self::Stale { age_ms } => write!(f, "fix is {age_ms} ms old"),
            Self::ImpossibleSpeed {
                speed_mps,
                distance_m,
            } => write!(
                f,
                "implied speed {speed_mps:.1} m/s over {distance_m:.0} m from the last accepted fix"
            ),
        }
    }
}

/// The per-driver ping filter. Pure: the caller keeps the last accepted ping per driver.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LocationFilter {
    /// Thresholds.
    pub policy: LocationPolicy,
}

impl LocationFilter {
    /// A filter with `policy`.
    pub const fn new(policy: LocationPolicy) -> Self {
        Self { policy }
    }

    /// Accepts `ping` (`Ok`) or says why not, given the driver's last accepted ping and now.
    pub fn decide(
        &self,
        last: Option<&LastPing>,
        ping: &LocationPing,
        now: Timestamp,
    ) -> Result<(), PingRejection> {
        ping.location
            .validate()
            .map_err(|e| PingRejection::OutOfRange(e.to_string()))?;
        if let Some(last) = last {
            if last.ping_id == ping.ping_id || last.recorded_at == ping.recorded_at {
                return Err(PingRejection::Duplicate);
            }
            if ping.recorded_at < last.recorded_at {
                return Err(PingRejection::OutOfOrder {
                    behind_ms: last.recorded_at.millis_since(ping.recorded_at),
                });
            }
        }
        let age_ms = now.millis_since(ping.recorded_at);
        if age_ms > self.policy.max_age_ms {
            return Err(PingRejection::Stale { age_ms });
        }
        if let Some(last) = last {
            let distance_m = last.location.distance_m(&ping.location);
            // recorded_at is strictly later here (equal is a duplicate, earlier out of order).
            let dt_s = ping.recorded_at.millis_since(last.recorded_at) as f64 / 1000.0;
            let speed_mps = distance_m / dt_s;
            if speed_mps > self.policy.max_speed_mps {
                return Err(PingRejection::ImpossibleSpeed {
                    speed_mps,
                    distance_m,
                });
            }
        }
        Ok(())
    }
}

/// The region of a position: the south-west corner of its `cell_deg` × `cell_deg` grid cell,
/// as `"<lat>:<lng>"` with two decimals, more for cells under 0.01° (e.g. `"60.00:24.50"` for
/// Helsinki at 0.5°, `"60.169:24.938"` at 0.001°). Stable
/// for a given cell size; a non-positive or non-finite `cell_deg` counts as 1°.
pub fn region_of(point: GeoPoint, cell_deg: f64) -> String {
    let cell = if cell_deg.is_finite() && cell_deg > 0.0 {
        cell_deg
    } else {
        1.0
    };
    // The poles and the antimeridian belong to the cell below/left of them.
    let lat = point.lat.clamp(-90.0, 90.0 - cell / 2.0);
    let lng = point.lng.clamp(-180.0, 180.0 - cell / 2.0);
    let corner = |v: f64| (v / cell).floor() * cell;
    // Enough decimals that neighbouring cells never print the same (2 for cells ≥ 0.01°).
    let decimals = (-cell.log10()).ceil().clamp(2.0, 9.0) as usize;
    let text = |v: f64| {
        let t = format!("{:.*}", decimals, corner(v));
        if t.trim_start_matches('-')
            .trim_matches(['0', '.'])
            .is_empty()
        {
            t.trim_start_matches('-').to_owned()
        } else {
            t
        }
    };
    format!("{}:{}", text(lat), text(lng))
}

#[cfg(test)]
mod tests;

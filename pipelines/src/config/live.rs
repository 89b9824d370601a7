//! The live-tracking settings: the location filter's limits (location pipeline) and the
//! gateway's WebSocket tuning.

use super::{ConfigError, Source, invalid, parse};
use doorstep_operators::location::LocationPolicy;
use std::time::Duration;

/// Location filter limits and WebSocket tuning.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct LiveConfig {
    /// The location filter's limits.
    pub filter: LocationPolicy,
    /// Region grid cell of the active-drivers GEO sets, degrees.
    pub region_cell_deg: f64,
    /// Server ping interval of WebSockets.
    pub ws_heartbeat: Duration,
    /// Status/ETA frames a slow customer socket may have waiting before it is closed.
    pub ws_outbox_capacity: usize,
    /// Longest one frame write may take before the socket is dropped.
    pub ws_send_timeout: Duration,
    /// Kernel send buffer per gateway connection, bytes (`None`: the OS's).
    pub socket_send_buffer: Option<usize>,
}

impl LiveConfig {
    /// Reads and validates the `location.*` and `gateway.ws_*` settings.
    pub(super) fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let max_speed_mps: f64 = parse(src, "location.max_speed_mps")?;
        if !(max_speed_mps.is_finite() && max_speed_mps > 0.0) {
            return Err(invalid(
                "location.max_speed_mps",
                &max_speed_mps.to_string(),
                "must be > 0",
            ));
        }
        let max_age_ms: i64 = parse(src, "location.max_age_ms")?;
        if max_age_ms < 1_000 {
            return Err(invalid(
                "location.max_age_ms",
                &max_age_ms.to_string(),
                "must be ≥ 1000",
            ));
        }
        let region_cell_deg: f64 = parse(src, "location.region_cell_deg")?;
        if !(region_cell_deg.is_finite() && region_cell_deg > 0.0 && region_cell_deg <= 90.0) {
            return Err(invalid(
                "location.region_cell_deg",
                &region_cell_deg.to_string(),
                "must be in (0, 90]",
            ));
        }
        let heartbeat_ms: u64 = parse(src, "gateway.ws_heartbeat_ms")?;
        if heartbeat_ms < 100 {
            return Err(invalid(
                "gateway.ws_heartbeat_ms",
                &heartbeat_ms.to_string(),
                "must be ≥ 100",
            ));
        }
        let capacity: usize = parse(src, "gateway.ws_outbox_capacity")?;
        if capacity == 0 {
            return Err(invalid("gateway.ws_outbox_capacity", "0", "must be ≥ 1"));
        }
        let send_timeout_ms: u64 = parse(src, "gateway.ws_send_timeout_ms")?;
        if send_timeout_ms < 10 {
            return Err(invalid(
                "gateway.ws_send_timeout_ms",
                &send_timeout_ms.to_string(),
                "must be ≥ 10",
            ));
        }
        let send_buffer: usize = parse(src, "gateway.socket_send_buffer")?;
        if send_buffer != 0 && send_buffer < 4096 {
            return Err(invalid(
                "gateway.socket_send_buffer",
                &send_buffer.to_string(),
                "0 (the OS's default) or ≥ 4096",
            ));
        }
        Ok(Self {
            filter: LocationPolicy {
                max_speed_mps,
                max_age_ms,
            },
            region_cell_deg,
            ws_heartbeat: Duration::from_millis(heartbeat_ms),
            ws_outbox_capacity: capacity,
            ws_send_timeout: Duration::from_millis(send_timeout_ms),
            socket_send_buffer: (send_buffer != 0).then_some(send_buffer),
        })
    }
}

//! The live-tracking metrics of the gateway, `doorstep_gateway_websocket_*` (per stream:
//! `track` for customers, `driver` for driver ping streams) and `doorstep_gateway_live_*`
//! (the shared Redis subscriptions).

use crate::ops::MetricSet;
use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// WebSocket connections, frames in and out, conflation, lag.
#[derive(Clone, Debug)]
pub struct TrackingMetrics {
    /// `doorstep_gateway_websocket_connections{stream}`: open WebSockets (`track`, `driver`).
    pub connections: IntGaugeVec,
    /// `doorstep_gateway_websocket_messages_sent_total{stream,type}`: frames written.
    pub sent: IntCounterVec,
    /// `doorstep_gateway_websocket_messages_conflated_total{stream}`: location frames
    /// replaced before a slow client got them.
    pub conflated: IntCounterVec,
    /// `doorstep_gateway_websocket_closed_total{stream,reason}`: sockets closed, by why.
    pub closed: IntCounterVec,
    /// `doorstep_gateway_websocket_resumes_total{outcome}`: reconnects with `since`, by
    /// outcome (`recovered`: the missed frames were replayed; `snapshot`: the history did not
    /// reach back).
    pub resumes: IntCounterVec,
    /// `doorstep_gateway_live_channels`: order channels this process is subscribed to.
    pub channels: IntGauge,
    /// `doorstep_gateway_live_frames_received_total{type}`: frames received from Redis.
    pub received: IntCounterVec,
    /// `doorstep_gateway_live_lag_seconds{type}`: event time (GPS fix, status change, ETA
    /// computation) to the frame's arrival at the gateway.
    pub lag: HistogramVec,
    /// `doorstep_gateway_live_bad_frames_total`: published frames that are not the contract.
    pub bad_frames: IntCounter,
    /// `doorstep_gateway_live_unrouted_frames_total`: frames on a channel nobody follows any
    /// more (the last follower left while they were in flight).
    pub unrouted: IntCounter,
    /// `doorstep_gateway_live_interruptions_total`: Redis live-feed connection losses.
    pub interruptions: IntCounter,
}

impl TrackingMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            connections: IntGaugeVec::new(
                Opts::new(
                    "doorstep_gateway_websocket_connections",
                    "Open WebSocket connections, by stream (track, driver)",
                ),
                &["stream"],
            )?,
            sent: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_websocket_messages_sent_total",
                    "Frames written to WebSockets, by stream and frame type",
                ),
                &["stream", "type"],
            )?,
            conflated: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_websocket_messages_conflated_total",
                    "Location frames replaced by a newer one before a slow client got them",
                ),
                &["stream"],
            )?,
            closed: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_websocket_closed_total",
                    "WebSockets closed, by stream and reason",
                ),
                &["stream", "reason"],
            )?,
            resumes: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_websocket_resumes_total",
                    "Tracking reconnects with since, by outcome (recovered, snapshot)",
                ),
                &["outcome"],
            )?,
            channels: IntGauge::new(
                "doorstep_gateway_live_channels",
                "Order live channels this gateway process is subscribed to",
            )?,
            received: IntCounterVec::new(
                Opts::new(
                    "doorstep_gateway_live_frames_received_total",
                    "Live frames received from Redis, by frame type",
                ),
                &["type"],
            )?,
            lag: HistogramVec::new(
                HistogramOpts::new(
                    "doorstep_gateway_live_lag_seconds",
                    "From the event (GPS fix, status change, ETA computation) to its frame reaching the gateway",
                )
                .buckets(prometheus::exponential_buckets(0.001, 2.0, 16)?),
                &["type"],
            )?,
            bad_frames: IntCounter::new(
                "doorstep_gateway_live_bad_frames_total",
                "Published live frames that do not follow the live contract (not forwarded)",
            )?,
            unrouted: IntCounter::new(
                "doorstep_gateway_live_unrouted_frames_total",
                "Live frames that arrived for a channel no socket follows any more",
            )?,
            interruptions: IntCounter::new(
                "doorstep_gateway_live_interruptions_total",
                "Losses of the Redis live-feed connection (followers are closed to resynchronise)",
            )?,
        };
        m.register_in(registry)?;
        Ok(m)
    }
}

impl MetricSet for TrackingMetrics {
    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.connections.clone()),
            Box::new(self.sent.clone()),
            Box::new(self.conflated.clone()),
            Box::new(self.closed.clone()),
            Box::new(self.resumes.clone()),
            Box::new(self.channels.clone()),
            Box::new(self.received.clone()),
            Box::new(self.lag.clone()),
            Box::new(self.bad_frames.clone()),
            Box::new(self.unrouted.clone()),
            Box::new(self.interruptions.clone()),
        ]
    }
}

//! Structured logging with `tracing`: human text or JSON lines (`log.format = json`), filtered
//! by `log.filter` (`DOORSTEP_LOG`), always on stderr.
//!
//! A JSON line is one event: `timestamp`, `level`, `target`, the event's fields flattened
//! beside `message`, and the spans it happened in (`span` for the innermost, `spans` for the
//! whole stack, each with its fields), so a log pipeline can follow one order or batch
//! across lines without parsing sentences.

use crate::config::LogFormat;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber (and routes `log` records into it). Safe to call once per
/// process (later calls do nothing).
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = match format {
        LogFormat::Json => json(filter, std::io::stderr).try_init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .finish()
            .try_init(),
    };
}

/// The JSON-lines subscriber writing to `writer`.
pub fn json<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_fields_and_spans_and_respect_the_filter() {
        let buf = Buffer::default();
        let out = buf.clone();
        let subscriber = json(EnvFilter::new("info"), move || out.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("batch", pipeline = "status", records = 3);
            let _g = span.enter();
            tracing::warn!(order_id = "o-1", attempt = 2, "sink failed; retrying");
            tracing::debug!("filtered out");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "sink failed; retrying");
        assert_eq!(line["order_id"], "o-1");
        assert_eq!(line["attempt"], 2);
        assert_eq!(line["span"]["name"], "batch");
        assert_eq!(line["span"]["pipeline"], "status");
        assert_eq!(line["spans"][0]["records"], 3);
        assert!(line["timestamp"].is_string() && line["target"].is_string());
    }
}

//! Progress of a replay: a one-line bar on a terminal (records, %, events/s, time left),
//! a log line every 10 s otherwise, and the summary printed at the end.

use super::ReplayCounts;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The numbers shown while a replay runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Records processed.
    pub done: u64,
    /// Records in the plan.
    pub total: u64,
    /// Since the start.
    pub elapsed: Duration,
}

impl Progress {
    /// Records per second so far.
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }

    /// Time left at the current rate (`None` before the first record).
    pub fn eta(&self) -> Option<Duration> {
        let rate = self.rate();
        (self.done > 0 && rate > 0.0)
            .then(|| Duration::from_secs_f64(self.total.saturating_sub(self.done) as f64 / rate))
    }

    /// `[#####.....]  12,345/40,000  31%  2,100 ev/s  ETA 13s`.
    pub fn line(&self) -> String {
        const WIDTH: usize = 30;
        let frac = if self.total == 0 {
            1.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        };
        let filled = (frac * WIDTH as f64).round() as usize;
        let eta = self
            .eta()
            .map_or_else(|| "--".to_owned(), |d| format!("{}s", d.as_secs()));
        format!(
            "[{}{}] {}/{} {:>3.0}% {:.0} ev/s ETA {eta}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            self.done,
            self.total,
            frac * 100.0,
            self.rate(),
        )
    }
}

/// Shows progress until the returned handle is aborted (or dropped with the runtime).
pub fn spawn_display(counts: Arc<ReplayCounts>, total: u64) -> tokio::task::JoinHandle<()> {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    tokio::spawn(async move {
        let period = if terminal {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(10)
        };
        loop {
            tokio::time::sleep(period).await;
            let p = Progress {
                done: ReplayCounts::get(&counts.records),
                total,
                elapsed: started.elapsed(),
            };
            if terminal {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r{}", p.line());
                let _ = err.flush();
            } else {
                tracing::info!(done = p.done, total, rate = format!("{:.0}/s", p.rate()), eta = ?p.eta(), "replay progress");
            }
        }
    })
}

/// What a replay did, printed at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Records read.
    pub records: u64,
    /// Events accepted and written.
    pub accepted: u64,
    /// Events already processed in the target keyspace.
    pub skipped: u64,
    /// Events the state machine refused, by reason.
    pub rejected: Vec<(String, u64)>,
    /// Records that are not order events.
    pub undecodable: u64,
    /// Order rows written.
    pub orders_written: u64,
    /// Prep-time observations written.
    pub prep_times_written: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl Summary {
    /// The summary of `counts` after `elapsed`.
    pub fn of(counts: &ReplayCounts, elapsed: Duration) -> Self {
        let rejected = counts
            .reasons
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        Self {
            records: ReplayCounts::get(&counts.records),
            accepted: ReplayCounts::get(&counts.accepted),
            skipped: ReplayCounts::get(&counts.skipped),
            rejected,
            undecodable: ReplayCounts::get(&counts.undecodable),
            orders_written: ReplayCounts::get(&counts.orders_written),
            prep_times_written: ReplayCounts::get(&counts.prep_times_written),
            elapsed,
        }
    }

    /// Records per second over the whole replay.
    pub fn rate(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rejected: u64 = self.rejected.iter().map(|(_, n)| n).sum();
        writeln!(
            f,
            "replayed {} records in {:.1}s ({:.0} events/s)",
            self.records,
            self.elapsed.as_secs_f64(),
            self.rate()
        )?;
        writeln!(f, "  accepted and written   {}", self.accepted)?;
        writeln!(f, "  already processed      {}", self.skipped)?;
        write!(f, "  refused                {rejected}")?;
        for (code, n) in &self.rejected {
            write!(f, "  {code}={n}")?;
        }
        writeln!(f)?;
        writeln!(f, "  undecodable            {}", self.undecodable)?;
        writeln!(f, "  order rows written     {}", self.orders_written)?;
        write!(f, "  prep times written     {}", self.prep_times_written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_rate_and_eta() {
        let p = Progress {
            done: 500,
            total: 2_000,
            elapsed: Duration::from_secs(5),
        };
        assert!((p.rate() - 100.0).abs() < 1e-9);
        assert_eq!(p.eta(), Some(Duration::from_secs(15)));
        let line = p.line();
        assert!(line.contains("500/2000"), "{line}");
        assert!(line.contains(" 25%"), "{line}");
        assert!(line.contains("ETA 15s"), "{line}");
        let none = Progress {
            done: 0,
            total: 10,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(none.eta(), None);
    }
}

//! Which offsets a replay reads: per partition, from the first record at or after the start
//! time to the first record at or after the end time (or the end of the partition as of
//! planning).

use doorstep_connectors::kafka::{KafkaConfig, Lookup, PartitionRange, TopicSeeker};
use doorstep_schemas::model::Timestamp;

/// The ranges a replay reads and how they were found.
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// The full topic name.
    pub topic: String,
    /// One range per partition.
    pub ranges: Vec<PartitionRange>,
    /// How the times were turned into offsets (`None` when no time was given).
    pub lookup: Option<Lookup>,
}

impl ReplayPlan {
    /// Plans a replay of `topic` between `from` (inclusive; `None` = the beginning) and
    /// `until` (exclusive; `None` = the end now). `force_scan` skips the broker's time index.
    pub async fn new(
        kafka: &KafkaConfig,
        topic: &str,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
        force_scan: bool,
    ) -> Result<Self, doorstep_connectors::kafka::Error> {
        let seeker = TopicSeeker::new(kafka, topic)?;
        let (ranges, lookup) = seeker
            .ranges(
                from.map(Timestamp::as_millis),
                until.map(Timestamp::as_millis),
                force_scan,
            )
            .await?;
        Ok(Self {
            topic: topic.to_owned(),
            ranges,
            lookup,
        })
    }

    /// Records to read in all.
    pub fn total(&self) -> i64 {
        self.ranges.iter().map(PartitionRange::len).sum()
    }

    /// The stop offsets of the non-empty ranges, for [`crate::runtime::Runtime::bounded`].
    pub fn stop_offsets(&self) -> crate::runtime::StopOffsets {
        self.ranges
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| (r.partition, r.end))
            .collect()
    }

    /// `(topic, partition, start)` of the non-empty ranges, for assigning a consumer.
    pub fn starts(&self) -> Vec<(&str, i32, i64)> {
        self.ranges
            .iter()
            .filter(|r| !r.is_empty())
            .map(|r| (self.topic.as_str(), r.partition, r.start))
            .collect()
    }
}

/// Parses a point in time: RFC 3339 in UTC (`2026-11-25T08:00:00Z`, seconds and fraction
/// optional, or a date alone `2026-11-25`), milliseconds since the epoch, or an age relative
/// to `now` (`24h`, `90m`, `7d` ago; see `doorstep token --ttl` for the units).
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.len() >= 10 {
        return s
            .parse::<i64>()
            .map(Timestamp::from_millis)
            .map_err(|e| format!("{s:?}: {e}"));
    }
    if s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-') {
        return parse_rfc3339(s)
            .ok_or_else(|| format!("{s:?} is not an RFC 3339 UTC time like 2026-11-25T08:00:00Z"));
    }
    let age = crate::cli::parse_duration(s).map_err(|e| {
        format!("{e} (a time is RFC 3339 UTC, epoch milliseconds, or an age like 24h)")
    })?;
    Ok(now.plus_millis(-i64::try_from(age.as_millis()).unwrap_or(i64::MAX)))
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    if let Some(t) = time {
        let t = t.strip_suffix('Z').or_else(|| t.strip_suffix("+00:00"))?;
        let (hms, frac) = t.split_once('.').unwrap_or((t, ""));
        let mut parts = hms.split(':');
        let h: i64 = parts.next()?.parse().ok()?;
        let m: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let sec: i64 = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        if h > 23 || m > 59 || sec > 60 || parts.next().is_some() {
            return None;
        }
        let frac_ms: i64 = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain("000".chars()).take(3).collect();
            digits.parse().ok()?
        };
        millis += ((h * 60 + m) * 60 + sec) * 1000 + frac_ms;
    }
    Some(Timestamp::from_millis(millis))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let now = Timestamp::from_millis(1_800_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:00Z", now), Ok(Timestamp(0)));
        assert_eq!(
            parse_time("2026-11-25T08:30:15.250Z", now),
            Ok(Timestamp(1_795_595_415_250))
        );
        assert_eq!(
            parse_time("2026-11-25", now),
            Ok(Timestamp(1_795_564_800_000))
        );
        assert_eq!(
            parse_time("1795564800000", now),
            Ok(Timestamp(1_795_564_800_000))
        );
        assert_eq!(
            parse_time("24h", now),
            Ok(Timestamp(1_800_000_000_000 - 86_400_000))
        );
        assert!(parse_time("2026-13-01", now).is_err());
        assert!(parse_time("2026-11-25T08:00:00+02:00", now).is_err());
        assert!(parse_time("yesterday", now).is_err());
    }
}

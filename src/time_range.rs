//! Time filters of the analysts' commands (`--since`/`--until` of `orchestra history`,
//! `export` and `report`): an instant is epoch milliseconds, a UTC date or date-time, or a
//! span back from now.
//!
//! ```
//! use orchestra::time_range::{parse_instant, TimeRange};
//! let now = 1_764_720_000_000; // 2025-12-03T00:00:00Z
//! assert_eq!(parse_instant("2025-12-02", now).unwrap(), now - 86_400_000);
//! assert_eq!(parse_instant("2025-12-02T12:00:00Z", now).unwrap(), now - 43_200_000);
//! assert_eq!(parse_instant("90m", now).unwrap(), now - 5_400_000);
//! assert_eq!(parse_instant("1764720000000", now).unwrap(), now);
//! let range = TimeRange { since: Some(now - 1000), until: Some(now) };
//! assert!(range.contains(now - 1000) && !range.contains(now));
//! ```

use thiserror::Error;

/// A malformed `--since`/`--until` value.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{value}` is not a time: use epoch milliseconds, YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.mmm]]Z (UTC) or a span back from now such as 30m, 12h, 7d")]
pub struct TimeParseError {
    /// The value given.
    pub value: String,
}

/// A half-open interval `[since, until)` of epoch milliseconds; an open end is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub since: Option<i64>,
    /// Exclusive end.
    pub until: Option<i64>,
}

impl TimeRange {
    /// Parses optional `--since`/`--until` values, relative spans counted back from `now_ms`.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        now_ms: i64,
    ) -> Result<Self, TimeParseError> {
        Ok(Self {
            since: since.map(|s| parse_instant(s, now_ms)).transpose()?,
            until: until.map(|s| parse_instant(s, now_ms)).transpose()?,
        })
    }

    /// Whether `ts` lies in the range.
    pub fn contains(&self, ts: i64) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }

    /// Whether `[start, end)` overlaps the range.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        self.since.is_none_or(|s| end > s) && self.until.is_none_or(|u| start < u)
    }

    /// Whether neither end is set.
    pub fn is_unbounded(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }
}

/// The current time in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses one instant (see the module docs).
pub fn parse_instant(value: &str, now_ms: i64) -> Result<i64, TimeParseError> {
    let err = || TimeParseError {
        value: value.to_string(),
    };
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().map_err(|_| err());
    }
    if let Some(unit) = v.chars().last().filter(|c| "smhdw".contains(*c)) {
        let num = &v[..v.len() - 1];
        if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = num.parse().map_err(|_| err())?;
            let ms = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                _ => 7 * 86_400_000,
            };
            return n.checked_mul(ms).map(|span| now_ms - span).ok_or_else(err);
        }
    }
    parse_utc(v).ok_or_else(err)
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS[.fff]][Z]` (UTC).
fn parse_utc(v: &str) -> Option<i64> {
    let (date, time) = match v.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').unwrap_or(t))),
        None => (v, None),
    };
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(y, m, day) * 86_400_000;
    if let Some(t) = time {
        let (hms, frac) = match t.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        let mut parts = hms.split(':');
        let h: i64 = num(parts.next()?, 2)?;
        let min: i64 = num(parts.next()?, 2)?;
        let s: i64 = match parts.next() {
            Some(p) => num(p, 2)?,
            None => 0,
        };
        if parts.next().is_some() || h > 23 || min > 59 || s > 60 {
            return None;
        }
        let millis = match frac {
            Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                let padded = format!("{f:0<3}");
                padded[..3].parse::<i64>().ok()?
            }
            Some(_) => return None,
            None => 0,
        };
        ms += h * 3_600_000 + min * 60_000 + s * 1000 + millis;
    }
    Some(ms)
}

fn num(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_through_format_ts() {
        for ms in [0, 1_764_720_000_123, 951_782_400_000, 4_102_444_799_999] {
            let text = crate::views::format_ts(ms);
            assert_eq!(parse_instant(&text, 0), Ok(ms), "{text}");
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01",
            "2025-12-01T25:00Z",
            "12x",
            "-5m",
            "2025-1-1",
        ] {
            assert!(parse_instant(bad, 0).is_err(), "{bad}");
        }
        assert_eq!(parse_instant("1w", 7 * 86_400_000), Ok(0));
    }
}

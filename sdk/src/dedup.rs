//! Deduplication by CloudEvents identity: the rule the runtime applies to a
//! view with `dedup` on, and the SDKs' mock hosts apply the same way, so an
//! author's tests see what the runtime will do.
//!
//! # The rule
//!
//! - An event's identity is its `source` and `id`, for the subject it
//!   updates ("consumers MAY assume that events with identical source and
//!   id are duplicates", CloudEvents 1.0).
//! - Each event has a **time**: with [`TimeSource::Record`] (the default)
//!   the Kafka record's timestamp, so a copy re-sent later has its own;
//!   with [`TimeSource::Event`] its CloudEvents `time` (RFC 3339), or the
//!   record's timestamp when it has none or it does not parse. An event
//!   with neither counts as time 0.
//! - An event is a **duplicate** when an event of the same identity was
//!   applied to the subject first at time `first`, and its own time is
//!   less than `keep` after `first` (or before it). A duplicate is not
//!   applied; an event applied (set, delete or ignore) is remembered from
//!   its time. Failed events are not remembered: a copy of one is tried
//!   again. A copy `keep` or more after the first is applied, and
//!   remembered from its own time.
//! - The window is measured between the copies, by their own times, so a
//!   partition read late (catching up after an outage, a rebuild) is
//!   judged as it was written.
//! - A runtime forgets an identity once its **watermark** is `keep` past
//!   it (the mock hosts never forget): the stream time of its slowest
//!   partition still being read, never later than the machine's clock. So
//!   with [`TimeSource::Event`], where copies carry the first's time, a
//!   copy is caught until the view has read `keep` past the event's time.

use std::time::Duration;

/// Which time an event's window is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeSource {
    /// The Kafka record's timestamp: a re-send has its own.
    #[default]
    Record,
    /// The event's CloudEvents `time`, else the record's timestamp.
    Event,
}

impl TimeSource {
    /// The name in configs and scenario files: `record` or `event`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Record => "record",
            Self::Event => "event",
        }
    }

    /// The source named `name` (`record` or `event`).
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "record" => Ok(Self::Record),
            "event" => Ok(Self::Event),
            other => Err(format!("\"record\" or \"event\", found {other:?}")),
        }
    }
}

/// How long identities are remembered, and by which time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// How long, in milliseconds of stream time, an identity is remembered.
    pub keep_ms: i64,
    /// The time events are measured by.
    pub time: TimeSource,
}

impl Window {
    /// The default `keep`: a day. Producers re-send within minutes or
    /// hours (a relay or bridge retrying after a timeout, one down for a
    /// while); a view holds the identities of its window in memory, about
    /// 40 bytes each, so a longer default would cost every view memory in
    /// proportion to its rate (1,000 events/s kept a day: about 3.5 GB).
    pub const DEFAULT_KEEP: &'static str = "24h";

    /// A window of `keep`, measured by `time`.
    pub fn new(keep: Duration, time: TimeSource) -> Self {
        Self {
            keep_ms: i64::try_from(keep.as_millis()).unwrap_or(i64::MAX),
            time,
        }
    }

    /// The time of an event whose CloudEvents `time` is `event_time` and
    /// whose record's timestamp is `record_ms`.
    pub fn time_of(&self, event_time: Option<&str>, record_ms: Option<i64>) -> i64 {
        match self.time {
            TimeSource::Record => record_ms,
            TimeSource::Event => event_time.and_then(rfc3339_ms).or(record_ms),
        }
        .unwrap_or(0)
    }

    /// True when an event of time `copy` is a copy, inside the window, of
    /// one first applied at `first`.
    pub fn is_duplicate(&self, first: i64, copy: i64) -> bool {
        copy.saturating_sub(first) < self.keep_ms
    }
}

/// Parse a window such as `7d`, `12h`, `30m`, `90s` or `500ms`: a whole
/// number and one unit.
///
/// # Errors
/// Anything else, or zero.
pub fn parse_keep(text: &str) -> Result<Duration, String> {
    let expected = || {
        format!(
            "a duration: a whole number and a unit (ms, s, m, h, d), such as \"7d\", found {text:?}"
        )
    };
    let digits = text.trim().bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.trim().split_at(digits);
    let number: u64 = number.parse().map_err(|_| expected())?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(expected()),
    };
    let ms = number.checked_mul(unit_ms).ok_or_else(expected)?;
    if ms == 0 {
        return Err(format!("a duration above zero, found {text:?}"));
    }
    Ok(Duration::from_millis(ms))
}

/// Milliseconds since the Unix epoch of an RFC 3339 date-time
/// (`2026-12-06T10:00:00.123+01:00`, `...Z`), or `None` if it is not one.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let separator = |at: usize, allowed: &[u8]| bytes.get(at).is_some_and(|b| allowed.contains(b));
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    let separated = separator(4, b"-")
        && separator(7, b"-")
        && separator(10, b"Tt ")
        && separator(13, b":")
        && separator(16, b":");
    if !separated
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if separator(at, b".") {
        at += 1;
        let digits = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let kept = digits.min(3);
        millis = number(at, kept)? * 10_i64.pow(u32::try_from(3 - kept).ok()?);
        at += digits;
    }
    let offset_minutes = match bytes.get(at)? {
        b'Z' | b'z' if at + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == bytes.len() && separator(at + 3, b":") => {
            let minutes = number(at + 1, 2)? * 60 + number(at + 4, 2)?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_with_offsets_and_fractions() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("2026-12-06T10:00:00Z"), Some(1_796_551_200_000));
        assert_eq!(
            rfc3339_ms("2026-12-06T11:00:00.123456+01:00"),
            Some(1_796_551_200_123)
        );
        assert_eq!(
            rfc3339_ms("2026-12-06T09:30:00.5-00:30"),
            Some(1_796_551_200_500)
        );
        assert_eq!(rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
        for bad in [
            "",
            "2026-12-06",
            "2026-13-06T10:00:00Z",
            "2026-12-06T10:00:00",
            "2026-12-06T10:00:00.Z",
            "2026-12-06T10:00:00+0100",
            "2026-12-06T10:00:00Zjunk",
            "2026-12-06T10:00:60Z",
            "2026-12-06T24:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-04-31T10:00:00Z",
            "２026-12-06T10:00:00Z",
        ] {
            assert_eq!(rfc3339_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keeps_parse_with_their_unit_and_refuse_the_rest() {
        assert_eq!(parse_keep("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_keep("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse_keep("30m"), Ok(Duration::from_secs(1_800)));
        assert_eq!(parse_keep("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_keep("500ms"), Ok(Duration::from_millis(500)));
        for bad in [
            "",
            "7",
            "d",
            "7w",
            "-1d",
            "1.5h",
            "0s",
            "99999999999999999999d",
        ] {
            assert!(parse_keep(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_window_is_measured_between_the_copies_by_their_own_times() {
        let window = Window::new(Duration::from_secs(60), TimeSource::Record);
        assert!(window.is_duplicate(1_000, 1_000));
        assert!(window.is_duplicate(1_000, 60_999));
        assert!(!window.is_duplicate(1_000, 61_000));
        assert!(
            window.is_duplicate(1_000, -5_000_000),
            "a copy before the first"
        );
        let event = Window::new(Duration::from_secs(60), TimeSource::Event);
        assert_eq!(event.time_of(Some("1970-01-01T00:00:01Z"), Some(5)), 1_000);
        assert_eq!(event.time_of(Some("yesterday"), Some(5)), 5);
        assert_eq!(event.time_of(None, None), 0);
        assert_eq!(window.time_of(Some("1970-01-01T00:00:01Z"), Some(5)), 5);
        assert_eq!(window.time_of(Some("1970-01-01T00:00:01Z"), None), 0);
    }
}

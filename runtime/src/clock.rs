//! The wall clock, as the runtime stamps things with it: milliseconds
//! since the Unix epoch. One reading for every stamp (dedup's stream time,
//! a deploy's start, a standby's word, samples and failures).

/// Now, in milliseconds since the Unix epoch (0 before it, `i64::MAX`
/// past what fits).
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

//! Read-your-writes: `min_offsets=topic:partition:offset[,...]` names
//! records a client produced (`projector publish` prints exactly this
//! token); a read waits until the view has durably applied each of them
//! (its position on that partition is past the offset), or answers 504 with
//! the view's position after `timeout_ms`. A partition the topic does not
//! have (once the view's client knows its partition count) is a 400 at
//! once, not a wait.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::config::is_topic_name;
use crate::pipeline::feed::Positions;
use crate::service::RunningView;

/// The default wait, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The longest wait a request may ask for, in milliseconds.
pub const MAX_TIMEOUT_MS: u64 = 30_000;
/// Partitions one `min_offsets` may name.
const MAX_ENTRIES: usize = 1_024;

/// Where a view stands on one partition: the next offset it will apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to apply; every record below it is applied and
    /// durable.
    pub next_offset: i64,
}

/// The records a read must see: per `(topic, partition)`, the highest
/// offset named.
type Wanted = Vec<((String, i32), i64)>;

/// Parse `text` for a view over `topics`; `partitions` tells how many
/// partitions a topic has, when known.
fn parse(
    text: &str,
    topics: &[String],
    partitions: impl Fn(&str) -> Option<i32>,
) -> Result<Wanted, ApiError> {
    let bad = |why: String| {
        ApiError::BadRequest(format!(
            "min_offsets {text:?}: {why}; write topic:partition:offset[,topic:partition:offset...]"
        ))
    };
    let mut wanted: Wanted = Vec::new();
    for entry in text.split(',') {
        let mut parts = entry.rsplitn(3, ':');
        let (Some(offset), Some(partition), Some(topic)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(format!("{entry:?} is not topic:partition:offset")));
        };
        if !is_topic_name(topic) {
            return Err(bad(format!("{topic:?} is not a topic name")));
        }
        if !topics.iter().any(|t| t == topic) {
            return Err(bad(format!(
                "the view does not consume topic {topic:?} (it consumes {})",
                topics.join(", ")
            )));
        }
        let partition: i32 = partition
            .parse()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| bad(format!("{partition:?} is not a partition number")))?;
        if let Some(count) = partitions(topic)
            && partition >= count
        {
            return Err(bad(format!(
                "topic {topic:?} has no partition {partition} (it has {count}: 0 to {})",
                count - 1
            )));
        }
        let offset: i64 = offset
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| bad(format!("{offset:?} is not an offset")))?;
        let key = (topic.to_owned(), partition);
        match wanted.iter_mut().find(|(k, _)| *k == key) {
            Some((_, highest)) => *highest = (*highest).max(offset),
            None => wanted.push((key, offset)),
        }
        if wanted.len() > MAX_ENTRIES {
            return Err(bad(format!("more than {MAX_ENTRIES} partitions")));
        }
    }
    Ok(wanted)
}

fn applied(positions: &Positions, wanted: &Wanted) -> bool {
    wanted
        .iter()
        .all(|(partition, offset)| positions.get(partition).is_some_and(|next| next > offset))
}

/// Wait until `view` has applied `min_offsets`, for at most `timeout_ms`
/// (default [`DEFAULT_TIMEOUT_MS`]). Nothing to wait for without
/// `min_offsets`.
pub async fn wait(
    view: &RunningView,
    min_offsets: Option<&str>,
    timeout_ms: Option<u64>,
) -> Result<(), ApiError> {
    let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms > MAX_TIMEOUT_MS {
        return Err(ApiError::BadRequest(format!(
            "timeout_ms {timeout_ms} is over the limit of {MAX_TIMEOUT_MS}"
        )));
    }
    let Some(text) = min_offsets else {
        return Ok(());
    };
    let wanted = parse(text, &view.info.topics, |topic| {
        view.status.partitions_of(topic)
    })?;
    let mut positions = view.feed.positions();
    let waited = tokio::time::timeout(
        Duration::from_millis(timeout_ms),
        positions.wait_for(|positions| applied(positions, &wanted)),
    )
    .await
    .is_ok_and(|reached| reached.is_ok());
    if waited {
        return Ok(());
    }
    let positions = positions
        .borrow()
        .iter()
        .map(|((topic, partition), next)| Position {
            topic: topic.clone(),
            partition: *partition,
            next_offset: *next,
        })
        .collect();
    Err(ApiError::NotYetApplied {
        view: view.info.name.clone(),
        wanted: text.to_owned(),
        timeout_ms,
        positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Vec<String> {
        vec!["orders".to_owned(), "customers.v2".to_owned()]
    }

    #[test]
    fn tokens_parse_and_keep_the_highest_offset_per_partition() {
        let wanted = parse("orders:0:5,customers.v2:3:7,orders:0:9", &topics(), |_| {
            None
        })
        .unwrap();
        assert_eq!(
            wanted,
            vec![
                (("orders".to_owned(), 0), 9),
                (("customers.v2".to_owned(), 3), 7)
            ]
        );
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        for (text, reason) in [
            ("orders", "not topic:partition:offset"),
            ("orders:0", "not topic:partition:offset"),
            ("orders:x:1", "not a partition number"),
            ("orders:-1:1", "not a partition number"),
            ("orders:0:-3", "not an offset"),
            ("orders:0:", "not an offset"),
            ("payments:0:1", "does not consume"),
            ("bad topic:0:1", "not a topic name"),
            ("", "not topic:partition:offset"),
            ("orders:4:1", "has no partition 4 (it has 4: 0 to 3)"),
        ] {
            let err = parse(text, &topics(), |_| Some(4)).unwrap_err().to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn applied_means_past_the_offset() {
        let wanted = parse("orders:0:5", &topics(), |_| Some(1)).unwrap();
        let at = |next| Positions::from([(("orders".to_owned(), 0), next)]);
        assert!(!applied(&Positions::new(), &wanted));
        assert!(!applied(&at(5), &wanted));
        assert!(applied(&at(6), &wanted));
    }
}

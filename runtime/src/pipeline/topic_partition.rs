//! Where a record comes from, as the pipeline names it: `(topic,
//! partition)`. A module of its own so that every part of the pipeline can
//! name a partition without depending on another part.

/// The `(topic, partition)` of a record.
pub type TopicPartition = (String, i32);

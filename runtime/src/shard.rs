//! Shards: a view's subjects split into `N` parts by hash, the unit of
//! state that is applied on its own and, later, logged to one partition of
//! a changelog topic and moved between runtimes.
//!
//! A subject belongs to shard `murmur2(subject) mod N`, made positive the
//! way Kafka's default partitioner does (`toPositive(murmur2(key)) % N`,
//! the Java client's and librdkafka's `murmur2_random`). A topic keyed by
//! subject with `N` partitions, produced by such a partitioner, is thus
//! co-partitioned with a view of `N` shards: each partition feeds one shard.
//! librdkafka's own default partitioner (`consistent_random`, CRC32) is not
//! this hash; its topics are still correct, only not co-partitioned.
//!
//! A record that carries no usable subject (it is not a CloudEvent, or has
//! no subject) still belongs to exactly one shard, so that its failure is
//! handled once: the shard of its key when it has one (producers key by
//! subject, so it lands beside its subject's other records), else the shard
//! numbered like its partition, modulo `N`.

use std::num::NonZeroU32;

/// Kafka's murmur2 (the Java client's `Utils.murmur2`), as a signed value.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka hashes lengths as an int; longer inputs are not keys.
    #[allow(clippy::cast_possible_truncation)]
    let length = data.len() as u32;
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if let Some(first) = rest.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// Kafka's `Utils.toPositive`: the value with its sign bit cleared.
fn to_positive(value: i32) -> u32 {
    u32::from_ne_bytes((value & 0x7fff_ffff).to_ne_bytes())
}

/// One shard of a view, numbered from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// How many shards a view has; at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shards(NonZeroU32);

impl Shards {
    /// One shard: the whole view.
    pub const ONE: Self = Self(NonZeroU32::MIN);

    /// The most shards a view may have.
    pub const MAX: u32 = 4096;

    /// `count` shards, when it is between 1 and [`Shards::MAX`].
    pub fn new(count: u32) -> Option<Self> {
        NonZeroU32::new(count)
            .filter(|count| count.get() <= Self::MAX)
            .map(Self)
    }

    /// The number of shards.
    pub fn count(self) -> u32 {
        self.0.get()
    }

    /// Every shard, in order.
    pub fn all(self) -> impl Iterator<Item = ShardId> {
        (0..self.count()).map(ShardId)
    }

    /// The shard of `bytes` (a subject or a record key).
    pub fn of_bytes(self, bytes: &[u8]) -> ShardId {
        ShardId(to_positive(murmur2(bytes)) % self.count())
    }

    /// The shard of `subject`.
    pub fn of_subject(self, subject: &str) -> ShardId {
        self.of_bytes(subject.as_bytes())
    }

    /// The shard of a record with no usable subject: its key's, else its
    /// partition's number modulo the count.
    pub fn of_unrouted(self, key: Option<&[u8]>, partition: i32) -> ShardId {
        match key {
            Some(key) => self.of_bytes(key),
            None => ShardId(partition.unsigned_abs() % self.count()),
        }
    }
}

impl std::fmt::Display for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_kafka_clients_test_vectors() {
        // From the Kafka Java client's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_subject_has_one_shard_within_the_count() {
        let shards = Shards::new(7).unwrap();
        let mut seen = [0_u32; 7];
        for n in 0..7000 {
            let shard = shards.of_subject(&format!("customer-{n}"));
            assert!(shard.0 < 7);
            assert_eq!(shard, shards.of_subject(&format!("customer-{n}")));
            seen[shard.0 as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 700), "{seen:?}");
        assert_eq!(Shards::ONE.of_subject("anything"), ShardId(0));
    }

    #[test]
    fn counts_outside_the_bounds_are_refused() {
        assert_eq!(Shards::new(0), None);
        assert_eq!(Shards::new(Shards::MAX + 1), None);
        assert_eq!(
            Shards::new(Shards::MAX).map(Shards::count),
            Some(Shards::MAX)
        );
    }

    #[test]
    fn records_without_a_subject_go_by_key_else_by_partition() {
        let shards = Shards::new(4).unwrap();
        assert_eq!(
            shards.of_unrouted(Some(b"customer-9"), 3),
            shards.of_subject("customer-9")
        );
        assert_eq!(shards.of_unrouted(None, 6), ShardId(2));
    }
}

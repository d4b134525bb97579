//! Offsets the broker did not deliver: when a record arrives past the
//! offset that was due, the gap is proven before it is taken.
//!
//! Kafka leaves real gaps in a partition's offsets (compacted topics,
//! transaction markers, retention), but a broker may also skip records it
//! holds: tansu 0.6 answers a fetch that starts inside a record batch with
//! the next batch. One answer of the broker therefore proves nothing, and
//! taking it would lose the skipped records (G1).
//!
//! # What it promises
//!
//! A gap `[due, delivered)` is taken only on proof that no record lies in
//! it:
//! - a read that began before the gap passed over it: after a seek to
//!   `from < due`, a record in `[from, due)` was delivered (a duplicate,
//!   not applied again) and the next record of that read lies past `due`.
//!   A broker may skip records where a read begins, never inside a read;
//! - or a read from the partition's earliest offset delivered past `due`
//!   first thing: nothing earlier exists to begin before.
//!
//! It relies on what librdkafka does on a seek: records fetched before it
//! are dropped, never handed over after it, so the first record after a
//! seek is the broker's answer to it.
//!
//! Until then the partition is read again from further back each time: as
//! far before `due` as the broker skipped past it, then twice as far, and so
//! on down to the earliest offset, so a batch of any size is found in a
//! logarithmic number of seeks. The records read again below `due` are duplicates and are
//! skipped.

use std::collections::HashMap;

use super::topic_partition::TopicPartition;

/// A partition being read again from before the offset that was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    /// The offset that was due.
    due: i64,
    /// Where the last seek went.
    from: i64,
    /// Seeks made so far.
    seeks: u32,
    /// True once a record in `[from, due)` was delivered after that seek:
    /// the read began before the gap.
    began_before: bool,
}

/// What to do with a record delivered past the offset that was due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Drop the record and read the partition again from `from`; this is
    /// the `seek`th seek for this gap.
    ReadFrom {
        /// Where to seek.
        from: i64,
        /// Seeks made for this gap, this one included.
        seek: u32,
    },
    /// No record lies in `[from, to)`: take the gap and apply the record.
    Proven {
        /// The offset that was due.
        from: i64,
        /// The offset delivered.
        to: i64,
        /// Seeks it took to prove it.
        seeks: u32,
    },
}

/// The partitions of one view whose gaps are being proven.
#[derive(Debug, Default)]
pub struct GapProbes {
    probes: HashMap<TopicPartition, Probe>,
}

impl GapProbes {
    /// `offset`, below the offset due, was delivered on `partition`: if it
    /// belongs to the read that began at the last seek, that read began
    /// before the gap.
    pub fn below_due(&mut self, partition: &TopicPartition, offset: i64) {
        if let Some(probe) = self.probes.get_mut(partition)
            && offset >= probe.from
            && offset < probe.due
        {
            probe.began_before = true;
        }
    }

    /// `offset` was delivered on `partition` where `due` was; `earliest` is
    /// the partition's earliest offset now.
    pub fn past_due(
        &mut self,
        partition: &TopicPartition,
        due: i64,
        offset: i64,
        earliest: i64,
    ) -> Verdict {
        let probe = self
            .probes
            .get(partition)
            .copied()
            .filter(|probe| probe.due == due);
        if let Some(probe) = probe
            && (probe.began_before || probe.from <= earliest)
        {
            self.probes.remove(partition);
            return Verdict::Proven {
                from: due,
                to: offset,
                seeks: probe.seeks,
            };
        }
        // The first read begins as far before `due` as the broker skipped
        // past it (a batch is likely about as large as the part of it that
        // was skipped), each next one twice as far.
        let (from, seek) = self.read_again(partition, probe, due, offset - due, earliest);
        Verdict::ReadFrom { from, seek }
    }

    /// Record the next read of `partition` for `due`: `first` before it
    /// when there was no `probe`, else twice as far back as the last one,
    /// never before `earliest`. Returns where it begins and its number.
    fn read_again(
        &mut self,
        partition: &TopicPartition,
        probe: Option<Probe>,
        due: i64,
        first: i64,
        earliest: i64,
    ) -> (i64, u32) {
        let distance = probe.map_or(first.max(1), |probe| {
            (due - probe.from).max(1).saturating_mul(2)
        });
        let from = due.saturating_sub(distance).max(earliest);
        let seeks = probe.map_or(1, |probe| probe.seeks + 1);
        self.probes.insert(
            partition.clone(),
            Probe {
                due,
                from,
                seeks,
                began_before: false,
            },
        );
        (from, seeks)
    }

    /// `partition` has records past `due` (its high watermark says so) but
    /// delivered none for a while: a broker that answered a read beginning
    /// inside the last batch with nothing. Returns where to read from next,
    /// further back each time; `None` once a read from the earliest offset
    /// was tried (there is nothing earlier to begin at).
    pub fn stalled(&mut self, partition: &TopicPartition, due: i64, earliest: i64) -> Option<i64> {
        let probe = self
            .probes
            .get(partition)
            .copied()
            .filter(|probe| probe.due == due);
        if probe.is_some_and(|probe| probe.from <= earliest) {
            return None;
        }
        Some(self.read_again(partition, probe, due, 1, earliest).0)
    }

    /// `partition` moved on (its due offset was applied) or was revoked:
    /// any probe of it is over.
    pub fn clear(&mut self, partition: &TopicPartition) {
        if !self.probes.is_empty() {
            self.probes.remove(partition);
        }
    }

    /// True while a gap of `partition` is being proven.
    pub fn probing(&self, partition: &TopicPartition) -> bool {
        self.probes.contains_key(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> TopicPartition {
        ("t".to_owned(), 0)
    }

    #[test]
    fn a_skip_is_read_again_from_further_back_each_time() {
        let mut probes = GapProbes::default();
        // Due 1000, the broker answers 1004 from every start inside the
        // batch [900, 1004).
        let mut froms = Vec::new();
        loop {
            match probes.past_due(&p(), 1000, 1004, 0) {
                Verdict::ReadFrom { from, .. } if from > 900 => froms.push(from),
                Verdict::ReadFrom { from, .. } => {
                    froms.push(from);
                    break;
                }
                Verdict::Proven { .. } => panic!("a skip is never proof"),
            }
        }
        assert_eq!(froms, vec![996, 992, 984, 968, 936, 872]);
        // The read from 872 delivers 872..1000 (duplicates), then 1000.
        probes.below_due(&p(), 872);
        assert!(probes.probing(&p()));
        probes.clear(&p());
        assert!(!probes.probing(&p()));
    }

    #[test]
    fn a_read_that_began_before_the_gap_and_passed_over_it_proves_it() {
        let mut probes = GapProbes::default();
        assert_eq!(
            probes.past_due(&p(), 10, 12, 0),
            Verdict::ReadFrom { from: 8, seek: 1 }
        );
        probes.below_due(&p(), 9);
        assert_eq!(
            probes.past_due(&p(), 10, 12, 0),
            Verdict::Proven {
                from: 10,
                to: 12,
                seeks: 1
            }
        );
    }

    #[test]
    fn a_record_from_below_the_seek_proves_nothing() {
        let mut probes = GapProbes::default();
        probes.past_due(&p(), 10, 12, 0);
        // Older than where the read began: not part of it.
        probes.below_due(&p(), 5);
        assert_eq!(
            probes.past_due(&p(), 10, 12, 0),
            Verdict::ReadFrom { from: 6, seek: 2 }
        );
    }

    #[test]
    fn a_read_from_the_earliest_offset_is_proof() {
        let mut probes = GapProbes::default();
        // Due 3 on a partition that starts at 2: the first seek goes to 2,
        // the earliest offset; the same answer then proves the gap.
        assert_eq!(
            probes.past_due(&p(), 3, 7, 2),
            Verdict::ReadFrom { from: 2, seek: 1 }
        );
        assert_eq!(
            probes.past_due(&p(), 3, 7, 2),
            Verdict::Proven {
                from: 3,
                to: 7,
                seeks: 1
            }
        );
        // Records deleted below the earliest offset (retention): the read
        // from the earliest is the proof.
        assert_eq!(
            probes.past_due(&p(), 0, 50, 40),
            Verdict::ReadFrom { from: 40, seek: 1 }
        );
        assert!(matches!(
            probes.past_due(&p(), 0, 50, 40),
            Verdict::Proven {
                from: 0,
                to: 50,
                ..
            }
        ));
    }

    #[test]
    fn a_stalled_partition_is_read_from_further_back_down_to_its_start() {
        let mut probes = GapProbes::default();
        let froms: Vec<Option<i64>> = (0..5).map(|_| probes.stalled(&p(), 6, 0)).collect();
        assert_eq!(froms, vec![Some(5), Some(4), Some(2), Some(0), None]);
    }

    #[test]
    fn a_new_due_offset_starts_a_new_probe() {
        let mut probes = GapProbes::default();
        probes.past_due(&p(), 10, 12, 0);
        probes.below_due(&p(), 9);
        // The partition was repositioned: due is now 20.
        assert_eq!(
            probes.past_due(&p(), 20, 25, 0),
            Verdict::ReadFrom { from: 15, seek: 1 }
        );
    }
}

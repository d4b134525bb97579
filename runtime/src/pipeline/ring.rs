//! A bounded ring of a view's recent things (samples, failures) for pages
//! and reports: the newest kept, the oldest dropped first, memory bounded
//! by its capacity.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Now, in milliseconds since the Unix epoch, as samples and failures
/// carry it.
pub fn unix_ms_now() -> u64 {
    crate::clock::unix_ms().unsigned_abs()
}

/// At most `capacity` values, the oldest dropped first.
#[derive(Debug)]
pub struct Ring<T> {
    capacity: usize,
    values: Mutex<VecDeque<T>>,
}

impl<T: Clone> Ring<T> {
    /// An empty ring that keeps at most `capacity` values.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            values: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// How many values it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keep `value`, dropping the oldest when full.
    pub fn push(&self, value: T) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        if values.len() == self.capacity {
            values.pop_front();
        }
        values.push_back(value);
    }

    /// Every value kept, oldest first.
    pub fn oldest_first(&self) -> Vec<T> {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_values_up_to_its_capacity() {
        let ring = Ring::new(5);
        for n in 0..12 {
            ring.push(n);
        }
        assert_eq!(ring.oldest_first(), vec![7, 8, 9, 10, 11]);
        assert_eq!(ring.capacity(), 5);
    }
}

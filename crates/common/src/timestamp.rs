//! Hybrid logical timestamps in Milvus's layout: `physical_ms << 18 | logical`.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// A hybrid timestamp (Milvus layout). Ordered; 0 means "no timestamp".
pub type Timestamp = u64;

const LOGICAL_BITS: u32 = 18;
const LOGICAL_MASK: u64 = (1 << LOGICAL_BITS) - 1;

/// Builds a timestamp from wall-clock milliseconds and a logical counter.
pub fn compose_ts(physical_ms: u64, logical: u64) -> Timestamp {
    (physical_ms << LOGICAL_BITS) | (logical & LOGICAL_MASK)
}

/// The physical (wall-clock milliseconds) part of a timestamp.
pub fn ts_physical_ms(ts: Timestamp) -> u64 {
    ts >> LOGICAL_BITS
}

/// The logical part of a timestamp.
pub fn ts_logical(ts: Timestamp) -> u64 {
    ts & LOGICAL_MASK
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A hybrid logical clock: strictly increasing timestamps that follow the wall
/// clock when it moves forward and never go backwards when it does not.
#[derive(Debug, Default)]
pub struct HybridClock {
    last: Mutex<Timestamp>,
}

impl HybridClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock that will never issue a timestamp at or below `floor`
    /// (used after a restart: the floor is the last timestamp in the WAL).
    pub fn with_floor(floor: Timestamp) -> Self {
        Self {
            last: Mutex::new(floor),
        }
    }

    /// Issues a timestamp strictly greater than every earlier one.
    pub fn now(&self) -> Timestamp {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let wall = compose_ts(wall_ms(), 0);
        let next = if wall > *last { wall } else { *last + 1 };
        *last = next;
        next
    }

    /// Moves the clock past `ts` (e.g. a timestamp observed elsewhere).
    pub fn observe(&self, ts: Timestamp) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if ts > *last {
            *last = ts;
        }
    }

    /// The last timestamp issued or observed.
    pub fn last(&self) -> Timestamp {
        *self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A timestamp for "now" without a clock (physical part only), e.g. for a
/// Strong consistency guarantee computed outside a shard.
pub fn wall_ts() -> Timestamp {
    compose_ts(wall_ms(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_round_trips() {
        let ts = compose_ts(1_700_000_000_000, 42);
        assert_eq!(ts_physical_ms(ts), 1_700_000_000_000);
        assert_eq!(ts_logical(ts), 42);
    }

    #[test]
    fn clock_is_strictly_increasing_and_respects_floor() {
        let floor = compose_ts(wall_ms() + 60_000, 7);
        let clock = HybridClock::with_floor(floor);
        let mut prev = floor;
        for _ in 0..10_000 {
            let ts = clock.now();
            assert!(ts > prev, "{ts} must be > {prev}");
            prev = ts;
        }
    }
}

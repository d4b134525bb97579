//! Crash points for the crash tests: `PROJECTOR_FAILPOINT=NAME:N` makes the
//! process abort (as a SIGKILL would end it: no destructor, no flush) the
//! `N`th time it reaches the point `NAME`, after writing `failpoint NAME`
//! to stderr so that a test can tell the crash landed there;
//! `NAME:N:MS` pauses there `MS` milliseconds instead, for a test to watch
//! what a slow step looks like from outside.
//!
//! Points: `changelog-partial` (half of a batch's changelog records
//! acknowledged, the rest never sent: a batch a crash cut short),
//! `changelog-logged` (a batch acknowledged by the changelog, not yet in
//! the store), `store-flushed` (a batch durable in the store, its offsets
//! not yet given to Kafka), `restore-record` (a changelog record restored:
//! pause it to watch a restore from the API). Without the variable a point costs one
//! atomic load.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    at: u64,
    /// Instead of aborting, pause this long.
    pause_ms: Option<u64>,
    hits: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("PROJECTOR_FAILPOINT").ok()?;
            let mut parts = spec.split(':');
            let name = parts.next()?;
            let at = parts.next()?.parse().ok()?;
            let pause_ms = match parts.next() {
                Some(ms) => Some(ms.parse().ok()?),
                None => None,
            };
            Some(Armed {
                name: name.to_owned(),
                at,
                pause_ms,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// The process reached the point `name`: it aborts when this is the hit
/// the variable names.
pub fn hit(name: &str) {
    if reached(name) {
        if let Some(ms) = armed().and_then(|armed| armed.pause_ms) {
            eprintln!("failpoint {name}: pausing {ms} ms");
            std::thread::sleep(std::time::Duration::from_millis(ms));
            return;
        }
        abort(name);
    }
}

/// The process reached the point `name`: true when this is the hit the
/// variable names, for a point that has something to do before it aborts
/// ([`abort`]).
pub fn reached(name: &str) -> bool {
    armed().is_some_and(|armed| {
        armed.name == name && armed.hits.fetch_add(1, Ordering::Relaxed) + 1 == armed.at
    })
}

/// End the process at the point `name`, saying so on stderr.
pub fn abort(name: &str) -> ! {
    eprintln!("failpoint {name}");
    std::process::abort();
}

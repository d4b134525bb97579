//! A projection that misbehaves on request, for fault tests. Each event type
//! selects one kind of failure:
//!
//! | event type                | behaviour                                          |
//! |---------------------------|----------------------------------------------------|
//! | `misbehave.trap`          | executes `unreachable` (a wasm trap)               |
//! | `misbehave.panic`         | panics                                             |
//! | `misbehave.loop`          | loops forever                                      |
//! | `misbehave.memory-bomb`   | allocates until memory runs out                    |
//! | `misbehave.stack-overflow`| recurses without end                               |
//! | `misbehave.invalid-json`  | sets a row that is not JSON                        |
//! | `misbehave.huge-row`      | sets a row of `data` bytes (a JSON number, e.g. `8388608`) |
//! | `misbehave.error`         | returns a guest error with code `rejected`         |
//! | `misbehave.log-flood`     | logs `data` records (a JSON number) and counts     |
//! | `misbehave.leak`          | leaks `data` bytes (a JSON number) and counts, as a language runtime that never frees |
//! | anything else             | counts: `{"count": n}`                             |
//!
//! The trap, endless loop, memory bomb and stack overflow are meaningful only
//! in the sandbox; natively they would take the test process down, so the
//! native tests exercise only the other kinds.

use projector_sdk::{Error, Event, RawProjection, RawUpdate, Update, log};

#[cfg(any(test, feature = "scenarios"))]
pub mod scenarios;

/// The misbehaving projection.
#[derive(Debug)]
pub struct Misbehaving;

fn count(state: Option<&str>) -> Result<RawUpdate, Error> {
    let count = match state {
        Some(row) => serde_json::from_str::<serde_json::Value>(row)?["count"]
            .as_u64()
            .unwrap_or(0),
        None => 0,
    };
    Ok(Update::Set(format!("{{\"count\":{}}}", count + 1)))
}

#[inline(never)]
#[allow(unconditional_recursion)] // The point: it never returns.
fn recurse(depth: u64) -> u64 {
    // black_box keeps the recursion from being turned into a loop.
    std::hint::black_box(depth) + recurse(std::hint::black_box(depth + 1))
}

// Panicking is one of the misbehaviours on offer.
#[allow(clippy::panic)]
impl RawProjection for Misbehaving {
    fn apply(state: Option<&str>, event: &Event) -> Result<RawUpdate, Error> {
        match event.ty.as_str() {
            "misbehave.trap" => trap(),
            "misbehave.panic" => panic!("misbehaving on purpose (event {})", event.id),
            "misbehave.loop" => {
                let mut spins = 0_u64;
                loop {
                    spins = std::hint::black_box(spins.wrapping_add(1));
                }
            }
            "misbehave.memory-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1_u8; 1 << 20]));
                }
            }
            "misbehave.stack-overflow" => Ok(Update::Set(recurse(0).to_string())),
            "misbehave.invalid-json" => Ok(Update::Set("{this is not json".to_owned())),
            "misbehave.huge-row" => {
                let size: usize = event.data_json()?;
                let mut row = String::with_capacity(size + 2);
                row.push('"');
                row.extend(std::iter::repeat_n('x', size.saturating_sub(2)));
                row.push('"');
                Ok(Update::Set(row))
            }
            "misbehave.error" => Err(Error::rejected(format!(
                "refusing event {} on purpose",
                event.id
            ))),
            "misbehave.leak" => {
                let bytes: usize = event.data_json()?;
                // Touched, so the memory is really taken, then never freed.
                std::hint::black_box(Vec::leak(vec![1_u8; bytes]));
                count(state)
            }
            "misbehave.log-flood" => {
                let records: u64 = event.data_json()?;
                for i in 0..records {
                    log::info(&format!("flood record {i}"));
                }
                count(state)
            }
            _ => count(state),
        }
    }
}

#[cfg(target_family = "wasm")]
fn trap() -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(not(target_family = "wasm"))]
fn trap() -> ! {
    // Natively there is no sandbox to trap into.
    std::process::abort()
}

projector_sdk::export_projection!(raw Misbehaving);

#[cfg(test)]
mod tests {
    use projector_sdk::testing::{self, Failure, NativeError};

    use super::*;

    #[test]
    fn benign_events_count() {
        scenarios::benign_events_count(&mut testing::native_raw::<Misbehaving>());
    }

    #[test]
    fn panic_is_caught_and_the_next_event_is_served() {
        let mut host = testing::native_raw::<Misbehaving>();
        let outcome = host.publish(scenarios::misbehave("panic"));
        assert!(
            matches!(outcome.failure(), Some(Failure::Applier(NativeError::Panic(m))) if m.contains("on purpose")),
            "{outcome:?}"
        );
        scenarios::benign_events_count(&mut host);
    }

    #[test]
    fn invalid_json_row_is_refused() {
        let mut host = testing::native_raw::<Misbehaving>();
        let outcome = host.publish(scenarios::misbehave("invalid-json").subject("s"));
        assert_eq!(outcome.failure_code(), Some("invalid-row"), "{outcome:?}");
        host.expect_no_row("s");
    }

    #[test]
    fn guest_error_is_reported() {
        let mut host = testing::native_raw::<Misbehaving>();
        let outcome = host.publish(scenarios::misbehave("error"));
        assert_eq!(outcome.failure_code(), Some(Error::REJECTED), "{outcome:?}");
    }
}

//! The engine against real components: every failure kind gives its typed
//! error, and the next event is served correctly afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use projector::engine::testing::{WasmApplier, wasm_host};
use projector::engine::{ApplyError, Engine, EngineConfig, LoadError};
use projector_sdk::testing::{EventBuilder, Failure, MockHost, Outcome};
use projector_sdk::{Level, Update};

fn engine(config: EngineConfig) -> Engine {
    Engine::new(config).expect("engine starts")
}

fn misbehaving(config: EngineConfig) -> MockHost<WasmApplier> {
    wasm_host(&engine(config), projector_examples::MISBEHAVING.wasm).expect("misbehaving loads")
}

fn misbehave(kind: &str) -> EventBuilder {
    EventBuilder::new(format!("misbehave.{kind}")).subject("victim")
}

fn applier_error(outcome: &Outcome<ApplyError>) -> &ApplyError {
    match outcome.failure() {
        Some(Failure::Applier(err)) => err,
        other => panic!("expected an apply error, got {other:?}"),
    }
}

/// After a failure, benign events still count from where they were.
fn assert_serves_next_event(host: &mut MockHost<WasmApplier>) {
    let before = host
        .row::<serde_json::Value>("benign")
        .and_then(|row| row["count"].as_u64())
        .unwrap_or(0);
    let outcome = host.publish(EventBuilder::new("count").subject("benign"));
    assert!(
        outcome.is_applied(),
        "the next event must be served: {outcome:?}"
    );
    assert_eq!(
        host.expect_row::<serde_json::Value>("benign")["count"],
        before + 1
    );
}

fn instantiations(host: &mut MockHost<WasmApplier>) -> u64 {
    host.applier_mut().instance().stats().instantiations
}

#[test]
fn every_example_loads_and_is_cached_by_hash() {
    let engine = engine(EngineConfig::default());
    for example in projector_examples::ALL {
        let first = engine
            .load(example.wasm)
            .unwrap_or_else(|err| panic!("{}: {err}", example.name));
        let again = engine.load(example.wasm).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "{} compiled twice",
            example.name
        );
        assert_eq!(first.hash().len(), 64);
        assert!(first.exports().iter().any(|e| e == "apply"));
        assert!(
            first
                .imports()
                .iter()
                .any(|i| i.starts_with("projector:projection/log@0.1."))
        );
    }
}

#[test]
fn trap_is_typed_and_the_instance_is_replaced() {
    let mut host = misbehaving(EngineConfig::default());
    assert_serves_next_event(&mut host);
    let outcome = host.publish(misbehave("trap"));
    let err = applier_error(&outcome);
    assert!(
        matches!(err, ApplyError::Trap { trap } if trap.contains("unreachable")),
        "{err:?}"
    );
    assert!(err.discards_instance());
    assert_serves_next_event(&mut host);
    assert_eq!(instantiations(&mut host), 2);
    host.expect_no_row("victim");
}

#[test]
fn panic_is_typed_with_its_message() {
    let mut host = misbehaving(EngineConfig::default());
    let outcome = host.publish(misbehave("panic"));
    let err = applier_error(&outcome);
    assert!(
        matches!(err, ApplyError::Panic { message } if message.contains("misbehaving on purpose")),
        "{err:?}"
    );
    assert_eq!(err.class(), "guest-panic");
    assert_serves_next_event(&mut host);
}

#[test]
fn endless_loop_is_stopped_at_the_deadline() {
    let deadline = Duration::from_millis(200);
    let mut host = misbehaving(EngineConfig {
        call_deadline_ms: 200,
        ..EngineConfig::default()
    });
    assert_serves_next_event(&mut host);
    let started = Instant::now();
    let outcome = host.publish(misbehave("loop"));
    let elapsed = started.elapsed();
    let err = applier_error(&outcome);
    assert_eq!(err, &ApplyError::DeadlineExceeded { limit: deadline });
    assert!(err.is_transient());
    assert!(elapsed >= deadline, "interrupted early, after {elapsed:?}");
    // A loose bound: this is a correctness check, not a benchmark, and the
    // test machine may be busy running other tests in parallel. The
    // running runtime's bound (2x) is checked by `hostile`, from the
    // apply-time histogram.
    assert!(
        elapsed < deadline * 10,
        "interrupted late, after {elapsed:?}"
    );
    assert_serves_next_event(&mut host);
}

#[test]
fn memory_bomb_hits_the_cap() {
    let cap = 16 << 20;
    let mut host = misbehaving(EngineConfig {
        max_memory_bytes: cap,
        ..EngineConfig::default()
    });
    let outcome = host.publish(misbehave("memory-bomb"));
    match applier_error(&outcome) {
        ApplyError::MemoryExceeded { requested, limit } => {
            assert_eq!(*limit, cap);
            assert!(*requested > cap, "requested {requested}");
        }
        other => panic!("expected MemoryExceeded, got {other:?}"),
    }
    assert_serves_next_event(&mut host);
}

fn leak(bytes: usize) -> EventBuilder {
    misbehave("leak").data_json(&bytes)
}

/// A guest whose memory only grows, as a language runtime that never frees
/// (componentize-js keeps about 840 bytes per call), is replaced before it
/// reaches the cap, and no event fails for it.
#[test]
fn an_instance_whose_memory_keeps_growing_is_replaced_before_the_cap() {
    let cap = 8 << 20;
    let mut host = misbehaving(EngineConfig {
        max_memory_bytes: cap,
        ..EngineConfig::default()
    });
    // 200 calls of 256 KiB each: 50 MiB in all, six times the cap.
    for call in 0..200 {
        let outcome = host.publish(leak(256 << 10));
        assert!(outcome.is_applied(), "call {call}: {outcome:?}");
        let memory = host.applier_mut().instance().memory_bytes();
        assert!(memory.is_none_or(|bytes| bytes <= cap), "{memory:?}");
    }
    assert_eq!(host.expect_row::<serde_json::Value>("victim")["count"], 200);
    let stats = host.applier_mut().instance().stats();
    // The leak took effect: no one instance could have held it.
    assert!(stats.recycled >= 6, "{stats:?}");
    assert_eq!(stats.memory_retries, 0, "{stats:?}");
    assert_eq!(stats.instantiations, stats.recycled + 1, "{stats:?}");
}

/// A call that reaches the cap on a used instance runs again on a fresh
/// one: the memory may be the instance's history, not the event's. Only an
/// event that exceeds the cap on a fresh instance too is `memory-exceeded`.
#[test]
fn a_used_instance_at_the_cap_runs_the_event_again_on_a_fresh_one() {
    let cap = 8 << 20;
    let mut host = misbehaving(EngineConfig {
        max_memory_bytes: cap,
        ..EngineConfig::default()
    });
    assert!(host.publish(leak(1024)).is_applied());
    let first = host.applier_mut().instance().memory_bytes().unwrap();
    let room = cap - first;
    // Stays under the recycle mark (half the room): the instance is kept.
    assert!(host.publish(leak(room / 4)).is_applied());
    let kept = host.applier_mut().instance().stats();
    assert_eq!((kept.instantiations, kept.recycled), (1, 0), "{kept:?}");

    // Fits a fresh instance, not this one.
    let outcome = host.publish(leak(room * 7 / 8));
    assert!(outcome.is_applied(), "{outcome:?}");
    let stats = host.applier_mut().instance().stats();
    assert_eq!(stats.memory_retries, 1, "{stats:?}");
    assert_eq!(stats.instantiations, 2, "{stats:?}");
    assert_eq!(host.expect_row::<serde_json::Value>("victim")["count"], 3);

    // A memory bomb exceeds the cap on the fresh instance too.
    let outcome = host.publish(misbehave("memory-bomb"));
    assert!(
        matches!(applier_error(&outcome), ApplyError::MemoryExceeded { .. }),
        "{outcome:?}"
    );
    assert_eq!(host.applier_mut().instance().stats().memory_retries, 2);
    assert_serves_next_event(&mut host);
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    let mut host = misbehaving(EngineConfig::default());
    let outcome = host.publish(misbehave("stack-overflow"));
    assert_eq!(
        applier_error(&outcome),
        &ApplyError::StackOverflow { limit: 512 << 10 }
    );
    assert_serves_next_event(&mut host);
}

#[test]
fn invalid_json_row_is_refused_and_the_instance_kept() {
    let mut host = misbehaving(EngineConfig::default());
    assert_serves_next_event(&mut host);
    let outcome = host.publish(misbehave("invalid-json"));
    let err = applier_error(&outcome);
    assert!(matches!(err, ApplyError::InvalidRow { .. }), "{err:?}");
    assert!(!err.discards_instance());
    host.expect_no_row("victim");
    assert_serves_next_event(&mut host);
    assert_eq!(instantiations(&mut host), 1);
}

#[test]
fn huge_row_is_refused() {
    let mut host = misbehaving(EngineConfig {
        max_row_bytes: 64 << 10,
        ..EngineConfig::default()
    });
    let outcome = host.publish(misbehave("huge-row").data_json(&(100_u32 << 10)));
    assert_eq!(
        applier_error(&outcome),
        &ApplyError::RowTooLarge {
            size: 100 << 10,
            limit: 64 << 10
        }
    );
    // Just under the cap is fine.
    let outcome = host.publish(misbehave("huge-row").data_json(&(60_u32 << 10)));
    assert!(outcome.is_applied(), "{outcome:?}");
    assert_serves_next_event(&mut host);
}

#[test]
fn guest_error_is_typed_and_keeps_the_instance() {
    let mut host = misbehaving(EngineConfig::default());
    let outcome = host.publish(misbehave("error"));
    let err = applier_error(&outcome);
    assert!(
        matches!(err, ApplyError::Guest { code, message } if code == "rejected" && message.contains("on purpose")),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert_serves_next_event(&mut host);
    assert_eq!(instantiations(&mut host), 1);
}

#[test]
fn log_flood_is_bounded_and_counted() {
    let mut host = misbehaving(EngineConfig {
        max_log_records_per_call: 10,
        ..EngineConfig::default()
    });
    let outcome = host.publish(misbehave("log-flood").data_json(&25));
    assert!(outcome.is_applied(), "{outcome:?}");
    assert_eq!(host.logs().len(), 10);
    assert!(host.logs().iter().all(|r| r.level == Level::Info));
    assert_eq!(host.applier_mut().instance().stats().dropped_logs, 15);
}

#[test]
fn failures_in_a_row_never_take_the_engine_down() {
    let mut host = misbehaving(EngineConfig {
        call_deadline_ms: 50,
        max_memory_bytes: 8 << 20,
        ..EngineConfig::default()
    });
    for kind in [
        "trap",
        "panic",
        "memory-bomb",
        "loop",
        "stack-overflow",
        "invalid-json",
        "error",
    ] {
        assert!(
            host.publish(misbehave(kind)).failure().is_some(),
            "{kind} must fail"
        );
        assert_serves_next_event(&mut host);
    }
    assert_eq!(host.failures().len(), 7);
}

#[test]
fn instances_on_several_threads_share_one_module() {
    let engine = Arc::new(engine(EngineConfig::default()));
    let module = engine.load(projector_examples::EVENT_COUNTER.wasm).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let module = Arc::clone(&module);
            std::thread::spawn(move || {
                let mut host = MockHost::new(WasmApplier::new(module.instance()));
                for _ in 0..50 {
                    host.publish(
                        EventBuilder::new("Tick")
                            .subject(format!("t-{t}"))
                            .partition(t),
                    );
                }
                host.expect_row::<serde_json::Value>(&format!("t-{t}"))["count"].as_u64()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), Some(50));
    }
}

#[test]
fn compiled_code_is_cached_on_disk() {
    let dir = tempdir();
    let config = EngineConfig {
        cache_dir: Some(dir.clone()),
        ..EngineConfig::default()
    };
    engine(config.clone())
        .load(projector_examples::CUSTOMER_VIEW.wasm)
        .unwrap();
    let artifacts = compiled_artifacts(&dir);
    assert_eq!(
        artifacts.len(),
        1,
        "one compiled component in the cache: {artifacts:?}"
    );
    // A second engine (a restart) finds it and compiles nothing new.
    let module = engine(config)
        .load(projector_examples::CUSTOMER_VIEW.wasm)
        .unwrap();
    assert_eq!(compiled_artifacts(&dir), artifacts);
    let mut instance = module.instance();
    let event = projector::event::Event::from(&projector_sdk::Event {
        ty: "CustomerDeleted".into(),
        ..Default::default()
    });
    assert_eq!(instance.apply(None, &event), Ok(Update::Ignore));
    std::fs::remove_dir_all(dir).ok();
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("projector-engine-cache-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

/// The compiled components in a wasmtime cache directory. Its worker
/// thread also writes usage statistics (`*.stats`) and cleanup markers
/// (`.cleanup*`) in the background; those are not compiled code.
fn compiled_artifacts(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with('.')
                && !name.ends_with(".stats")
                // wasmtime's cache worker writes its statistics in the
                // background, through a temporary file of this name.
                && !name.ends_with(".wip-atomic-write-stats")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

mod load_errors {
    use super::*;

    fn load(bytes: &[u8]) -> LoadError {
        engine(EngineConfig::default())
            .load(bytes)
            .expect_err("must be refused")
    }

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("test component parses")
    }

    #[test]
    fn not_wasm() {
        assert!(matches!(load(b"hello world"), LoadError::NotWasm));
        assert!(matches!(load(b""), LoadError::NotWasm));
    }

    #[test]
    fn core_module_is_told_to_build_a_component() {
        let err = load(&wat::parse_str("(module)").unwrap());
        assert!(matches!(err, LoadError::CoreModule));
        assert!(err.to_string().contains("wasm32-wasip2"), "{err}");
    }

    #[test]
    fn corrupt_component_does_not_compile() {
        let mut bytes = projector_examples::CUSTOMER_VIEW.wasm.to_vec();
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(load(&bytes), LoadError::Compile(_)));
    }

    #[test]
    fn missing_apply_names_the_exports() {
        let err = load(&component(
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func (export "run") (canon lift (core func $i "f"))))"#,
        ));
        assert!(
            matches!(&err, LoadError::MissingApply { exports } if exports == "run"),
            "{err:?}"
        );
        assert!(err.to_string().contains("does not export `apply`"), "{err}");
    }

    #[test]
    fn apply_of_the_wrong_type_is_a_world_mismatch() {
        let err = load(&component(
            r#"(component
                (core module $m (func (export "f")))
                (core instance $i (instantiate $m))
                (func (export "apply") (canon lift (core func $i "f"))))"#,
        ));
        assert!(matches!(err, LoadError::WorldMismatch(_)), "{err:?}");
    }

    #[test]
    fn clock_import_is_forbidden_by_name() {
        let err = load(&component(
            r#"(component
                (import "wasi:clocks/wall-clock@0.2.6" (instance)))"#,
        ));
        assert!(
            matches!(&err, LoadError::ForbiddenImport { import, .. } if import == "wasi:clocks/wall-clock@0.2.6"),
            "{err:?}"
        );
        assert!(err.to_string().contains("no clock"), "{err}");
    }

    #[test]
    fn random_and_filesystem_imports_are_forbidden() {
        for name in ["wasi:random/random@0.2.6", "wasi:filesystem/preopens@0.2.6"] {
            let err = load(&component(&format!(
                r#"(component (import "{name}" (instance)))"#
            )));
            assert!(
                matches!(err, LoadError::ForbiddenImport { .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = engine(EngineConfig::default())
            .load_file("/nonexistent/view.wasm".as_ref())
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/view.wasm"), "{err}");
    }
}

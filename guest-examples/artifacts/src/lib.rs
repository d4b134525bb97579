//! The example projections of `guest-examples/`, compiled to WebAssembly
//! components by this crate's build script, so tests, benchmarks and
//! `projector demo` always use the real `.wasm` and no manual build step is
//! needed.
//!
//! Each [`Example`] names the component's path on disk and embeds its bytes.

/// One compiled example projection.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// The package name, such as `customer-view`.
    pub name: &'static str,
    /// Where the build wrote the component.
    pub path: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));

/// The example called `name` (`customer-view`, `order-totals`,
/// `event-counter`, `misbehaving` or `event-counter-v2`).
pub fn find(name: &str) -> Option<&'static Example> {
    ALL.iter().find(|example| example.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_is_a_component() {
        assert_eq!(ALL.len(), 5);
        for example in ALL {
            // Components start with the wasm magic and layer 1 (0x0d 0 1 0).
            assert_eq!(
                &example.wasm[..8],
                b"\0asm\x0d\x00\x01\x00",
                "{}",
                example.name
            );
            assert_eq!(find(example.name).map(|e| e.path), Some(example.path));
        }
    }
}

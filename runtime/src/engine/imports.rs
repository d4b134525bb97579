//! Which imports a projection may have, and the check that enforces it
//! before a component is linked.
//!
//! A projection must be deterministic, so the check refuses any clock,
//! randomness, filesystem, socket or HTTP import with a reason, and any
//! other unknown import by name. It allows the world's own interfaces and
//! the WASI stdio, environment and exit interfaces, which the Rust standard
//! library links into every `wasm32-wasip2` component; the host backs those
//! with an empty sandbox.

use super::error::LoadError;

/// The world's own interfaces, any 0.1.x version: `log`, and `types`, which
/// has no functions but is imported for its type definitions.
const WORLD_INTERFACES: &[&str] = &[
    "projector:projection/log@0.1.",
    "projector:projection/types@0.1.",
];

/// WASI interfaces the standard library links; harmless in the sandbox.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/environment@0.2.",
    "wasi:cli/exit@0.2.",
    "wasi:cli/stdin@0.2.",
    "wasi:cli/stdout@0.2.",
    "wasi:cli/stderr@0.2.",
    "wasi:cli/terminal-input@0.2.",
    "wasi:cli/terminal-output@0.2.",
    "wasi:cli/terminal-stdin@0.2.",
    "wasi:cli/terminal-stdout@0.2.",
    "wasi:cli/terminal-stderr@0.2.",
    "wasi:io/error@0.2.",
    "wasi:io/poll@0.2.",
    "wasi:io/streams@0.2.",
];

/// Interfaces refused with a reason, by prefix.
const FORBIDDEN: &[(&str, &str)] = &[
    (
        "wasi:clocks/",
        "a projection has no clock, so that replaying events gives the same view",
    ),
    (
        "wasi:random/",
        "a projection has no randomness, so that replaying events gives the same view",
    ),
    ("wasi:filesystem/", "a projection has no filesystem"),
    ("wasi:sockets/", "a projection has no network"),
    ("wasi:http/", "a projection has no network"),
];

/// Check one import name.
pub(crate) fn check_import(name: &str) -> Result<(), LoadError> {
    if WORLD_INTERFACES
        .iter()
        .chain(ALLOWED_WASI)
        .any(|allowed| name.starts_with(allowed))
    {
        return Ok(());
    }
    let reason = FORBIDDEN
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map_or("the runtime does not provide it", |(_, reason)| reason);
    Err(LoadError::ForbiddenImport {
        import: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_interface_and_stdio_are_allowed() {
        for name in [
            "projector:projection/log@0.1.0",
            "projector:projection/types@0.1.0",
            "wasi:cli/stderr@0.2.6",
            "wasi:io/streams@0.2.0",
        ] {
            check_import(name).unwrap();
        }
    }

    #[test]
    fn nondeterminism_is_refused_with_a_reason() {
        let err = check_import("wasi:clocks/wall-clock@0.2.6").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("wasi:clocks/wall-clock@0.2.6"),
            "{message}"
        );
        assert!(message.contains("no clock"), "{message}");
        assert!(check_import("wasi:random/random@0.2.6").is_err());
        assert!(check_import("wasi:filesystem/preopens@0.2.6").is_err());
        assert!(check_import("wasi:sockets/tcp@0.2.6").is_err());
    }

    #[test]
    fn unknown_imports_and_other_world_versions_are_refused() {
        let err = check_import("acme:secret/backdoor").unwrap_err();
        assert!(err.to_string().contains("does not provide it"), "{err}");
        assert!(check_import("projector:projection/log@0.2.0").is_err());
    }
}

//! Parsing projector.toml from arbitrary text: never panics, what parses
//! validates, and an error never quotes the text it was given beyond the
//! key it names (a credential pasted in a config must not be echoed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use projector::config::Config;

fuzz_target!(|text: &str| {
    match Config::parse(text) {
        Ok(config) => config.validate().expect("a parsed config validates"),
        Err(err) => {
            let _ = err.to_string();
        }
    }
});

//! `sdwan_conf::parse` on arbitrary UTF-8: it must never panic, and every error must point
//! inside the text.
//!
//! Run: `cd conf/fuzz && cargo +nightly fuzz run config_parse -- -dict=config_parse.dict`
//! (seed the corpus with the examples: `mkdir -p corpus/config_parse &&
//! cp ../examples/*.yaml ../lab/*.yaml corpus/config_parse/`).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(sdwan_conf::ConfigError::Invalid { line, column, .. }) =
        sdwan_conf::parse(text, Path::new("fuzz.yaml"))
    {
        // YAML line breaks: LF, CRLF and a lone CR.
        let lines = 1 + text.replace("\r\n", "\n").matches(['\n', '\r']).count();
        assert!(
            line >= 1 && line <= lines && column >= 1,
            "{line}:{column} of {lines}"
        );
    }
});

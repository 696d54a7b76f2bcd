//! Fuzz target: the structured parsers. The first byte picks the parser;
//! the rest is the file. Parsers must return a value or an error, never
//! panic, overflow the stack or hang; a value must also print as JSON.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use policy_core::input::{Format, gojson};

const FORMATS: &[Format] = &[Format::Json, Format::Jsonc, Format::Yaml, Format::Toml];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Some(format) = FORMATS.get(usize::from(pick) % FORMATS.len()) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if let Ok(value) = format.parse(text, Path::new("fuzz")) {
        let _ = gojson::to_string_indent(&value, "  ");
    }
});

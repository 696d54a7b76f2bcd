//! Fuzz target: textproto against the fixture `.proto` files (and the
//! `# proto-message:` header handling). Never panics; values print as JSON.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use policy_core::input::{Format, ParseOptions, gojson};

fn options() -> &'static ParseOptions {
    static OPTIONS: OnceLock<ParseOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        ParseOptions::new(vec![
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/formats/textproto/protos"),
        ])
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = format!("# proto-message: payments.ServerConfig\n{text}");
    if let Ok(value) = Format::Textproto.parse_with(&text, Path::new("fuzz"), options()) {
        let _ = gojson::to_string_indent(&value, "  ");
    }
});

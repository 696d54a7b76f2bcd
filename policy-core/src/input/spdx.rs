//! SPDX tag-value documents, read with `spdx-rs` and returned in the SPDX
//! JSON model, as conftest returns tools-golang's document marshalled to
//! JSON. Both follow the SPDX JSON schema; empty lists that tools-golang
//! omits are present here.
//!
//! Behind the default-on `sbom` cargo feature.

use std::path::Path;

use regorus::Value;

use super::support::error;
use crate::error::Result;

/// Parses one SPDX tag-value document.
#[cfg(feature = "sbom")]
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    check_lines(text, path)?;
    let doc = spdx_rs::parsers::spdx_from_tag_value(text)
        .map_err(|e| error(path, format!("parse SPDX tag-value: {e}")))?;
    let json = serde_json::to_string(&doc).map_err(|e| error(path, e.to_string()))?;
    Value::from_json_str(&json).map_err(|e| error(path, e.to_string()))
}

/// spdx-rs skips lines it does not understand, so a damaged file could
/// give an empty document: every line must be `Tag: value` (multi-line
/// values in `<text>…</text>`), a comment or blank, and `SPDXVersion` must
/// be present.
#[cfg(feature = "sbom")]
fn check_lines(text: &str, path: &Path) -> Result<()> {
    use super::support::error_at;
    let mut in_text = false;
    let mut has_version = false;
    for (i, line) in text.lines().enumerate() {
        if in_text {
            in_text = !line.contains("</text>");
            continue;
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((tag, value)) = trimmed.split_once(':') else {
            return Err(error_at(path, i + 1, 1, format!("expected \"Tag: value\", found {trimmed:?}")));
        };
        if tag.is_empty() || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(error_at(path, i + 1, 1, format!("invalid tag {tag:?}")));
        }
        has_version |= tag == "SPDXVersion";
        in_text = value.contains("<text>") && !value.contains("</text>");
    }
    if in_text {
        return Err(error(path, "unterminated <text> value"));
    }
    if !has_version {
        return Err(error(path, "parse SPDX tag-value: no SPDXVersion tag"));
    }
    Ok(())
}

/// Without the `sbom` feature, SPDX files are refused.
#[cfg(not(feature = "sbom"))]
pub(crate) fn parse(_text: &str, path: &Path) -> Result<Value> {
    Err(error(path, "this build of regard has no SPDX support (cargo feature `sbom`)"))
}

#[cfg(all(test, feature = "sbom"))]
mod tests {
    use super::*;

    #[test]
    fn tag_value_to_json_model() {
        let text = "SPDXVersion: SPDX-2.2\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nDocumentName: demo\nDocumentNamespace: https://example.com/demo\nCreator: Tool: regard\nCreated: 2024-01-01T00:00:00Z\n\nPackageName: acme\nSPDXID: SPDXRef-acme\nPackageDownloadLocation: NOASSERTION\nPackageLicenseConcluded: MIT\nPackageLicenseDeclared: MIT\nPackageCopyrightText: NOASSERTION\nFilesAnalyzed: false\n";
        let v = parse(text, Path::new("sbom.spdx")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["name"], Value::from("demo"));
        assert_eq!(v["packages"][0]["name"], Value::from("acme"));
        assert_eq!(v["packages"][0]["licenseConcluded"], Value::from("MIT"));
        assert!(parse("SPDXVersion SPDX-2.2", Path::new("sbom.spdx")).is_err());
    }
}

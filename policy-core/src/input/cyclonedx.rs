//! CycloneDX SBOMs. As in conftest, a file that is valid JSON is used as
//! the JSON it is (conftest only checks that it decodes); otherwise it is
//! read as CycloneDX XML (`cyclonedx-bom`, spec versions 1.3 to 1.5, taken
//! from the `xmlns`) and turned into the CycloneDX JSON model.
//!
//! The XML path is behind the default-on `sbom` cargo feature.

use std::path::Path;

use regorus::Value;

use super::support::error;
use crate::error::Result;

/// Parses one CycloneDX document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        if !json.is_object() {
            return Err(error(
                path,
                "decode CycloneDX BOM: the JSON document is not an object",
            ));
        }
        return super::json::parse(text, path);
    }
    xml(text, path)
}

#[cfg(feature = "sbom")]
fn xml(text: &str, path: &Path) -> Result<Value> {
    use cyclonedx_bom::models::bom::{Bom, SpecVersion};

    let version = if text.contains("http://cyclonedx.org/schema/bom/1.5") {
        SpecVersion::V1_5
    } else if text.contains("http://cyclonedx.org/schema/bom/1.4") {
        SpecVersion::V1_4
    } else if text.contains("http://cyclonedx.org/schema/bom/1.3") {
        SpecVersion::V1_3
    } else {
        return Err(error(
            path,
            "decode CycloneDX BOM: not JSON, and not CycloneDX XML of a supported version (1.3, 1.4, 1.5)",
        ));
    };
    let bom = Bom::parse_from_xml_with_version(text.as_bytes(), version)
        .map_err(|e| error(path, format!("decode CycloneDX BOM: {e}")))?;
    let mut out = Vec::new();
    bom.output_as_json(&mut out, version)
        .map_err(|e| error(path, format!("convert CycloneDX BOM to JSON: {e}")))?;
    let json = String::from_utf8(out).map_err(|e| error(path, e.to_string()))?;
    Value::from_json_str(&json).map_err(|e| error(path, e.to_string()))
}

#[cfg(not(feature = "sbom"))]
fn xml(_text: &str, path: &Path) -> Result<Value> {
    Err(error(
        path,
        "this build of regard reads CycloneDX JSON only (cargo feature `sbom`)",
    ))
}

#[cfg(all(test, feature = "sbom"))]
mod tests {
    use super::*;

    #[test]
    fn json_as_is_and_xml_to_the_json_model() {
        let v = parse(
            r#"{"bomFormat":"CycloneDX","specVersion":"1.6","extra":1}"#,
            Path::new("b.cyclonedx"),
        )
        .ok();
        assert_eq!(
            v.and_then(|v| serde_json::to_string(&v).ok()).as_deref(),
            Some(r#"{"bomFormat":"CycloneDX","extra":1,"specVersion":"1.6"}"#)
        );
        let xml = "<?xml version=\"1.0\"?>\n<bom xmlns=\"http://cyclonedx.org/schema/bom/1.4\" version=\"1\">\n<components><component type=\"library\"><name>acme</name><version>1.0</version></component></components>\n</bom>";
        let v = parse(xml, Path::new("b.cyclonedx")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            r#"{"bomFormat":"CycloneDX","components":[{"name":"acme","type":"library","version":"1.0"}],"specVersion":"1.4","version":1}"#
        );
        assert!(parse("<bom>", Path::new("b.cyclonedx")).is_err());
    }
}

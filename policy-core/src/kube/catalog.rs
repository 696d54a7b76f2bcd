//! The embedded Kubernetes schemas, for one version at a time.
//!
//! `data/kube-schemas.json.zz` (made by `scripts/gen-kube-schemas.py` from the
//! `kubernetes-validate` package's strict schemas) is a zlib stream of a header
//! line (versions, the definitions of each version, the apiVersion/kind → definition
//! map) and one definition per line, identical definitions shared across versions.
//! [`Catalog::load`] inflates it and reads the header for one version; the
//! definitions a manifest needs are parsed when a kind is first validated.

use std::collections::HashMap;

use serde::Deserialize;

use super::{KubeError, KubeVersion};

/// The compressed schemas of every embedded version.
static DATA: &[u8] = include_bytes!("../../data/kube-schemas.json.zz");

#[derive(Deserialize)]
struct Header {
    source: String,
    versions: Vec<String>,
    index: HashMap<String, HashMap<String, usize>>,
    kinds: HashMap<String, HashMap<String, String>>,
}

/// The schemas of one Kubernetes version.
#[derive(Debug)]
pub(crate) struct Catalog {
    /// Where the data came from (package and licence), for reports.
    pub(crate) source: String,
    text: String,
    /// Byte range of every definition line in `text`.
    lines: Vec<(usize, usize)>,
    /// Definition name → line number, for this version.
    index: HashMap<String, usize>,
    /// `"apiVersion kind"` → definition name, for this version.
    kinds: HashMap<String, String>,
}

/// The versions the embedded data covers, oldest first.
pub(crate) fn versions() -> Result<Vec<KubeVersion>, KubeError> {
    let (header, _) = inflate()?;
    let header: Header = parse_header(&header)?;
    header.versions.iter().map(|v| v.parse()).collect()
}

/// Every `(apiVersion, kind)` some embedded version serves.
pub(crate) fn served_kinds() -> Result<std::collections::BTreeSet<(String, String)>, KubeError> {
    let (header, _) = inflate()?;
    let header: Header = parse_header(&header)?;
    Ok(header
        .kinds
        .values()
        .flat_map(|kinds| kinds.keys())
        .filter_map(|key| key.split_once(' '))
        .map(|(api_version, kind)| (api_version.to_owned(), kind.to_owned()))
        .collect())
}

fn inflate() -> Result<(String, String), KubeError> {
    let bytes = miniz_oxide::inflate::decompress_to_vec_zlib(DATA)
        .map_err(|e| KubeError::Data(format!("cannot inflate the embedded schemas: {e:?}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| KubeError::Data("the embedded schemas are not UTF-8".to_owned()))?;
    let header_end = text
        .find('\n')
        .ok_or_else(|| KubeError::Data("the embedded schemas have no header".to_owned()))?;
    let header = text.get(..header_end).unwrap_or_default().to_owned();
    Ok((header, text))
}

fn parse_header(header: &str) -> Result<Header, KubeError> {
    serde_json::from_str(header)
        .map_err(|e| KubeError::Data(format!("bad header in the embedded schemas: {e}")))
}

impl Catalog {
    /// The schemas of `version`, or an error naming the versions that are embedded.
    pub(crate) fn load(version: KubeVersion) -> Result<Catalog, KubeError> {
        let (header, text) = inflate()?;
        let mut header = parse_header(&header)?;
        let key = version.to_string();
        let (Some(index), Some(kinds)) = (header.index.remove(&key), header.kinds.remove(&key))
        else {
            return Err(KubeError::NoSchemas {
                version,
                available: header.versions.join(", "),
            });
        };
        let mut lines = Vec::new();
        let mut start = header_len(&text);
        for line in text.get(start..).unwrap_or_default().split_inclusive('\n') {
            lines.push((start, start + line.trim_end_matches('\n').len()));
            start += line.len();
        }
        Ok(Catalog {
            source: header.source,
            text,
            lines,
            index,
            kinds,
        })
    }

    /// The definition name of a built-in `apiVersion`/`kind`.
    pub(crate) fn kind(&self, api_version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&format!("{api_version} {kind}"))
            .map(String::as_str)
    }

    /// A definition of this version, parsed.
    pub(crate) fn definition(&self, name: &str) -> Result<serde_json::Value, KubeError> {
        let line = self
            .index
            .get(name)
            .and_then(|n| self.lines.get(*n))
            .and_then(|(a, b)| self.text.get(*a..*b))
            .ok_or_else(|| KubeError::Data(format!("definition {name} is missing")))?;
        serde_json::from_str(line)
            .map_err(|e| KubeError::Data(format!("definition {name} does not parse: {e}")))
    }
}

fn header_len(text: &str) -> usize {
    text.find('\n').map_or(text.len(), |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_six_versions_from_kubernetes_validate() {
        let versions: Vec<String> = versions()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(versions, ["1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]);
        let catalog = Catalog::load(KubeVersion::new(1, 37)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            catalog.source,
            "kubernetes-validate-1.37.0 (PyPI), Apache-2.0"
        );
        assert_eq!(
            catalog.kind("apps/v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(catalog.kind("extensions/v1beta1", "Ingress"), None);
        let def = catalog
            .definition("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
            .unwrap_or_default();
        assert_eq!(
            def,
            serde_json::json!({"type": ["string", "integer", "null"]})
        );
    }

    #[test]
    fn a_version_outside_the_data_names_the_embedded_ones() {
        let err = Catalog::load(KubeVersion::new(1, 20))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "no embedded schemas for Kubernetes 1.20 (embedded: 1.32, 1.33, 1.34, 1.35, 1.36, 1.37); use --no-schema to check deprecated APIs only"
        );
    }
}

//! SPDX tag-value documents, returned in the SPDX 2.x JSON model, as
//! conftest returns tools-golang's document marshalled to JSON.
//!
//! Hand-written: the one Rust tag-value reader on crates.io (`spdx-rs`)
//! fills missing fields with example values (creators, the current time),
//! which would be wrong input. The mapping follows the SPDX JSON schema:
//! document fields, `creationInfo`, `packages` (with `hasFiles` listing the
//! files that follow a package), `files`, `snippets`,
//! `hasExtractedLicensingInfos`, `relationships` and `annotations` (placed
//! on the element they annotate). Empty fields are omitted; `<text>…</text>`
//! values may span lines. Unknown tags are errors.

use std::collections::BTreeMap;
use std::path::Path;

use regorus::Value;

use super::support::{error, error_at, object};
use crate::error::Result;

type Obj = BTreeMap<String, Value>;

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Document,
    Package,
    File,
    Snippet,
    License,
}

/// Parses one SPDX tag-value document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let mut doc = Obj::new();
    let mut creation = Obj::new();
    let mut packages: Vec<Obj> = Vec::new();
    let mut files: Vec<Obj> = Vec::new();
    let mut snippets: Vec<Obj> = Vec::new();
    let mut licenses: Vec<Obj> = Vec::new();
    let mut relationships: Vec<Obj> = Vec::new();
    let mut annotations: Vec<Obj> = Vec::new();
    let mut section = Section::Document;
    let mut has_version = false;

    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while let Some(line) = lines.get(i) {
        let line_no = i + 1;
        i += 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((tag, rest)) = trimmed.split_once(':') else {
            return Err(error_at(
                path,
                line_no,
                1,
                format!("expected \"Tag: value\", found {trimmed:?}"),
            ));
        };
        let tag = tag.trim();
        let mut value = rest.trim().to_owned();
        if let Some(start) = value.find("<text>") {
            let mut body = value.get(start + 6..).unwrap_or("").to_owned();
            while !body.contains("</text>") {
                let Some(next) = lines.get(i) else {
                    return Err(error_at(
                        path,
                        line_no,
                        1,
                        format!("{tag}: unterminated <text> value"),
                    ));
                };
                i += 1;
                body.push('\n');
                body.push_str(next);
            }
            let end = body.find("</text>").unwrap_or(body.len());
            value = body.get(..end).unwrap_or("").to_owned();
        }
        let v = Value::from(value.as_str());
        let push = |obj: &mut Obj, key: &str, v: Value| {
            let list = obj
                .entry(key.to_owned())
                .or_insert_with(|| Value::from(Vec::<Value>::new()));
            if let Ok(items) = list.as_array_mut() {
                items.push(v);
            }
        };
        let checksum = |value: &str| -> Value {
            let (alg, sum) = value.split_once(':').unwrap_or((value, ""));
            object([
                ("algorithm".to_owned(), Value::from(alg.trim())),
                ("checksumValue".to_owned(), Value::from(sum.trim())),
            ])
        };
        // Tags that start a new element.
        match tag {
            "PackageName" => {
                section = Section::Package;
                packages.push(Obj::new());
            }
            "FileName" => {
                section = Section::File;
                files.push(Obj::new());
            }
            "SnippetSPDXID" => {
                section = Section::Snippet;
                snippets.push(Obj::new());
            }
            "LicenseID" => {
                section = Section::License;
                licenses.push(Obj::new());
            }
            _ => {}
        }
        let current: Option<&mut Obj> = match section {
            Section::Document => Some(&mut doc),
            Section::Package => packages.last_mut(),
            Section::File => files.last_mut(),
            Section::Snippet => snippets.last_mut(),
            Section::License => licenses.last_mut(),
        };
        let Some(current) = current else { continue };
        let unknown = || error_at(path, line_no, 1, format!("unknown tag {tag:?}"));
        match tag {
            // Document creation information.
            "SPDXVersion" => {
                has_version = true;
                doc.insert("spdxVersion".to_owned(), v);
            }
            "DataLicense" => {
                doc.insert("dataLicense".to_owned(), v);
            }
            "DocumentName" => {
                doc.insert("name".to_owned(), v);
            }
            "DocumentNamespace" => {
                doc.insert("documentNamespace".to_owned(), v);
            }
            "DocumentComment" => {
                doc.insert("comment".to_owned(), v);
            }
            "ExternalDocumentRef" => {
                let mut parts = value.splitn(3, ' ');
                let id = parts.next().unwrap_or("");
                let uri = parts.next().unwrap_or("");
                let sum = parts.next().unwrap_or("");
                let r = object([
                    ("externalDocumentId".to_owned(), Value::from(id)),
                    ("spdxDocument".to_owned(), Value::from(uri)),
                    ("checksum".to_owned(), checksum(sum)),
                ]);
                push(&mut doc, "externalDocumentRefs", r);
            }
            "Creator" => push(&mut creation, "creators", v),
            "Created" => {
                creation.insert("created".to_owned(), v);
            }
            "CreatorComment" => {
                creation.insert("comment".to_owned(), v);
            }
            "LicenseListVersion" => {
                creation.insert("licenseListVersion".to_owned(), v);
            }
            "SPDXID" => {
                current.insert("SPDXID".to_owned(), v);
            }
            // Packages.
            "PackageName" | "FileName" if section != Section::Document => {
                let key = if tag == "PackageName" {
                    "name"
                } else {
                    "fileName"
                };
                current.insert(key.to_owned(), v);
            }
            "PackageVersion" => put(current, "versionInfo", v),
            "PackageFileName" => put(current, "packageFileName", v),
            "PackageSupplier" => put(current, "supplier", v),
            "PackageOriginator" => put(current, "originator", v),
            "PackageDownloadLocation" => put(current, "downloadLocation", v),
            "FilesAnalyzed" => put(
                current,
                "filesAnalyzed",
                Value::from(value.eq_ignore_ascii_case("true")),
            ),
            "PackageVerificationCode" => {
                let (code, excluded) = match value.split_once('(') {
                    Some((c, rest)) => (c.trim(), Some(rest.trim_end_matches(')').trim())),
                    None => (value.as_str(), None),
                };
                let mut entries =
                    vec![("packageVerificationCodeValue".to_owned(), Value::from(code))];
                if let Some(ex) = excluded {
                    let ex = ex.strip_prefix("excludes:").unwrap_or(ex).trim();
                    entries.push((
                        "packageVerificationCodeExcludedFiles".to_owned(),
                        Value::from(vec![Value::from(ex)]),
                    ));
                }
                put(current, "packageVerificationCode", object(entries));
            }
            "PackageChecksum" | "FileChecksum" => push(current, "checksums", checksum(&value)),
            "PackageHomePage" => put(current, "homepage", v),
            "PackageSourceInfo" => put(current, "sourceInfo", v),
            "PackageLicenseConcluded" | "LicenseConcluded" | "SnippetLicenseConcluded" => {
                put(current, "licenseConcluded", v);
            }
            "PackageLicenseInfoFromFiles" => push(current, "licenseInfoFromFiles", v),
            "PackageLicenseDeclared" => put(current, "licenseDeclared", v),
            "PackageLicenseComments" | "LicenseComments" | "SnippetLicenseComments" => {
                put(current, "licenseComments", v);
            }
            "PackageCopyrightText" | "FileCopyrightText" | "SnippetCopyrightText" => {
                put(current, "copyrightText", v);
            }
            "PackageSummary" => put(current, "summary", v),
            "PackageDescription" => put(current, "description", v),
            "PackageComment" | "FileComment" | "SnippetComment" => put(current, "comment", v),
            "PackageAttributionText" | "FileAttributionText" | "SnippetAttributionText" => {
                push(current, "attributionTexts", v);
            }
            "ExternalRef" => {
                let mut parts = value.splitn(3, ' ');
                let r = object([
                    (
                        "referenceCategory".to_owned(),
                        Value::from(parts.next().unwrap_or("")),
                    ),
                    (
                        "referenceType".to_owned(),
                        Value::from(parts.next().unwrap_or("")),
                    ),
                    (
                        "referenceLocator".to_owned(),
                        Value::from(parts.next().unwrap_or("")),
                    ),
                ]);
                push(current, "externalRefs", r);
            }
            "ExternalRefComment" => {
                if let Some(Ok(refs)) = current.get_mut("externalRefs").map(Value::as_array_mut) {
                    let n = refs.len();
                    if let Some(Ok(last)) = n
                        .checked_sub(1)
                        .and_then(|i| refs.get_mut(i))
                        .map(Value::as_object_mut)
                    {
                        last.insert(Value::from("comment"), v);
                    }
                }
            }
            "PrimaryPackagePurpose" => put(current, "primaryPackagePurpose", v),
            "ReleaseDate" => put(current, "releaseDate", v),
            "BuiltDate" => put(current, "builtDate", v),
            "ValidUntilDate" => put(current, "validUntilDate", v),
            // Files.
            "FileType" => push(current, "fileTypes", v),
            "LicenseInfoInFile" => push(current, "licenseInfoInFiles", v),
            "FileNotice" => put(current, "noticeText", v),
            "FileContributor" => push(current, "fileContributors", v),
            // Snippets.
            "SnippetFromFileSPDXID" => put(current, "snippetFromFile", v),
            "SnippetName" => put(current, "name", v),
            "LicenseInfoInSnippet" => push(current, "licenseInfoInSnippets", v),
            "SnippetByteRange" | "SnippetLineRange" => {
                push(current, "ranges", Value::from(format!("{tag}: {value}")))
            }
            // Other licensing information.
            "LicenseID" => put(current, "licenseId", v),
            "ExtractedText" => put(current, "extractedText", v),
            "LicenseName" => put(current, "name", v),
            "LicenseCrossReference" => push(current, "seeAlsos", v),
            "LicenseComment" => put(current, "comment", v),
            // Relationships and annotations.
            "Relationship" => {
                let mut parts = value.split_whitespace();
                let r = [
                    ("spdxElementId", parts.next()),
                    ("relationshipType", parts.next()),
                    ("relatedSpdxElement", parts.next()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v.unwrap_or(""))))
                .collect();
                relationships.push(r);
            }
            "RelationshipComment" => {
                if let Some(last) = relationships.last_mut() {
                    last.insert("comment".to_owned(), v);
                }
            }
            "Annotator" => {
                let mut a = Obj::new();
                a.insert("annotator".to_owned(), v);
                annotations.push(a);
            }
            "AnnotationDate" | "AnnotationType" | "SPDXREF" | "AnnotationComment" => {
                let key = match tag {
                    "AnnotationDate" => "annotationDate",
                    "AnnotationType" => "annotationType",
                    "SPDXREF" => "spdxElementId",
                    _ => "comment",
                };
                if let Some(last) = annotations.last_mut() {
                    last.insert(key.to_owned(), v);
                }
            }
            _ => return Err(unknown()),
        }
    }
    if !has_version {
        return Err(error(path, "parse SPDX tag-value: no SPDXVersion tag"));
    }

    // Files that follow a package belong to it (`hasFiles`).
    let mut package_of_file: Vec<Option<usize>> = Vec::new();
    {
        // Recompute ownership from the order of elements in the text.
        let mut last_package: Option<usize> = None;
        let mut pkg = 0;
        for line in text.lines() {
            let tag = line.trim().split(':').next().unwrap_or("").trim();
            if tag == "PackageName" {
                last_package = Some(pkg);
                pkg += 1;
            } else if tag == "FileName" {
                package_of_file.push(last_package);
            }
        }
    }
    for (file, owner) in files.iter().zip(&package_of_file) {
        if let (Some(owner), Some(id)) = (owner, file.get("SPDXID"))
            && let Some(p) = packages.get_mut(*owner)
        {
            let list = p
                .entry("hasFiles".to_owned())
                .or_insert_with(|| Value::from(Vec::<Value>::new()));
            if let Ok(items) = list.as_array_mut() {
                items.push(id.clone());
            }
        }
    }
    // Annotations go on the element they name.
    let mut doc_annotations = Vec::new();
    for a in annotations {
        let target = a.get("spdxElementId").cloned();
        let mut a = a;
        a.remove("spdxElementId");
        let value = object(a);
        let holder = target.and_then(|t| {
            packages
                .iter_mut()
                .chain(files.iter_mut())
                .chain(snippets.iter_mut())
                .find(|o| o.get("SPDXID") == Some(&t))
        });
        match holder {
            Some(h) => {
                let list = h
                    .entry("annotations".to_owned())
                    .or_insert_with(|| Value::from(Vec::<Value>::new()));
                if let Ok(items) = list.as_array_mut() {
                    items.push(value);
                }
            }
            None => doc_annotations.push(value),
        }
    }
    if !creation.is_empty() {
        doc.insert("creationInfo".to_owned(), object(creation));
    }
    let mut add_list = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            doc.insert(key.to_owned(), Value::from(items));
        }
    };
    add_list("packages", packages.into_iter().map(object).collect());
    add_list("files", files.into_iter().map(object).collect());
    add_list("snippets", snippets.into_iter().map(object).collect());
    add_list(
        "hasExtractedLicensingInfos",
        licenses.into_iter().map(object).collect(),
    );
    add_list(
        "relationships",
        relationships.into_iter().map(object).collect(),
    );
    add_list("annotations", doc_annotations);
    Ok(object(doc))
}

fn put(obj: &mut Obj, key: &str, v: Value) {
    obj.insert(key.to_owned(), v);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_value_to_json_model() {
        let text = "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nSPDXID: SPDXRef-DOCUMENT\nDocumentName: demo\nDocumentNamespace: https://example.com/demo\nCreator: Tool: regard\nCreated: 2024-01-01T00:00:00Z\n\nPackageName: acme\nSPDXID: SPDXRef-acme\nPackageDownloadLocation: NOASSERTION\nPackageLicenseConcluded: MIT\nFilesAnalyzed: true\nPackageComment: <text>two\nlines</text>\n\nFileName: ./a.c\nSPDXID: SPDXRef-a\nFileChecksum: SHA1: abc\n\nRelationship: SPDXRef-DOCUMENT DESCRIBES SPDXRef-acme\n";
        let v = parse(text, Path::new("sbom.spdx")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            concat!(
                r#"{"SPDXID":"SPDXRef-DOCUMENT","creationInfo":{"created":"2024-01-01T00:00:00Z","creators":["Tool: regard"]},"#,
                r#""dataLicense":"CC0-1.0","documentNamespace":"https://example.com/demo","#,
                r#""files":[{"SPDXID":"SPDXRef-a","checksums":[{"algorithm":"SHA1","checksumValue":"abc"}],"fileName":"./a.c"}],"#,
                r#""name":"demo","packages":[{"SPDXID":"SPDXRef-acme","comment":"two\nlines","downloadLocation":"NOASSERTION","filesAnalyzed":true,"hasFiles":["SPDXRef-a"],"licenseConcluded":"MIT","name":"acme"}],"#,
                r#""relationships":[{"relatedSpdxElement":"SPDXRef-acme","relationshipType":"DESCRIBES","spdxElementId":"SPDXRef-DOCUMENT"}],"spdxVersion":"SPDX-2.3"}"#
            )
        );
    }

    #[test]
    fn errors() {
        let err = |t: &str| parse(t, Path::new("s.spdx")).err().map(|e| e.to_string());
        assert_eq!(
            err("SPDXVersion: SPDX-2.2\nDataLicense CC0-1.0\n").as_deref(),
            Some("s.spdx:2:1: expected \"Tag: value\", found \"DataLicense CC0-1.0\"")
        );
        assert_eq!(
            err("SPDXVersion: SPDX-2.2\nBogus: x\n").as_deref(),
            Some("s.spdx:2:1: unknown tag \"Bogus\"")
        );
        assert!(err("DataLicense: CC0-1.0\n").is_some());
    }
}

//! Documents kept from one read of a policy directory to the next.
//!
//! A server that reloads a bundle (a tag that moved) usually gets most of its
//! files back unchanged. [`DocumentCache`] remembers the files of the last
//! read with their bytes and documents, and parses again only the files whose
//! bytes differ (compared byte for byte); [`super::TemplateCache`] then
//! finds the unchanged templates among those documents.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use regorus::Value;

use super::{PolicyBundle, read_document_files};
use crate::Error;

/// A directory's documents by file (path relative to the directory).
pub type FileDocuments = Vec<(String, Arc<Vec<Value>>)>;

/// The files of the last read, each with the bytes it was parsed from and
/// its documents.
#[derive(Debug, Default)]
pub struct DocumentCache {
    last: Mutex<BTreeMap<String, Kept>>,
}

/// One file of the last read.
#[derive(Debug)]
struct Kept {
    bytes: Vec<u8>,
    docs: Arc<Vec<Value>>,
}

impl DocumentCache {
    /// An empty cache.
    pub fn new() -> DocumentCache {
        DocumentCache::default()
    }

    /// The documents of the directory `dir`, by file (relative path), as
    /// [`PolicyBundle::dir_documents`] reads them; files whose bytes are
    /// those of the last read keep their documents, the others are parsed.
    /// After a successful read the cache holds this read's files; after an
    /// error it is unchanged.
    pub fn dir_documents(&self, dir: &Path) -> Result<FileDocuments, Error> {
        let paths = PolicyBundle::dir_files(dir)?;
        let root_text = dir.to_string_lossy();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut files = Vec::with_capacity(paths.len());
        let mut changed = Vec::new();
        for path in &paths {
            let rel = path
                .strip_prefix(&*root_text)
                .unwrap_or(path)
                .trim_start_matches('/')
                .to_owned();
            let bytes = std::fs::read(path).map_err(|e| Error::Io {
                path: path.into(),
                source: e,
            })?;
            let kept = last
                .get(&rel)
                .filter(|k| k.bytes == bytes)
                .map(|k| Arc::clone(&k.docs));
            if kept.is_none() {
                changed.push(path.clone());
            }
            files.push((rel, bytes, kept));
        }
        let mut fresh: BTreeMap<String, Vec<Value>> = if changed.is_empty() {
            BTreeMap::new()
        } else {
            read_document_files(&changed)?.into_iter().collect()
        };
        let mut out = Vec::with_capacity(files.len());
        let mut next = BTreeMap::new();
        for ((rel, bytes, kept), path) in files.into_iter().zip(&paths) {
            let docs = match kept {
                Some(docs) => docs,
                None => Arc::new(fresh.remove(path).ok_or_else(|| Error::Io {
                    path: path.into(),
                    source: std::io::Error::other("read, but its documents went missing"),
                })?),
            };
            next.insert(
                rel.clone(),
                Kept {
                    bytes,
                    docs: Arc::clone(&docs),
                },
            );
            out.push((rel, docs));
        }
        *last = next;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &FileDocuments) -> Vec<(String, Vec<String>)> {
        files
            .iter()
            .map(|(rel, docs)| {
                let docs = docs
                    .iter()
                    .map(|d| d["metadata"]["name"].to_string())
                    .collect();
                (rel.clone(), docs)
            })
            .collect()
    }

    #[test]
    fn a_new_version_parses_only_the_files_that_changed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(
            root.join("a.yaml"),
            "metadata: {name: a1}\n---\nmetadata: {name: a2}\n",
        )
        .unwrap();
        std::fs::write(root.join("sub/b.json"), r#"{"metadata": {"name": "b"}}"#).unwrap();
        std::fs::write(root.join("notes.txt"), "not a policy").unwrap();
        let cache = DocumentCache::new();

        let first = cache.dir_documents(root).unwrap();
        assert_eq!(
            names(&first),
            [
                (
                    "a.yaml".to_owned(),
                    vec!["\"a1\"".to_owned(), "\"a2\"".to_owned()]
                ),
                ("sub/b.json".to_owned(), vec!["\"b\"".to_owned()]),
            ]
        );

        // b changes, a does not: a keeps the documents parsed the first time.
        std::fs::write(root.join("sub/b.json"), r#"{"metadata": {"name": "b2"}}"#).unwrap();
        let second = cache.dir_documents(root).unwrap();
        assert_eq!(
            names(&second)[1],
            ("sub/b.json".to_owned(), vec!["\"b2\"".to_owned()])
        );
        assert!(Arc::ptr_eq(&first[0].1, &second[0].1));
        assert!(!Arc::ptr_eq(&first[1].1, &second[1].1));

        // A file that no longer parses is an error and leaves what was kept alone.
        std::fs::write(root.join("a.yaml"), "metadata: [unclosed\n").unwrap();
        let error = cache.dir_documents(root).unwrap_err().to_string();
        assert!(error.contains("a.yaml"), "{error}");
        std::fs::write(
            root.join("a.yaml"),
            "metadata: {name: a1}\n---\nmetadata: {name: a2}\n",
        )
        .unwrap();
        let third = cache.dir_documents(root).unwrap();
        assert!(Arc::ptr_eq(&first[0].1, &third[0].1));
    }

    #[test]
    fn a_bundle_without_yaml_or_json_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "# nothing").unwrap();
        assert!(DocumentCache::new().dir_documents(dir.path()).is_err());
    }
}

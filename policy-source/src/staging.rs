//! The staging directory every fetch writes into before anything reaches the
//! destination. Entry names from the network (layer titles, archive paths)
//! are checked here, once: relative, no `..`, no absolute or drive paths. The
//! staging directory only ever receives directories and regular files that
//! this module creates, so no link inside it can redirect a later write. Every
//! byte written is charged against the size limit. Only a complete download is
//! moved into the destination ([`Staging::commit`]); a failed one is dropped
//! with its temporary directory.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write as _};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// A temporary directory beside the destination, with a byte budget.
#[derive(Debug)]
pub(crate) struct Staging {
    dir: tempfile::TempDir,
    /// `dir/content`: renamed onto the destination when that does not exist.
    root: PathBuf,
    url: String,
    limit: u64,
    used: u64,
    files: BTreeSet<PathBuf>,
}

impl Staging {
    /// A fresh staging directory inside `parent` (created if missing), for
    /// the source `url`.
    pub(crate) fn new(parent: &Path, url: &str, limit: u64) -> Result<Staging> {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let dir = tempfile::Builder::new()
            .prefix(".regard-pull-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let root = dir.path().join("content");
        fs::create_dir(&root).map_err(|e| Error::io(&root, e))?;
        Ok(Staging {
            dir,
            root,
            url: url.to_owned(),
            limit,
            used: 0,
            files: BTreeSet::new(),
        })
    }

    /// The source this staging belongs to.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// How many bytes may still be written.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Counts `n` bytes against the limit.
    pub(crate) fn charge(&mut self, n: u64) -> Result<()> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            return Err(self.too_large());
        }
        Ok(())
    }

    pub(crate) fn too_large(&self) -> Error {
        Error::TooLarge {
            url: self.url.clone(),
            limit: self.limit,
        }
    }

    /// Checks an entry name from the source and returns it as a relative path.
    pub(crate) fn relative(&self, entry: &str) -> Result<PathBuf> {
        let refuse = |reason: &str| Error::UnsafePath {
            url: self.url.clone(),
            entry: entry.to_owned(),
            reason: reason.to_owned(),
        };
        if entry.contains('\0') {
            return Err(refuse("the name contains a NUL byte"));
        }
        if entry.starts_with('/') || entry.starts_with('\\') || has_drive(entry) {
            return Err(refuse("absolute paths are not extracted"));
        }
        let mut out = PathBuf::new();
        for part in entry.split(['/', '\\']) {
            match part {
                "" | "." => {}
                ".." => return Err(refuse("the path leaves the destination")),
                p => out.push(p),
            }
        }
        // `Path` may still see a prefix or root in a component on odd platforms.
        if out.as_os_str().is_empty() {
            return Err(refuse("empty path"));
        }
        if out.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(refuse("the path leaves the destination"));
        }
        Ok(out)
    }

    /// Creates a directory entry.
    pub(crate) fn mkdir(&self, entry: &str) -> Result<()> {
        let rel = self.relative(entry)?;
        let path = self.root.join(rel);
        fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))
    }

    /// Writes one file from `reader`, charging its size; `entry` is the
    /// unchecked name from the source.
    pub(crate) fn write_from(&mut self, entry: &str, reader: impl Read) -> Result<()> {
        let rel = self.relative(entry)?;
        if !self.files.insert(rel.clone()) {
            return Err(Error::UnsafePath {
                url: self.url.clone(),
                entry: entry.to_owned(),
                reason: "two entries have this name".to_owned(),
            });
        }
        let path = self.root.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut file = fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        let remaining = self.remaining();
        let mut limited = reader.take(remaining.saturating_add(1));
        let copied = std::io::copy(&mut limited, &mut file).map_err(|e| Error::Archive {
            url: self.url.clone(),
            detail: format!("{entry}: {e}"),
        })?;
        file.flush().map_err(|e| Error::io(&path, e))?;
        self.charge(copied)
    }

    /// Writes one file from memory.
    pub(crate) fn write(&mut self, entry: &str, bytes: &[u8]) -> Result<()> {
        self.write_from(entry, bytes)
    }

    /// The files staged so far, relative to the root.
    pub(crate) fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.files.iter()
    }

    /// Keeps only `subdir` of what was staged: it becomes the new root.
    pub(crate) fn select_subdir(&mut self, subdir: &str) -> Result<()> {
        let rel = self.relative(subdir)?;
        let chosen = self.root.join(&rel);
        if !chosen.is_dir() {
            return Err(Error::NotFound {
                url: self.url.clone(),
                detail: format!("no directory {subdir:?} in the source"),
            });
        }
        self.files = self
            .files
            .iter()
            .filter_map(|f| f.strip_prefix(&rel).ok().map(Path::to_path_buf))
            .collect();
        self.root = chosen;
        Ok(())
    }

    /// Moves the staged files into `dest`. A missing `dest` is created by one
    /// rename of the whole staging directory; into an existing one each file
    /// is renamed over its counterpart (only after the whole download
    /// succeeded). Returns the files written, relative to `dest`.
    pub(crate) fn commit(self, dest: &Path) -> Result<Vec<PathBuf>> {
        let files: Vec<PathBuf> = self.files.iter().cloned().collect();
        match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::rename(&self.root, dest).map_err(|e| Error::io(dest, e))?;
            }
            Err(e) => return Err(Error::io(dest, e)),
            Ok(meta) if !meta.is_dir() => {
                return Err(Error::io(
                    dest,
                    std::io::Error::other("the destination exists and is not a directory"),
                ));
            }
            Ok(_) => {
                for rel in &files {
                    let target = dest.join(rel);
                    if let Some(parent) = target.parent() {
                        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    let from = self.root.join(rel);
                    fs::rename(&from, &target).map_err(|e| Error::io(&target, e))?;
                }
            }
        }
        drop(self.dir);
        Ok(files)
    }

    /// Keeps the staged files where they are and hands over the temporary
    /// directory that owns them (removed when dropped).
    pub(crate) fn into_temp(self) -> (tempfile::TempDir, PathBuf) {
        (self.dir, self.root)
    }
}

/// `C:` or `c:\…`: a Windows drive prefix.
fn has_drive(entry: &str) -> bool {
    let mut chars = entry.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staging(limit: u64) -> (tempfile::TempDir, Staging) {
        let parent = tempfile::tempdir().unwrap();
        let s = Staging::new(parent.path(), "src", limit).unwrap();
        (parent, s)
    }

    #[test]
    fn refuses_escaping_names() {
        let (_p, s) = staging(100);
        for (entry, reason) in [
            ("../x.rego", "the path leaves the destination"),
            ("a/../../x.rego", "the path leaves the destination"),
            ("/etc/passwd", "absolute paths are not extracted"),
            ("C:/x", "absolute paths are not extracted"),
            ("./", "empty path"),
        ] {
            let err = s.relative(entry).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("src: refusing entry {entry:?}: {reason}")
            );
        }
        assert_eq!(
            s.relative("./a//b.rego").unwrap(),
            PathBuf::from("a/b.rego")
        );
    }

    #[test]
    fn budget_and_duplicates() {
        let (_p, mut s) = staging(10);
        s.write("a.rego", b"12345").unwrap();
        assert_eq!(
            s.write("a.rego", b"1").unwrap_err().to_string(),
            "src: refusing entry \"a.rego\": two entries have this name"
        );
        assert_eq!(
            s.write("b.rego", b"123456").unwrap_err().to_string(),
            "src: bundle exceeds the size limit of 10 bytes (--max-bundle-bytes)"
        );
    }

    #[test]
    fn commit_into_new_and_existing() {
        let parent = tempfile::tempdir().unwrap();
        let dest = parent.path().join("policy");
        let mut s = Staging::new(parent.path(), "src", 100).unwrap();
        s.write("a/x.rego", b"one").unwrap();
        assert_eq!(s.commit(&dest).unwrap(), vec![PathBuf::from("a/x.rego")]);
        let mut s = Staging::new(parent.path(), "src", 100).unwrap();
        s.write("a/x.rego", b"two").unwrap();
        s.write("y.json", b"{}").unwrap();
        s.commit(&dest).unwrap();
        assert_eq!(fs::read_to_string(dest.join("a/x.rego")).unwrap(), "two");
        assert_eq!(fs::read_to_string(dest.join("y.json")).unwrap(), "{}");
        // No staging directory is left behind.
        let names: Vec<_> = fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["policy".to_owned()]);
    }
}

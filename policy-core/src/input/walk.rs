//! Turning the paths a user gave into the ordered list of inputs to read.
//!
//! Order is part of the contract: arguments in the order given, each directory
//! walked in byte-wise sorted order, so output is the same on every run and
//! every machine. Symlinks are followed; a link back to an ancestor is detected
//! and skipped instead of looping.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::Format;
use crate::error::{Error, Result};

/// One input to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSource {
    /// Standard input (`-`).
    Stdin,
    /// A file on disk.
    File(PathBuf),
}

/// Expands input arguments into sources.
///
/// * `-` is standard input; an empty argument is skipped (as conftest does).
/// * A directory is walked recursively; only files with a recognised format
///   are kept (hidden files included, like conftest).
/// * A file named explicitly is always kept; reading it fails later if its
///   format is unknown and no parser is forced.
/// * `ignore` (an unanchored regular expression) drops matching paths, both
///   walked and explicit.
///
/// ```
/// use policy_core::input::{collect, InputSource};
/// let sources = collect(&["-".to_owned()], None).unwrap();
/// assert_eq!(sources, vec![InputSource::Stdin]);
/// ```
pub fn collect(args: &[String], ignore: Option<&Regex>) -> Result<Vec<InputSource>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_empty() {
            continue;
        }
        if arg == "-" {
            out.push(InputSource::Stdin);
            continue;
        }
        let path = Path::new(arg);
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.is_dir() {
            walk_dir(path, ignore, &mut out)?;
        } else if !ignored(path, ignore) {
            out.push(InputSource::File(path.to_path_buf()));
        }
    }
    if out.is_empty() {
        return Err(Error::NoFiles {
            paths: args.join(", "),
        });
    }
    Ok(out)
}

fn ignored(path: &Path, ignore: Option<&Regex>) -> bool {
    ignore.is_some_and(|re| re.is_match(&path.to_string_lossy()))
}

fn walk_dir(root: &Path, ignore: Option<&Regex>, out: &mut Vec<InputSource>) -> Result<()> {
    for path in walk_files(root)? {
        if Format::detect(&path).is_some() && !ignored(&path, ignore) {
            out.push(InputSource::File(path));
        }
    }
    Ok(())
}

/// Every regular file under `root`, recursively, in sorted order, following
/// symlinks; a link back to an ancestor directory is skipped, not followed.
pub fn walk_files(root: &Path) -> Result<Vec<PathBuf>> {
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name();
    let mut out = Vec::new();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.loop_ancestor().is_some() => continue,
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                let io = e
                    .into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("directory walk failed"));
                return Err(Error::io(path, io));
            }
        };
        if entry.file_type().is_file() {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sorted_and_survives_symlink_loops()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir(root.join("b"))?;
        std::fs::write(root.join("b/z.yaml"), "a: 1")?;
        std::fs::write(root.join("a.json"), "{}")?;
        std::fs::write(root.join("notes.txt"), "x")?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(root, root.join("b/loop"))?;
        let got = collect(&[root.to_string_lossy().into_owned()], None)?;
        assert_eq!(
            got,
            vec![
                InputSource::File(root.join("a.json")),
                InputSource::File(root.join("b/z.yaml")),
            ]
        );
        let re = Regex::new(r"\.json$")?;
        let got = collect(&[root.to_string_lossy().into_owned()], Some(&re))?;
        assert_eq!(got, vec![InputSource::File(root.join("b/z.yaml"))]);
        Ok(())
    }
}

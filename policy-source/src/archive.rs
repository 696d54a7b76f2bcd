//! Unpacking tar, tar.gz and zip archives into a [`Staging`] directory.
//! Every entry name goes through the staging checks; links are refused (a
//! policy bundle needs none, and a link is how an archive reaches outside
//! its destination); decompressed bytes count against the size limit, so a
//! small archive that inflates to gigabytes stops at the limit.

use std::io::{Cursor, Read};
use std::path::{Component, Path};

use crate::error::{Error, Result};
use crate::staging::Staging;

/// The archive formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveKind {
    /// gzip-compressed tar.
    TarGz,
    /// Plain tar.
    Tar,
    /// zip.
    Zip,
}

/// Unpacks `bytes` into `staging`. With `within`, every entry must lie
/// under that directory (the layer title of an oras directory layer).
pub(crate) fn extract(
    kind: ArchiveKind,
    bytes: &[u8],
    staging: &mut Staging,
    within: Option<&str>,
) -> Result<()> {
    let within = within.map(|w| staging.relative(w)).transpose()?;
    match kind {
        ArchiveKind::TarGz => extract_tar(
            flate2::read::GzDecoder::new(bytes),
            staging,
            within.as_deref(),
        ),
        ArchiveKind::Tar => extract_tar(bytes, staging, within.as_deref()),
        ArchiveKind::Zip => extract_zip(bytes, staging, within.as_deref()),
    }
}

fn bad(staging: &Staging, detail: impl std::fmt::Display) -> Error {
    Error::Archive {
        url: staging.url().to_owned(),
        detail: detail.to_string(),
    }
}

fn check_within(staging: &Staging, name: &str, within: Option<&Path>) -> Result<()> {
    let Some(within) = within else {
        return Ok(());
    };
    if staging.relative(name)?.starts_with(within) {
        Ok(())
    } else {
        Err(Error::UnsafePath {
            url: staging.url().to_owned(),
            entry: name.to_owned(),
            reason: format!(
                "outside the layer's directory {:?}",
                within.display().to_string()
            ),
        })
    }
}

/// Whether `target`, read relative to the directory of `entry`, leaves the root.
fn link_escapes(entry: &str, target: &str) -> bool {
    if target.starts_with('/') || target.starts_with('\\') {
        return true;
    }
    let mut depth: usize = 0;
    let parents = Path::new(entry)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for c in parents.join(target).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => {
                if depth == 0 {
                    return true;
                }
                depth -= 1;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

fn extract_tar(reader: impl Read, staging: &mut Staging, within: Option<&Path>) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| bad(staging, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| bad(staging, e))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(Error::Link {
                url: staging.url().to_owned(),
                escapes: link_escapes(&name, &target),
                entry: name,
                target,
            });
        }
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        check_within(staging, &name, within)?;
        if kind.is_dir() {
            staging.mkdir(&name)?;
        } else if kind.is_file() || kind.is_contiguous() {
            staging.write_from(&name, entry)?;
        } else {
            return Err(Error::UnsafePath {
                url: staging.url().to_owned(),
                entry: name,
                reason: "only files and directories are extracted".to_owned(),
            });
        }
    }
    Ok(())
}

fn extract_zip(bytes: &[u8], staging: &mut Staging, within: Option<&Path>) -> Result<()> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| bad(staging, e))?;
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(|e| bad(staging, e))?;
        let name = file.name().to_owned();
        if file.is_symlink() {
            let mut target = String::new();
            // A zip symlink's target is its content; read a bounded amount.
            let _ = (&mut file).take(4096).read_to_string(&mut target);
            return Err(Error::Link {
                url: staging.url().to_owned(),
                escapes: link_escapes(&name, &target),
                entry: name,
                target,
            });
        }
        check_within(staging, &name, within)?;
        if file.is_dir() {
            staging.mkdir(&name)?;
        } else {
            staging.write_from(&name, file)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tar_gz(entries: &[(&str, &[u8])], link: Option<(&str, &str)>) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the raw name to test what a hostile archive holds.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        if let Some((name, target)) = link {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder.append_link(&mut header, name, target).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    fn staging(limit: u64) -> (tempfile::TempDir, Staging) {
        let parent = tempfile::tempdir().unwrap();
        let s = Staging::new(parent.path(), "https://h/b.tar.gz", limit).unwrap();
        (parent, s)
    }

    #[test]
    fn extracts_files() {
        let (_p, mut s) = staging(1000);
        let data = tar_gz(&[("p/a.rego", b"package a"), ("d.json", b"{}")], None);
        extract(ArchiveKind::TarGz, &data, &mut s, None).unwrap();
        let files: Vec<_> = s.files().cloned().collect();
        assert_eq!(
            files,
            vec![PathBuf::from("d.json"), PathBuf::from("p/a.rego")]
        );
    }

    #[test]
    fn refuses_traversal_links_and_bombs() {
        let (_p, mut s) = staging(1000);
        let data = tar_gz(&[("../evil.rego", b"x")], None);
        assert_eq!(
            extract(ArchiveKind::TarGz, &data, &mut s, None)
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: refusing entry \"../evil.rego\": the path leaves the destination"
        );
        let (_p, mut s) = staging(1000);
        let data = tar_gz(&[], Some(("p/passwd", "../../etc/passwd")));
        assert_eq!(
            extract(ArchiveKind::TarGz, &data, &mut s, None)
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: refusing entry \"p/passwd\": it is a link to \"../../etc/passwd\", outside the destination"
        );
        let (_p, mut s) = staging(1000);
        let data = tar_gz(&[], Some(("p/b.rego", "a.rego")));
        assert_eq!(
            extract(ArchiveKind::TarGz, &data, &mut s, None)
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: refusing entry \"p/b.rego\": it is a link to \"a.rego\"; links are not extracted"
        );
        let (_p, mut s) = staging(1000);
        let zeros = vec![0u8; 5000];
        let data = tar_gz(&[("big.json", &zeros)], None);
        assert!(
            data.len() < 1000,
            "the compressed archive is under the limit"
        );
        assert_eq!(
            extract(ArchiveKind::TarGz, &data, &mut s, None)
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: bundle exceeds the size limit of 1000 bytes (--max-bundle-bytes)"
        );
    }

    #[test]
    fn within_prefix() {
        let (_p, mut s) = staging(1000);
        let data = tar_gz(&[("other/a.yaml", b"x")], None);
        assert_eq!(
            extract(ArchiveKind::TarGz, &data, &mut s, Some("constraints"))
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: refusing entry \"other/a.yaml\": outside the layer's directory \"constraints\""
        );
    }

    #[test]
    fn zip_files_and_traversal() {
        use std::io::Write as _;
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("k8s/deny.rego", opts).unwrap();
        w.write_all(b"package k8s").unwrap();
        let ok = w.finish().unwrap().into_inner();
        let (_p, mut s) = staging(1000);
        extract(ArchiveKind::Zip, &ok, &mut s, None).unwrap();
        assert_eq!(
            s.files().cloned().collect::<Vec<_>>(),
            vec![PathBuf::from("k8s/deny.rego")]
        );

        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("/abs.rego", opts).unwrap();
        w.write_all(b"x").unwrap();
        let evil = w.finish().unwrap().into_inner();
        let (_p, mut s) = staging(1000);
        assert_eq!(
            extract(ArchiveKind::Zip, &evil, &mut s, None)
                .unwrap_err()
                .to_string(),
            "https://h/b.tar.gz: refusing entry \"/abs.rego\": absolute paths are not extracted"
        );
    }
}

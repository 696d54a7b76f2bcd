//! `regard pull` from HTTPS archives and files (a local rustls server with a
//! generated CA) and from git repositories (a local bare repository).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::registry::{list_files, tar_gz};
use crate::util::{Run, assert_text};

/// An HTTPS server on loopback answering GETs from a fixed map of paths.
struct Server {
    addr: String,
    ca_file: tempfile::NamedTempFile,
}

fn serve(files: BTreeMap<&'static str, Vec<u8>>) -> Server {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer =
        CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let key = KeyPair::generate().expect("key");
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    let mut ca_file = tempfile::NamedTempFile::new().expect("ca file");
    ca_file
        .write_all(issuer.pem().as_bytes())
        .expect("write ca");

    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).expect("key pem"),
    )
    .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(tcp) = stream else { continue };
            let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match tls.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let response = match files.get(path.as_str()) {
                Some(body) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body);
                    r
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = tls.write_all(&response);
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    Server { addr, ca_file }
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(*name, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        w.write_all(data).expect("zip data");
    }
    w.finish().expect("zip").into_inner()
}

fn tar_gz_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    builder
        .append_link(&mut header, name, target)
        .expect("symlink entry");
    builder.into_inner().expect("tar").finish().expect("gzip")
}

fn pull(dir: &Path, args: &[&str]) -> crate::util::Output {
    let mut all = vec!["pull"];
    all.extend_from_slice(args);
    Run::in_dir(dir, &all).output()
}

#[test]
fn https_archives_and_files() {
    let server = serve(BTreeMap::from([
        (
            "/bundle.tar.gz",
            tar_gz(&[
                ("policy/deny.rego", b"package main\n"),
                ("policy/lib/util.rego", b"package lib\n"),
                ("README.md", b"docs\n"),
            ]),
        ),
        (
            "/bundle.zip",
            zip_of(&[("k8s/labels.rego", b"package k8s\n")]),
        ),
        ("/raw/deny.rego", b"package raw\n".to_vec()),
        (
            "/evil.tar.gz",
            tar_gz_with_symlink("policy/passwd", "/etc/passwd"),
        ),
        ("/big.tar.gz", tar_gz(&[("big.json", &[b' '; 4096])])),
    ]));
    let ca = server.ca_file.path().to_str().expect("utf-8").to_owned();
    let dir = tempfile::tempdir().expect("dir");
    let base = format!("https://{}", server.addr);

    let out = pull(
        dir.path(),
        &[
            "--ca-file",
            &ca,
            "-p",
            "a",
            &format!("{base}/bundle.tar.gz//policy"),
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        list_files(&dir.path().join("a")),
        ["deny.rego", "lib/util.rego"]
    );

    let out = pull(
        dir.path(),
        &["--ca-file", &ca, "-p", "b", &format!("{base}/bundle.zip")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(list_files(&dir.path().join("b")), ["k8s/labels.rego"]);

    // A single file lands under its own name; pulling it again is refused (conftest's rule).
    let raw = format!("{base}/raw/deny.rego");
    let out = pull(dir.path(), &["--ca-file", &ca, "-p", "c", &raw]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c/deny.rego")).expect("read"),
        "package raw\n"
    );
    let out = pull(dir.path(), &["--ca-file", &ca, "-p", "c", &raw]);
    assert_text(
        "Error: download policies: policy file already exists at c/deny.rego, refusing to overwrite\n",
        &out.stderr,
    );

    // Without the CA the server is not trusted.
    let out = pull(dir.path(), &["-p", "d", &format!("{base}/bundle.zip")]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(&format!(
            "Error: download policies: {base}/bundle.zip: error sending request"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("UnknownIssuer"), "{}", out.stderr);

    let missing = format!("{base}/nothing.tar.gz");
    let out = pull(dir.path(), &["--ca-file", &ca, "-p", "d", &missing]);
    assert_text(
        &format!(
            "Error: download policies: {missing}: not found: {missing} answered 404 Not Found\n"
        ),
        &out.stderr,
    );

    let evil = format!("{base}/evil.tar.gz");
    let out = pull(dir.path(), &["--ca-file", &ca, "-p", "d", &evil]);
    assert_text(
        &format!(
            "Error: download policies: {evil}: refusing entry \"policy/passwd\": it is a link to \"/etc/passwd\", outside the destination\n"
        ),
        &out.stderr,
    );

    let big = format!("{base}/big.tar.gz");
    let out = pull(
        dir.path(),
        &[
            "--ca-file",
            &ca,
            "--max-bundle-bytes",
            "1024",
            "-p",
            "d",
            &big,
        ],
    );
    assert_text(
        &format!(
            "Error: download policies: {big}: bundle exceeds the size limit of 1024 bytes (--max-bundle-bytes)\n"
        ),
        &out.stderr,
    );
    assert!(!dir.path().join("d").exists());
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn git_repository_subdir_and_ref() {
    let root = tempfile::tempdir().expect("root");
    let bare = root.path().join("policies.git");
    let work = root.path().join("work");
    std::fs::create_dir_all(work.join("policy/k8s")).expect("mkdir");
    git(
        root.path(),
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            bare.to_str().expect("utf-8"),
        ],
    );
    git(&work, &["init", "--quiet", "-b", "main"]);
    std::fs::write(work.join("policy/k8s/labels.rego"), "package k8s\n# v1\n").expect("write");
    std::fs::write(work.join("README.md"), "docs\n").expect("write");
    git(&work, &["add", "."]);
    git(&work, &["commit", "--quiet", "-m", "v1"]);
    git(&work, &["tag", "v1"]);
    std::fs::write(work.join("policy/k8s/labels.rego"), "package k8s\n# v2\n").expect("write");
    git(&work, &["commit", "--quiet", "-am", "v2"]);
    git(
        &work,
        &[
            "push",
            "--quiet",
            bare.to_str().expect("utf-8"),
            "main",
            "v1",
        ],
    );

    let url = format!("file://{}", bare.display());
    let dir = tempfile::tempdir().expect("dir");
    let out = pull(
        dir.path(),
        &["-p", "v1", &format!("git::{url}//policy?ref=v1")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(list_files(&dir.path().join("v1")), ["k8s/labels.rego"]);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("v1/k8s/labels.rego")).expect("read"),
        "package k8s\n# v1\n"
    );
    let out = pull(dir.path(), &["-p", "head", &format!("git::{url}")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        list_files(&dir.path().join("head")),
        ["README.md", "policy/k8s/labels.rego"]
    );

    let missing = format!("git::{url}?ref=v9");
    let out = pull(dir.path(), &["-p", "none", &missing]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with(&format!("Error: download policies: {missing}: git: ")),
        "{}",
        out.stderr
    );
    assert!(!dir.path().join("none").exists());
}

#[test]
fn local_paths_are_copied() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("shared/lib")).expect("mkdir");
    std::fs::write(dir.path().join("shared/lib/a.rego"), "package a\n").expect("write");
    let out = pull(dir.path(), &["-p", "policy", "./shared"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(list_files(&dir.path().join("policy")), ["lib/a.rego"]);
    std::os::unix::fs::symlink("/etc", dir.path().join("shared/etc")).expect("symlink");
    let out = pull(dir.path(), &["-p", "other", "./shared"]);
    assert_text(
        "Error: download policies: ./shared: refusing entry \"etc\": it is a link to \"/etc\", outside the destination\n",
        &out.stderr,
    );
}

/// conftest's `pull` joins `--policy` onto the working directory, so an
/// absolute path lands under it unless `--absolute-paths` is given.
#[test]
fn absolute_policy_paths_are_kept_only_when_asked() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("shared")).expect("mkdir");
    std::fs::write(dir.path().join("shared/a.rego"), "package a\n").expect("write");
    let target = tempfile::tempdir().expect("dir");
    let abs = target.path().join("out");
    let abs_text = abs.to_string_lossy().into_owned();
    let out = pull(dir.path(), &["-p", &abs_text, "./shared"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let under_cwd = dir.path().join(abs.strip_prefix("/").expect("absolute"));
    assert_eq!(list_files(&under_cwd), ["a.rego"]);
    assert!(!abs.exists());
    let out = pull(
        dir.path(),
        &["--absolute-paths", "-p", &abs_text, "./shared"],
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    assert_eq!(list_files(&abs), ["a.rego"]);
}

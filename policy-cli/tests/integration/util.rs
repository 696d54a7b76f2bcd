//! Running the `regard` binary in tests.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository's `tests/` directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests")
}

/// What a run printed and returned.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A `regard` invocation: working directory, arguments, stdin, environment.
pub struct Run {
    cmd: Command,
    stdin: Option<Vec<u8>>,
}

impl Run {
    /// `regard ARGS` run in `tests/<dir>` with a clean environment.
    pub fn new(dir: &str, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_regard"));
        cmd.args(args)
            .current_dir(fixtures().join(dir))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        Run { cmd, stdin: None }
    }

    /// Like [`Run::new`] but in an arbitrary directory.
    pub fn in_dir(dir: &Path, args: &[&str]) -> Run {
        let mut run = Run::new(".", args);
        run.cmd.current_dir(dir);
        run
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(data.into());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Run {
        self.cmd.env(key, value);
        self
    }

    pub fn output(mut self) -> Output {
        self.cmd
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("spawn regard");
        if let Some(data) = self.stdin.take() {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(&data).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait for regard");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `regard ARGS` in `tests/<dir>`.
pub fn regard(dir: &str, args: &[&str]) -> Output {
    Run::new(dir, args).output()
}

/// Reads a fixture file as text.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(fixtures().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Asserts two texts are equal, printing both in full on failure.
#[track_caller]
pub fn assert_text(expected: &str, actual: &str) {
    if expected != actual {
        panic!("output differs\n--- expected ---\n{expected}\n--- actual ---\n{actual}\n---");
    }
}

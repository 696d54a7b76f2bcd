//! Dockerfiles, in the shape conftest builds from BuildKit's parser:
//! `[[{Cmd, SubCmd, JSON, Flags, Value, Stage}, …]]`.
//!
//! Hand-written: the shape is BuildKit's raw node list (arguments as the
//! parser splits them, before variable expansion), which the Rust Dockerfile
//! crates do not expose. What is reproduced:
//!
//! * line continuations (the escape character, `\` or the one set by a
//!   leading `# escape=` directive), with comment and empty lines inside a
//!   continuation skipped;
//! * comments become `{"Cmd": "comment", "Value": [text]}` entries placed
//!   before the instruction they precede (an empty `#` line discards the
//!   comments gathered so far; comments after the last instruction are lost);
//! * leading `--flags` are split off into `Flags`;
//! * arguments per instruction: whitespace-split (`FROM`, `EXPOSE`), JSON
//!   array or one string (`RUN`, `CMD`, `ENTRYPOINT`, `SHELL`), JSON array
//!   or whitespace-split (`COPY`, `ADD`, `VOLUME`), name/value pairs (`ENV`,
//!   `LABEL`), raw words (`ARG`), one string (`USER`, `WORKDIR`, …),
//!   `ONBUILD` with its sub-instruction in `SubCmd`, `HEALTHCHECK`;
//! * heredoc bodies (`RUN <<EOF`) are consumed and not part of `Value`;
//! * `Stage` is the index of the latest `FROM`.
//!
//! Instruction checks mirror BuildKit's common errors (unknown instruction,
//! `FROM` arity, missing arguments), not every one of them.

use std::path::Path;

use regorus::Value;

use super::support::{error_at, object};
use crate::error::Result;

struct Command {
    cmd: String,
    sub_cmd: String,
    json: bool,
    flags: Option<Vec<String>>,
    value: Option<Vec<String>>,
    stage: usize,
}

impl Command {
    fn into_value(self) -> Value {
        let strings = |v: Option<Vec<String>>| match v {
            Some(items) => Value::from(items.into_iter().map(Value::from).collect::<Vec<_>>()),
            None => Value::Null,
        };
        object([
            ("Cmd".to_owned(), Value::from(self.cmd)),
            ("SubCmd".to_owned(), Value::from(self.sub_cmd)),
            ("JSON".to_owned(), Value::from(self.json)),
            ("Flags".to_owned(), strings(self.flags)),
            ("Value".to_owned(), strings(self.value)),
            ("Stage".to_owned(), Value::from(self.stage as u64)),
        ])
    }
}

/// Parses one Dockerfile.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let escape = escape_directive(&lines);
    let mut commands = Vec::new();
    let mut comments: Vec<String> = Vec::new();
    let mut stages = 0_usize;
    let mut i = 0;
    while let Some(raw) = lines.get(i) {
        let start_line = i + 1;
        i += 1;
        let trimmed = raw.trim_start();
        if let Some(comment) = trimmed.strip_prefix('#') {
            let comment = comment.trim();
            if comment.is_empty() {
                comments.clear();
            } else {
                comments.push(comment.to_owned());
            }
            continue;
        }
        if trimmed.trim_end().is_empty() {
            continue;
        }
        // Join continuation lines.
        let mut line = String::new();
        let (mut part, mut continues) = trim_continuation(trimmed, escape);
        line.push_str(part);
        while continues {
            let Some(next) = lines.get(i) else { break };
            i += 1;
            let next_trimmed = next.trim_start();
            if next_trimmed.starts_with('#') || next_trimmed.trim_end().is_empty() {
                continue;
            }
            (part, continues) = trim_continuation(next, escape);
            line.push_str(part);
        }
        let instruction =
            parse_instruction(&line, escape).map_err(|m| error_at(path, start_line, 1, m))?;
        // Heredoc bodies follow the instruction line.
        for delimiter in heredoc_delimiters(&line) {
            loop {
                let Some(body) = lines.get(i) else {
                    return Err(error_at(
                        path,
                        start_line,
                        1,
                        format!("unterminated heredoc {delimiter}"),
                    ));
                };
                i += 1;
                if body.trim_start_matches('\t') == delimiter {
                    break;
                }
            }
        }
        if instruction.cmd == "from" {
            stages += 1;
        }
        let stage = stages.saturating_sub(1);
        for comment in comments.drain(..) {
            commands.push(
                Command {
                    cmd: "comment".to_owned(),
                    sub_cmd: String::new(),
                    json: false,
                    flags: None,
                    value: Some(vec![comment]),
                    stage,
                }
                .into_value(),
            );
        }
        commands.push(
            Command {
                stage,
                ..instruction
            }
            .into_value(),
        );
    }
    if commands.iter().all(|c| c["Cmd"] == Value::from("comment")) {
        // BuildKit refuses a Dockerfile without instructions.
        return Err(super::support::error(path, "file with no instructions"));
    }
    Ok(Value::from(vec![Value::from(commands)]))
}

/// The escape character set by a `# escape=` parser directive at the top.
fn escape_directive(lines: &[&str]) -> char {
    for line in lines {
        let Some(body) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        if key.trim().eq_ignore_ascii_case("escape")
            && let Some(c) = value
                .trim()
                .chars()
                .next()
                .filter(|c| *c == '`' || *c == '\\')
        {
            return c;
        }
    }
    '\\'
}

/// Strips a trailing escape character; `true` when the line continues.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let end = line.trim_end();
    match end.strip_suffix(escape) {
        Some(rest) => (rest, true),
        None => (line.trim_end_matches(['\r', '\n']), false),
    }
}

fn heredoc_delimiters(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("<<") {
        rest = rest.get(i + 2..).unwrap_or("");
        let word = rest.strip_prefix('-').unwrap_or(rest);
        let word: String = word
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '&' && *c != '|' && *c != '>')
            .collect();
        let word = word.trim_matches(['"', '\'']).to_owned();
        if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push(word);
        }
    }
    out
}

fn parse_instruction(line: &str, escape: char) -> Result<Command, String> {
    let line = line.trim();
    let (cmd, rest) = match line.find(|c: char| c.is_whitespace()) {
        Some(i) => (
            line.get(..i).unwrap_or(""),
            line.get(i..).unwrap_or("").trim(),
        ),
        None => (line, ""),
    };
    let cmd = cmd.to_ascii_lowercase();
    let (flags, args) = split_flags(rest);
    let mut command = Command {
        cmd: cmd.clone(),
        sub_cmd: String::new(),
        json: false,
        flags: Some(flags),
        value: None,
        stage: 0,
    };
    let require = |n: usize, what: &str, got: &Option<Vec<String>>| -> Result<(), String> {
        if got.as_ref().map_or(0, Vec::len) < n {
            Err(format!("{} requires {what}", cmd.to_ascii_uppercase()))
        } else {
            Ok(())
        }
    };
    match cmd.as_str() {
        "from" => {
            command.value = non_empty(whitespace_words(args));
            let n = command.value.as_ref().map_or(0, Vec::len);
            let as_ok = command
                .value
                .as_ref()
                .and_then(|v| v.get(1))
                .is_some_and(|w| w.eq_ignore_ascii_case("as"));
            if !(n == 1 || (n == 3 && as_ok)) {
                return Err("FROM requires either one or three arguments".to_owned());
            }
        }
        "expose" => {
            command.value = non_empty(whitespace_words(args));
            require(1, "at least one argument", &command.value)?;
        }
        "run" | "cmd" | "entrypoint" | "shell" => {
            let (value, json) = maybe_json(args);
            command.value = value;
            command.json = json;
            if cmd == "run" || cmd == "shell" {
                require(1, "at least one argument", &command.value)?;
            }
        }
        "copy" | "add" | "volume" => {
            let (value, json) = maybe_json_list(args);
            command.value = value;
            command.json = json;
            if cmd == "volume" {
                require(1, "at least one argument", &command.value)?;
            } else {
                require(2, "at least two arguments", &command.value)?;
            }
        }
        "env" | "label" => {
            command.value = Some(name_values(&cmd, args, escape)?);
        }
        "arg" => {
            command.value = non_empty(words(args, escape));
            require(1, "at least one argument", &command.value)?;
        }
        "user" | "workdir" | "maintainer" | "stopsignal" => {
            command.value = (!args.is_empty()).then(|| vec![args.to_owned()]);
            require(1, "exactly one argument", &command.value)?;
        }
        "onbuild" => {
            if args.is_empty() {
                return Err("ONBUILD requires at least one argument".to_owned());
            }
            let sub = parse_instruction(args, escape)?;
            if matches!(sub.cmd.as_str(), "onbuild" | "from" | "maintainer") {
                return Err(format!(
                    "{} isn't allowed as an ONBUILD trigger",
                    sub.cmd.to_ascii_uppercase()
                ));
            }
            command.sub_cmd = sub.cmd;
            command.json = sub.json;
            command.value = sub.value;
        }
        "healthcheck" => {
            let mut parts = args.splitn(2, char::is_whitespace);
            let kind = parts.next().unwrap_or("").to_owned();
            let rest = parts.next().unwrap_or("").trim();
            if kind.is_empty() {
                return Err("HEALTHCHECK requires an argument".to_owned());
            }
            let mut value = vec![kind.clone()];
            if kind.eq_ignore_ascii_case("cmd") {
                let (cmd_value, json) = maybe_json(rest);
                command.json = json;
                value.extend(cmd_value.unwrap_or_default());
            } else if !kind.eq_ignore_ascii_case("none") {
                return Err(format!("Unknown type {kind:?} in HEALTHCHECK (try CMD)"));
            }
            command.value = Some(value);
        }
        _ => return Err(format!("unknown instruction: {}", cmd.to_ascii_uppercase())),
    }
    Ok(command)
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

/// Leading `--name[=value]` words, and the rest of the line.
fn split_flags(args: &str) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let word = rest.get(..end).unwrap_or("");
        rest = rest.get(end..).unwrap_or("").trim_start();
        if word == "--" {
            break;
        }
        flags.push(word.to_owned());
    }
    (flags, rest)
}

fn whitespace_words(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_owned).collect()
}

/// A JSON array of strings, or the whole text as one value.
fn maybe_json(args: &str) -> (Option<Vec<String>>, bool) {
    if let Some(list) = json_strings(args) {
        return (Some(list), true);
    }
    ((!args.is_empty()).then(|| vec![args.to_owned()]), false)
}

/// A JSON array of strings, or whitespace-separated words.
fn maybe_json_list(args: &str) -> (Option<Vec<String>>, bool) {
    if let Some(list) = json_strings(args) {
        return (Some(list), true);
    }
    (non_empty(whitespace_words(args)), false)
}

fn json_strings(args: &str) -> Option<Vec<String>> {
    if !args.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(args).ok()
}

/// Words split on whitespace outside quotes; quotes and escapes are kept.
fn words(args: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            word.push(c);
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                word.push(c);
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// `ENV`/`LABEL`: `k=v k2=v2` pairs, or the legacy `KEY value words` form.
fn name_values(cmd: &str, args: &str, escape: char) -> Result<Vec<String>, String> {
    let all = words(args, escape);
    let Some(first) = all.first() else {
        return Err(format!(
            "{} requires at least one argument",
            cmd.to_ascii_uppercase()
        ));
    };
    if !first.contains('=') {
        let mut parts = args.splitn(2, char::is_whitespace);
        let key = parts.next().unwrap_or("").to_owned();
        let value = parts.next().unwrap_or("").trim().to_owned();
        if value.is_empty() {
            return Err(format!(
                "{} must have two arguments",
                cmd.to_ascii_uppercase()
            ));
        }
        return Ok(vec![key, value]);
    }
    let mut out = Vec::with_capacity(all.len() * 2);
    for word in all {
        let Some((k, v)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        out.push(k.to_owned());
        out.push(v.to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new("Dockerfile")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn stages_comments_flags_and_json() {
        let text = "FROM golang:1.22 AS build\n# build it\nRUN go build \\\n  -o /app\nFROM scratch\nCOPY --from=build /app /app\nENTRYPOINT [\"/app\"]\n";
        assert_eq!(
            json(text),
            concat!(
                r#"[[{"Cmd":"from","Flags":[],"JSON":false,"Stage":0,"SubCmd":"","Value":["golang:1.22","AS","build"]},"#,
                r#"{"Cmd":"comment","Flags":null,"JSON":false,"Stage":0,"SubCmd":"","Value":["build it"]},"#,
                r#"{"Cmd":"run","Flags":[],"JSON":false,"Stage":0,"SubCmd":"","Value":["go build   -o /app"]},"#,
                r#"{"Cmd":"from","Flags":[],"JSON":false,"Stage":1,"SubCmd":"","Value":["scratch"]},"#,
                r#"{"Cmd":"copy","Flags":["--from=build"],"JSON":false,"Stage":1,"SubCmd":"","Value":["/app","/app"]},"#,
                r#"{"Cmd":"entrypoint","Flags":[],"JSON":true,"Stage":1,"SubCmd":"","Value":["/app"]}]]"#
            )
        );
    }

    #[test]
    fn env_forms_and_onbuild() {
        assert_eq!(
            json("ENV A=1 B=\"two words\"\nENV OLD value here\nONBUILD RUN make\n"),
            concat!(
                r#"[[{"Cmd":"env","Flags":[],"JSON":false,"Stage":0,"SubCmd":"","Value":["A","1","B","\"two words\""]},"#,
                r#"{"Cmd":"env","Flags":[],"JSON":false,"Stage":0,"SubCmd":"","Value":["OLD","value here"]},"#,
                r#"{"Cmd":"onbuild","Flags":[],"JSON":false,"Stage":0,"SubCmd":"run","Value":["make"]}]]"#
            )
        );
    }

    #[test]
    fn empty_files_have_no_instructions() {
        let err = parse("# only a comment\n\n", Path::new("Dockerfile"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Dockerfile: file with no instructions")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = parse("FROM a\nFROBNICATE x\n", Path::new("Dockerfile"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Dockerfile:2:1: unknown instruction: FROBNICATE")
        );
        let err = parse("FROM a b\n", Path::new("Dockerfile"))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Dockerfile:1:1: FROM requires either one or three arguments")
        );
    }
}

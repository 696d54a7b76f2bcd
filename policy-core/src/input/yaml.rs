//! YAML streams, read the way Kubernetes reads them.
//!
//! serde-saphyr does the parsing (pure Rust, duplicate-key errors, `<<` merges,
//! YAML 1.1 booleans and octals, an alias budget against billion-laughs files).
//! It skips null documents in a stream, while conftest keeps them as `null`
//! inputs, so a cheap first pass over the parser's events records which
//! documents are null and the values are stitched back in order.

use std::fmt;
use std::path::Path;

use regorus::Value;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

use crate::error::{Error, Result};

/// Parses a YAML stream. One document gives its value; several give an array of them.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let mut docs = parse_documents(text, path)?;
    if docs.len() == 1 {
        Ok(docs.pop().unwrap_or(Value::Null))
    } else if docs.is_empty() {
        Ok(Value::Null)
    } else {
        Ok(Value::from(docs))
    }
}

/// Parses a YAML stream into its documents, empty documents included as `null`.
pub(crate) fn parse_documents(text: &str, path: &Path) -> Result<Vec<Value>> {
    let mut parsed: Vec<YamlValue> =
        match serde_saphyr::from_multiple_with_options(text, options(text.len())) {
            Ok(parsed) => parsed,
            Err(e) => {
                // The event pass words syntax errors as the scanner does;
                // it also reports them first when both fail.
                let error = match document_layout(text, path) {
                    Err(layout) => layout,
                    Ok(_) => yaml_error(path, &e),
                };
                // Go's YAML (libyaml's grammar) accepts a quoted scalar
                // continued at its key's indentation, which the YAML 1.2
                // scanner refuses (gatekeeper-library's httpsonly template);
                // conftest and kubectl read such files, so regard does too.
                if error.to_string().contains("indentation")
                    && let Some(docs) = lenient(text)
                {
                    return Ok(docs);
                }
                return Err(error);
            }
        };
    if plainly_without_nulls(text, parsed.len()) {
        return Ok(parsed.into_iter().map(|v| v.0).collect());
    }
    let layout = document_layout(text, path)?;
    let expected = layout.iter().filter(|null| !**null).count();
    if parsed.len() != expected {
        // The two passes disagree about which documents are null; keep every
        // value rather than guess where the nulls go.
        return Ok(parsed.into_iter().map(|v| v.0).collect());
    }
    parsed.reverse();
    let mut docs = Vec::with_capacity(layout.len());
    for is_null in layout {
        if is_null {
            docs.push(Value::Null);
        } else if let Some(v) = parsed.pop() {
            docs.push(v.0);
        }
    }
    Ok(docs)
}

/// The documents of `text` as a libyaml-based parser reads them, for the
/// layouts Go's YAML accepts and the strict parser refuses; `None` when it
/// fails too. Its scalars are YAML 1.2's (`yes` stays a string), so it is
/// only a fallback.
pub(crate) fn lenient(text: &str) -> Option<Vec<Value>> {
    use serde::Deserialize;
    let mut docs = Vec::new();
    for doc in yaml_serde::Deserializer::from_str(text) {
        let v = yaml_serde::Value::deserialize(doc).ok()?;
        docs.push(Value::from(v));
    }
    Some(docs)
}

/// Whether the text shows, line by line, that the stream holds `parsed`
/// documents and none of them can be null: each document has content,
/// none starts with a null scalar (`null`, `~`), a tag, an anchor or an
/// alias, and the count of documents with content is `parsed`. Then the
/// event pass that finds null documents ([`document_layout`]), a second
/// parse of the whole stream and a tenth of `regard test`'s time on a
/// corpus of manifests, is not needed. Any doubt answers no.
///
/// A line starting with `---` or `...` and a blank (or nothing) is always a
/// document marker in YAML: no scalar may contain such a line.
fn plainly_without_nulls(text: &str, parsed: usize) -> bool {
    let mut documents = 0usize;
    // The current document was opened by `---`, and has content.
    let mut explicit = false;
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let marker = |m: &str| {
            line.strip_prefix(m)
                .filter(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
                .map(str::trim_start)
        };
        if let Some((rest, opens)) = marker("---")
            .map(|r| (r, true))
            .or_else(|| marker("...").map(|r| (r, false)))
        {
            if explicit && !content {
                return false;
            }
            documents += usize::from(content);
            explicit = opens;
            content = false;
            if !rest.is_empty() && !rest.starts_with('#') {
                if !opens || null_start(rest) {
                    return false;
                }
                content = true;
            }
            continue;
        }
        let t = line.trim_start();
        // A directive (`%YAML`) can only come before a `---`.
        if content || t.is_empty() || t.starts_with('#') || (!explicit && line.starts_with('%')) {
            continue;
        }
        if null_start(t) {
            return false;
        }
        content = true;
    }
    (content || !explicit) && documents + usize::from(content) == parsed
}

/// Whether a document starting with `t` might be null: a null scalar, or a
/// tag, anchor or alias, which would need the parser to tell.
fn null_start(t: &str) -> bool {
    let word = t
        .split(|c: char| c.is_whitespace() || c == '#')
        .next()
        .unwrap_or("");
    t.starts_with(['!', '&', '*', '~']) || matches!(word, "null" | "Null" | "NULL")
}

/// Parser options for a stream of `len` bytes.
fn options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // Far more than any real manifest uses, small enough that an alias bomb
    // fails in milliseconds.
    budget.max_aliases = 10_000;
    budget.max_anchors = 10_000;
    // The structure limits guard against alias expansion. Without aliases a
    // stream has fewer documents, events, nodes and scalar bytes than twice
    // its length, so the limits grow with the input: the defaults refused a
    // stream of 1,025 documents or of about 1,300 Pods (250,000 nodes),
    // which Go's YAML reads; expansion past twice the input still fails.
    let room = len.saturating_mul(2);
    budget.max_documents = budget.max_documents.max(room);
    budget.max_events = budget.max_events.max(room);
    budget.max_nodes = budget.max_nodes.max(room);
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(room);

    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Merge;
    // sigs.k8s.io/yaml (go-yaml v2) reads 0755 as octal.
    options.legacy_octal_numbers = true;
    options.with_snippet = false;
    options
}

/// One entry per document in the stream: `true` when the document is null.
fn document_layout(text: &str, path: &Path) -> Result<Vec<bool>> {
    let mut layout = Vec::new();
    let mut at_root = false;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            line: Some(span_line(e.marker().line())),
            column: Some(e.marker().col().saturating_add(1)),
            message: e.info(),
        })?;
        let _ = span;
        match event {
            Event::DocumentStart(..) => at_root = true,
            Event::Scalar(value, style, _, tag) if at_root => {
                at_root = false;
                let null_tag = tag
                    .as_ref()
                    .is_some_and(|t| t.core_suffix() == Some("null"));
                let plain_null = tag.is_none()
                    && style == ScalarStyle::Plain
                    && matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL");
                layout.push(null_tag || plain_null);
            }
            Event::SequenceStart(..)
            | Event::MappingStart(..)
            | Event::Alias(..)
            | Event::Scalar(..)
                if at_root =>
            {
                at_root = false;
                layout.push(false);
            }
            _ => {}
        }
    }
    Ok(layout)
}

fn span_line(line: usize) -> usize {
    line.max(1)
}

fn yaml_error(path: &Path, err: &serde_saphyr::Error) -> Error {
    let location = err.location();
    let message = err.to_string();
    // serde-saphyr appends " at line L column C" (and sometimes where an
    // anchor was defined) to its messages; we print the position in front,
    // compiler style, so keep only the first clause. Its duplicate-key text
    // also suggests a library option, which means nothing to our users.
    let mut message = match message.find(" at line ") {
        Some(i) if location.is_some() => message.get(..i).unwrap_or(&message).to_owned(),
        _ => message,
    };
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    if message.starts_with("budget breached") {
        message = format!("document too large or too many aliases (an alias bomb?): {message}");
    }
    Error::Parse {
        path: path.to_path_buf(),
        line: location
            .as_ref()
            .and_then(|l| usize::try_from(l.line()).ok()),
        column: location
            .as_ref()
            .and_then(|l| usize::try_from(l.column()).ok()),
        message,
    }
}

/// One step of a path into a document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// A mapping key.
    Key(String),
    /// A sequence index.
    Index(usize),
}

/// A 1-based line and column in a source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Where the node at `path` of the `doc`-th non-null document of a YAML (or
/// JSON) stream starts: for a mapping entry the position of its key, for a
/// sequence item the item. When the path leaves the text (keys brought in by
/// a `<<` merge, through an alias) the deepest node found is given instead.
/// Only reports need positions, so this second, event-level pass runs only
/// for documents with something to report. `None` when the text does not
/// parse or has fewer documents.
pub fn locate(text: &str, doc: usize, path: &[PathStep]) -> Option<Position> {
    let mut events = Parser::new_from_str(text)
        .map_while(std::result::Result::ok)
        // Anchor and comment events are presentation, not nodes.
        .filter(|(event, _)| {
            matches!(
                event,
                Event::DocumentStart(..)
                    | Event::DocumentEnd
                    | Event::Alias(..)
                    | Event::UnresolvedAlias(..)
                    | Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::MappingStart(..)
                    | Event::MappingEnd
            )
        });
    let mut seen = 0usize;
    loop {
        let (event, _) = events.next()?;
        if !matches!(event, Event::DocumentStart(..)) {
            continue;
        }
        let (root, root_span) = events.next()?;
        let is_null = matches!(root, Event::DocumentEnd)
            || matches!(&root, Event::Scalar(v, ScalarStyle::Plain, _, None)
                if matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL"));
        if is_null {
            continue;
        }
        if seen == doc {
            let mut best = position(&root_span.start);
            descend(&mut events, root, path, &mut best);
            return Some(best);
        }
        seen += 1;
        skip(&mut events, &root);
    }
}

/// The number of non-null documents in a YAML stream and whether the first is
/// a sequence (a file whose documents are the items of one top-level list).
pub fn stream_shape(text: &str) -> Option<(usize, bool)> {
    let mut count = 0usize;
    let mut first_is_sequence = false;
    let mut at_root = false;
    for event in Parser::new_from_str(text) {
        let (event, _) = event.ok()?;
        match event {
            Event::DocumentStart(..) => at_root = true,
            Event::Scalar(v, ScalarStyle::Plain, _, None)
                if at_root && matches!(v.as_ref(), "" | "~" | "null" | "Null" | "NULL") =>
            {
                at_root = false;
            }
            Event::SequenceStart(..)
            | Event::MappingStart(..)
            | Event::Scalar(..)
            | Event::Alias(..)
                if at_root =>
            {
                at_root = false;
                if count == 0 {
                    first_is_sequence = matches!(event, Event::SequenceStart(..));
                }
                count += 1;
            }
            _ => {}
        }
    }
    Some((count, first_is_sequence))
}

fn position(marker: &serde_saphyr::granit_parser::Marker) -> Position {
    Position {
        line: span_line(marker.line()),
        column: marker.col().saturating_add(1),
    }
}

/// Skips the rest of the node that `first` opened.
fn skip<'a>(
    events: &mut impl Iterator<Item = (Event<'a>, serde_saphyr::granit_parser::Span)>,
    first: &Event<'a>,
) {
    if !matches!(first, Event::MappingStart(..) | Event::SequenceStart(..)) {
        return;
    }
    let mut depth = 1usize;
    for (event, _) in events.by_ref() {
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) => depth += 1,
            Event::MappingEnd | Event::SequenceEnd => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Follows `path` from the node `first` (already read), recording in `best`
/// the position of every step found.
fn descend<'a>(
    events: &mut impl Iterator<Item = (Event<'a>, serde_saphyr::granit_parser::Span)>,
    first: Event<'a>,
    path: &[PathStep],
    best: &mut Position,
) {
    let Some((step, rest)) = path.split_first() else {
        return;
    };
    match (first, step) {
        (Event::MappingStart(..), PathStep::Key(wanted)) => loop {
            let Some((key, key_span)) = events.next() else {
                return;
            };
            if matches!(key, Event::MappingEnd) {
                return;
            }
            let Some((value, _)) = events.next() else {
                return;
            };
            let matches = matches!(&key, Event::Scalar(k, ..) if k.as_ref() == wanted.as_str());
            if matches {
                *best = position(&key_span.start);
                descend(events, value, rest, best);
                return;
            }
            skip(events, &key);
            skip(events, &value);
        },
        (Event::SequenceStart(..), PathStep::Index(wanted)) => {
            let mut index = 0usize;
            loop {
                let Some((item, item_span)) = events.next() else {
                    return;
                };
                if matches!(item, Event::SequenceEnd) {
                    return;
                }
                if index == *wanted {
                    *best = position(&item_span.start);
                    descend(events, item, rest, best);
                    return;
                }
                skip(events, &item);
                index += 1;
            }
        }
        _ => {}
    }
}

/// A YAML node as a Rego value. Keys are always strings, as sigs.k8s.io/yaml
/// makes them (`on:` → `"true"`, `1:` → `"1"`), because policies index
/// objects by string.
struct YamlValue(Value);

impl<'de> de::Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor).map(YamlValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::from(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(YamlValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::from(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = std::collections::BTreeMap::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let YamlValue(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::from(object))
    }
}

/// Reads any scalar key as its string form, straight into a Rego string (a
/// key borrowed from the text costs one allocation, not a `String` and a
/// copy; measured: 0.25 % of `regard test`'s instructions).
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar mapping key")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::from("null"))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::from(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("a sequence cannot be a mapping key"))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("a mapping cannot be a mapping key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(text: &str) -> Vec<String> {
        parse_documents(text, Path::new("t.yaml"))
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
            .collect()
    }

    #[test]
    fn keeps_documents_after_commented_and_tagged_separators() {
        let text = "a: 1\n--- # second\nb: 2\n--- !thing\nc: 3\n";
        assert_eq!(docs(text), [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
    }

    #[test]
    fn empty_documents_are_null_and_end_markers_close_documents() {
        let text = "a: 1\n---\n---\nb: 2\n...\n---\nc: 3\n";
        assert_eq!(
            docs(text),
            [r#"{"a":1}"#, "null", r#"{"b":2}"#, r#"{"c":3}"#]
        );
        assert_eq!(docs(""), Vec::<String>::new());
    }

    #[test]
    fn null_documents_are_found_however_they_are_written() {
        let cases: &[(&str, &[&str])] = &[
            (
                "a: 1\n--- null\n---\nb: 2\n",
                &[r#"{"a":1}"#, "null", r#"{"b":2}"#],
            ),
            ("a: 1\n---\n~\n", &[r#"{"a":1}"#, "null"]),
            ("--- !!null\n---\nb: 2\n", &["null", r#"{"b":2}"#]),
            ("a: 1\n---\n# only a comment\n", &[r#"{"a":1}"#, "null"]),
            ("a: 1\n---", &[r#"{"a":1}"#, "null"]),
            ("%YAML 1.2\n---\na: 1\n...\n# after\n", &[r#"{"a":1}"#]),
            ("# head\n\n---\na: 1\n", &[r#"{"a":1}"#]),
            (
                "\u{feff}a: 1\n---\nb: [1]\n",
                &[r#"{"a":1}"#, r#"{"b":[1]}"#],
            ),
            (
                "a: |\n  ---x\n  text\n--- 7\n",
                &[r#"{"a":"---x\ntext\n"}"#, "7"],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(docs(text), *want, "{text:?}");
        }
        assert!(plainly_without_nulls("a: 1\n--- # c\nb: 2\n", 2));
        assert!(!plainly_without_nulls("a: 1\n---\n---\nb: 2\n", 2));
        assert!(!plainly_without_nulls("a: 1\n--- &x\nb: 2\n", 2));
        assert!(!plainly_without_nulls("a: 1\nb: 2\n", 2));
    }

    /// The error's text, or `""` when there is none.
    fn error_text<T>(result: Result<T>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn syntax_errors_are_worded_by_the_scanner() {
        let err = error_text(parse_documents("a: [1, 2\nb: 3\n", Path::new("e.yaml")));
        let layout_err = error_text(document_layout("a: [1, 2\nb: 3\n", Path::new("e.yaml")));
        assert!(!err.is_empty());
        assert_eq!(err, layout_err);
    }

    #[test]
    fn yaml_one_one_scalars_and_merges() {
        let text = "base: &b {x: 1}\nm:\n  <<: *b\n  z: yes\n  o: 0755\non: off\n";
        assert_eq!(
            docs(text),
            [r#"{"base":{"x":1},"m":{"o":493,"x":1,"z":true},"true":false}"#]
        );
    }

    #[test]
    fn a_quoted_scalar_continued_at_its_keys_indentation_reads_as_in_go() {
        let text =
            "spec:\n  props:\n    d: \"When set, the TLS\n    check is skipped.\"\n    n: 1\n";
        assert_eq!(
            docs(text),
            [r#"{"spec":{"props":{"d":"When set, the TLS check is skipped.","n":1}}}"#]
        );
        // Other syntax errors are still errors.
        assert!(parse_documents("a: [1, 2\nb: 3\n", Path::new("e.yaml")).is_err());
    }

    #[test]
    fn duplicate_keys_name_the_line() {
        let err = error_text(parse_documents("a: 1\nb: 2\na: 3\n", Path::new("d.yaml")));
        assert!(err.starts_with("d.yaml:3:"), "{err}");
        assert!(err.contains("duplicate"), "{err}");
    }

    #[test]
    fn locate_finds_keys_and_items_of_the_nth_non_null_document() {
        let text = "a: 1\n---\n---\nspec:\n  list:\n    - x: 1\n    - {y: 2, z: [3, 4]}\n  base: &b {k: v}\n  m:\n    <<: *b\n";
        let key = |k: &str| PathStep::Key(k.to_owned());
        let at = |doc, path: &[PathStep]| locate(text, doc, path).map(|p| (p.line, p.column));
        assert_eq!(at(0, &[key("a")]), Some((1, 1)));
        // The null document between the two is not counted.
        assert_eq!(at(1, &[]), Some((4, 1)));
        assert_eq!(
            at(1, &[key("spec"), key("list"), PathStep::Index(1)]),
            Some((7, 7))
        );
        assert_eq!(
            at(
                1,
                &[
                    key("spec"),
                    key("list"),
                    PathStep::Index(1),
                    key("z"),
                    PathStep::Index(1)
                ]
            ),
            Some((7, 21))
        );
        // A key brought in by a merge: the deepest node found.
        assert_eq!(at(1, &[key("spec"), key("m"), key("k")]), Some((9, 3)));
        assert_eq!(at(2, &[]), None);
        assert_eq!(stream_shape(text), Some((2, false)));
        assert_eq!(stream_shape("- a\n- b\n"), Some((1, true)));
    }

    #[test]
    fn alias_bombs_fail_fast() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse_documents(&text, Path::new("bomb.yaml")).is_err());
    }

    #[test]
    fn large_streams_parse_whole() {
        // More documents, and more nodes in all, than serde-saphyr's defaults.
        let args = vec!["a"; 100].join(", ");
        let pod = format!("{{kind: Pod, spec: {{containers: [{{name: c, args: [{args}]}}]}}}}");
        let text = vec![pod; 3_000].join("\n---\n");
        let parsed = parse_documents(&text, Path::new("big.yaml")).unwrap();
        assert_eq!(parsed.len(), 3_000);
        let last = serde_json::to_string(&parsed[2_999]).unwrap();
        assert!(
            last.starts_with(r#"{"kind":"Pod","spec":{"containers":[{"args":["a","a","#),
            "{last}"
        );
    }
}

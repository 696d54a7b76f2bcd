//! XML (quick-xml events), in the shape conftest's goxml2json produces:
//!
//! * an element with neither attributes nor child elements is its text, a
//!   string (`""` when empty); otherwise an object with attributes as
//!   `-name`, child elements by local name (an array when repeated) and the
//!   text as `#content` when not empty;
//! * all values are strings; text is trimmed of spaces and non-graphic
//!   characters, and, as in goxml2json, the element's *last* text run wins
//!   (text before a child element is replaced by the whitespace after it);
//! * namespace prefixes are dropped from names.
//!
//! Difference: goxml2json stops silently at the first syntax error and
//! returns what it read so far; a malformed file is an error here.

use std::collections::BTreeMap;
use std::path::Path;

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use regorus::Value;

use super::support::{error_at_offset, object};
use crate::error::Result;

#[derive(Default)]
struct Node {
    children: BTreeMap<String, Vec<Node>>,
    data: String,
}

impl Node {
    fn into_value(self) -> Value {
        if self.children.is_empty() {
            return Value::from(self.data);
        }
        let mut entries = Vec::with_capacity(self.children.len() + 1);
        if !self.data.is_empty() {
            entries.push(("#content".to_owned(), Value::from(self.data)));
        }
        for (label, mut nodes) in self.children {
            let value = if nodes.len() == 1 {
                nodes.pop().map_or(Value::Null, Node::into_value)
            } else {
                Value::from(nodes.into_iter().map(Node::into_value).collect::<Vec<_>>())
            };
            entries.push((label, value));
        }
        object(entries)
    }
}

/// Parses one XML document.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<(String, Node)> = vec![(String::new(), Node::default())];
    // Text and entity references between two markup events form one run.
    let mut run: Option<String> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            let at = usize::try_from(reader.error_position()).unwrap_or(0);
            error_at_offset(path, text, at, e.to_string())
        })?;
        let err_here = |message: String| {
            error_at_offset(path, text, usize::try_from(position).unwrap_or(0), message)
        };
        match &event {
            Event::Text(t) => {
                run.get_or_insert_with(String::new)
                    .push_str(&t.xml10_content());
                continue;
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| err_here(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.xml10_content();
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| err_here(format!("invalid character entity &{name};")))?
                            .to_owned()
                    }
                };
                run.get_or_insert_with(String::new).push_str(&resolved);
                continue;
            }
            _ => {}
        }
        if let Some(t) = run.take() {
            set_data(&mut stack, &t);
        }
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let label = name_str(e.local_name().as_ref());
                let mut node = Node::default();
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| err_here(e.to_string()))?;
                    let name = name_str(attr.key.local_name().as_ref());
                    // Go's decoder does not normalise whitespace in attribute values.
                    #[allow(deprecated)]
                    let value = attr.unescape_value().map_err(|e| err_here(e.to_string()))?;
                    node.children
                        .entry(format!("-{name}"))
                        .or_default()
                        .push(Node {
                            children: BTreeMap::new(),
                            data: value.into_owned(),
                        });
                }
                if is_empty {
                    add_child(&mut stack, label, node);
                } else {
                    stack.push((label, node));
                }
            }
            Event::End(_) => {
                if stack.len() > 1
                    && let Some((label, node)) = stack.pop()
                {
                    add_child(&mut stack, label, node);
                }
            }
            Event::CData(c) => set_data(&mut stack, &c.xml10_content()),
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() > 1 {
        let open = stack.last().map(|(l, _)| l.clone()).unwrap_or_default();
        return Err(error_at_offset(
            path,
            text,
            text.len(),
            format!("unexpected end of file: <{open}> is not closed"),
        ));
    }
    Ok(stack
        .pop()
        .map_or(Value::Null, |(_, root)| root.into_value()))
}

fn name_str(name: &str) -> String {
    name.to_owned()
}

fn set_data(stack: &mut [(String, Node)], text: &str) {
    if let Some((_, node)) = stack.last_mut() {
        node.data = trim_non_graphic(text).to_owned();
    }
}

fn add_child(stack: &mut [(String, Node)], label: String, node: Node) {
    if let Some((_, parent)) = stack.last_mut() {
        parent.children.entry(label).or_default().push(node);
    }
}

/// goxml2json's trim: drop leading and trailing characters that are spaces
/// or not graphic.
fn trim_non_graphic(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c.is_control() || c == '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new("a.xml")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn goxml2json_shape() {
        assert_eq!(
            json(
                "<?xml version=\"1.0\"?>\n<p:project xmlns:p=\"urn:x\" a=\"1\">\n  <dep>x &amp; y</dep>\n  <dep><id>2</id></dep>\n  <empty/>\n  <t k=\"v\">text</t>\n</p:project>\n"
            ),
            r##"{"project":{"-a":"1","-p":"urn:x","dep":["x & y",{"id":"2"}],"empty":"","t":{"#content":"text","-k":"v"}}}"##
        );
    }

    #[test]
    fn malformed_is_an_error() {
        let err = parse("<a><b></a>", Path::new("a.xml"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("a.xml:1:")),
            "{err:?}"
        );
        assert!(parse("<a>", Path::new("a.xml")).is_err());
    }
}

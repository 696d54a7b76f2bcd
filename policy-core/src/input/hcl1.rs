//! HCL 1 (Terraform 0.11 and older), read with `hcl-edit` (HCL 2's syntax
//! is a superset of what HCL 1 files use in practice) and shaped like
//! hashicorp/hcl v1's decoding into Go maps, which conftest uses:
//!
//! * blocks become lists of maps: `provider "google" {…}` →
//!   `{"provider": [{"google": [{…}]}]}`, one list element per block;
//! * an object value is a one-element list of maps (`tags = {…}` →
//!   `"tags": [{…}]`), as HCL 1 decodes nested objects, except directly
//!   inside a list (`[{…}, {…}]` stays a list of maps);
//! * a repeated block without labels replaces the previous one, labelled
//!   blocks of one type accumulate;
//! * `"${…}"` strings are plain strings, kept as written.
//!
//! HCL 1 constructs HCL 2 does not accept (a quoted attribute name at body
//! level, `%{` in a string) are syntax errors here.

use std::path::Path;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl_edit::structure::{BlockLabel, Body};
use hcl_edit::template::{Element, Template};
use regorus::Value;
use serde_json::{Map, Value as Json};

use super::support::error;
use crate::error::Result;

/// Parses one HCL 1 file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let body = super::hcl2::parse_body(text, path)?;
    let json = body_map(&body, text);
    serde_json::from_value::<Value>(Json::Object(json)).map_err(|e| error(path, e.to_string()))
}

fn push(map: &mut Map<String, Json>, key: String, value: Json) {
    match map.get_mut(&key) {
        Some(Json::Array(items)) => items.push(value),
        _ => {
            map.insert(key, Json::Array(vec![value]));
        }
    }
}

fn body_map(body: &Body, src: &str) -> Map<String, Json> {
    let mut out = Map::new();
    for structure in body.iter() {
        if let Some(attr) = structure.as_attribute() {
            out.insert(
                attr.key.as_str().to_owned(),
                expression(&attr.value, src, false),
            );
        } else if let Some(block) = structure.as_block() {
            let mut value = Json::Object(body_map(&block.body, src));
            for label in block.labels.iter().rev() {
                let name = match label {
                    BlockLabel::Ident(i) => i.as_str().to_owned(),
                    BlockLabel::String(s) => s.value().clone(),
                };
                let mut wrapper = Map::new();
                wrapper.insert(name, Json::Array(vec![value]));
                value = Json::Object(wrapper);
            }
            if block.labels.is_empty() {
                // hcl v1 decodes a repeated unlabelled block over the
                // previous one; labelled blocks of one type accumulate.
                out.insert(block.ident.as_str().to_owned(), Json::Array(vec![value]));
            } else {
                push(&mut out, block.ident.as_str().to_owned(), value);
            }
        }
    }
    out
}

fn source(expr: &impl Span, src: &str) -> String {
    expr.span()
        .and_then(|r| src.get(r))
        .unwrap_or("")
        .to_owned()
}

/// `in_list`: an object directly inside a list decodes to a plain map; an
/// object anywhere else to a one-element list of maps (hcl v1's decoder).
fn expression(expr: &Expression, src: &str, in_list: bool) -> Json {
    match expr {
        Expression::Null(_) => Json::Null,
        Expression::Bool(b) => Json::Bool(*b.value()),
        Expression::Number(n) => number(n.value(), false),
        Expression::String(s) => Json::String(s.value().clone()),
        Expression::Array(items) => {
            Json::Array(items.iter().map(|e| expression(e, src, true)).collect())
        }
        Expression::Object(object) => {
            let mut map = Map::new();
            for (key, value) in object.iter() {
                let key = match key {
                    ObjectKey::Ident(i) => i.as_str().to_owned(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().clone(),
                    ObjectKey::Expression(e) => source(e, src),
                };
                map.insert(key, expression(value.expr(), src, false));
            }
            if in_list {
                Json::Object(map)
            } else {
                Json::Array(vec![Json::Object(map)])
            }
        }
        Expression::StringTemplate(t) => Json::String(template(t, src)),
        Expression::HeredocTemplate(h) => {
            let mut h = (**h).clone();
            h.dedent();
            Json::String(template(&h.template, src))
        }
        Expression::UnaryOp(op) => match (op.operator.value(), &op.expr) {
            (UnaryOperator::Neg, Expression::Number(n)) => number(n.value(), true),
            _ => Json::String(source(expr, src)),
        },
        _ => Json::String(source(expr, src)),
    }
}

/// HCL 1 does not evaluate interpolations: the string is kept as written.
fn template(template: &Template, src: &str) -> String {
    let mut out = String::new();
    for element in template.iter() {
        match element {
            Element::Literal(s) => out.push_str(s.value()),
            Element::Interpolation(i) => {
                out.push_str("${");
                out.push_str(&source(&i.expr, src));
                out.push('}');
            }
            Element::Directive(d) => out.push_str(&source(&**d, src)),
        }
    }
    out
}

fn number(n: &hcl_edit::Number, negate: bool) -> Json {
    if let Some(i) = n
        .as_i64()
        .and_then(|i| if negate { i.checked_neg() } else { Some(i) })
    {
        return Json::from(i);
    }
    n.as_f64()
        .map(|f| if negate { -f } else { f })
        .and_then(serde_json::Number::from_f64)
        .map_or(Json::Null, Json::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_lists_of_maps() {
        let text = "terraform { v = 1 }\nterraform { v = 2 }\nlist = [{ a = 1 }, { b = 2 }]\nprovider \"google\" {\n  region = \"eu\"\n}\nresource \"a\" \"x\" {\n  n = 1\n  cluster = \"${b.c.name}\"\n  meta = { k = \"v\" }\n  inner { z = true }\n}\nresource \"a\" \"y\" {}\n";
        let v = parse(text, Path::new("gke.hcl1")).ok();
        let s = v.and_then(|v| serde_json::to_string(&v).ok());
        assert_eq!(
            s.as_deref(),
            Some(concat!(
                r#"{"list":[{"a":1},{"b":2}],"provider":[{"google":[{"region":"eu"}]}],"#,
                r#""resource":[{"a":[{"x":[{"cluster":"${b.c.name}","inner":[{"z":true}],"meta":[{"k":"v"}],"n":1}]}]},{"a":[{"y":[{}]}]}],"terraform":[{"v":2}]}"#
            ))
        );
    }
}

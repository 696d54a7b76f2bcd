//! HCL 2 (Terraform `.tf`, `.tfvars`, `.hcl`), parsed with `hcl-edit` and
//! converted to the shape of tmccombs/hcl2json, which conftest uses:
//!
//! * a block becomes nested objects keyed by its type and labels, and its
//!   body is wrapped in an array (`resource.aws_s3_bucket.b[0].acl`);
//! * literals stay typed; strings keep `${` and `%{` escaped as `$${` and
//!   `%%{`; a string that is exactly one interpolation takes the value of
//!   that interpolation when it is a literal (`"${1}"` → `1`);
//! * any other expression becomes its source text wrapped in `${…}`
//!   (`"${var.region}"`), interpolations in strings keep their source text,
//!   and conditionals or `for` inside strings become `%{if …}`/`%{for …}`
//!   directives, as hcl2json writes them.
//!
//! hcl-edit keeps byte spans, so expressions are rendered from the original
//! source text exactly as hcl2json does.

use std::path::Path;

use hcl_edit::Span;
use hcl_edit::expr::{Expression, ObjectKey, UnaryOperator};
use hcl_edit::structure::{Block, BlockLabel, Body};
use hcl_edit::template::{Directive, Element, Template};
use regorus::Value;
use serde_json::{Map, Value as Json};

use super::support::{check_nesting, error, error_at};
use crate::error::Result;

/// Parses one HCL 2 file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    let body = parse_body(text, path)?;
    let converter = Converter { src: text };
    let json = converter.body(&body).map_err(|m| error(path, m))?;
    serde_json::from_value::<Value>(Json::Object(json)).map_err(|e| error(path, e.to_string()))
}

/// hcl-edit's parser with its error turned into ours.
pub(crate) fn parse_body(text: &str, path: &Path) -> Result<Body> {
    // hcl-edit's parser recurses once per nesting level.
    check_nesting(text, path)?;
    hcl_edit::parser::parse_body(text).map_err(|e| {
        let loc = e.location();
        error_at(path, loc.line(), loc.column(), e.message().to_owned())
    })
}

struct Converter<'a> {
    src: &'a str,
}

impl Converter<'_> {
    fn body(&self, body: &Body) -> Result<Map<String, Json>, String> {
        let mut out = Map::new();
        for block in body.blocks() {
            self.block(block, &mut out)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for attr in body.attributes() {
            let key = attr.key.as_str().to_owned();
            if !seen.insert(key.clone()) {
                return Err(format!(
                    "Attribute redefined: the argument {key:?} was already set"
                ));
            }
            out.insert(key, self.expression(&attr.value)?);
        }
        Ok(out)
    }

    fn block(&self, block: &Block, out: &mut Map<String, Json>) -> Result<(), String> {
        let mut key = block.ident.as_str().to_owned();
        let mut target = out;
        for label in &block.labels {
            let entry = target
                .entry(key.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            let Json::Object(next) = entry else {
                return Err(format!(
                    "Unable to convert Block to JSON: {}.{}",
                    block.ident.as_str(),
                    block
                        .labels
                        .iter()
                        .map(label_str)
                        .collect::<Vec<_>>()
                        .join(".")
                ));
            };
            target = next;
            key = label_str(label).to_owned();
        }
        let value = Json::Object(self.body(&block.body)?);
        match target.get_mut(&key) {
            Some(Json::Array(items)) => items.push(value),
            Some(_) => {
                return Err(format!(
                    "invalid HCL detected for {key:?} block, cannot have blocks with and without labels"
                ));
            }
            None => {
                target.insert(key, Json::Array(vec![value]));
            }
        }
        Ok(())
    }

    fn source(&self, expr: &impl Span) -> String {
        expr.span()
            .and_then(|r| self.src.get(r))
            .unwrap_or("")
            .to_owned()
    }

    fn wrap(&self, expr: &impl Span) -> String {
        format!("${{{}}}", self.source(expr))
    }

    fn expression(&self, expr: &Expression) -> Result<Json, String> {
        Ok(match expr {
            Expression::Null(_) => Json::Null,
            Expression::Bool(b) => Json::Bool(*b.value()),
            Expression::Number(n) => number(n.value()),
            Expression::String(s) => Json::String(escape_literal(s.value())),
            Expression::Array(items) => Json::Array(
                items
                    .iter()
                    .map(|e| self.expression(e))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Expression::Object(object) => {
                let mut map = Map::new();
                for (key, value) in object.iter() {
                    let key = match key {
                        ObjectKey::Ident(ident) => ident.as_str().to_owned(),
                        ObjectKey::Expression(
                            e @ (Expression::Variable(_) | Expression::Traversal(_)),
                        ) => self.source(e),
                        ObjectKey::Expression(e) => self.string_part(e)?,
                    };
                    map.insert(key, self.expression(value.expr())?);
                }
                Json::Object(map)
            }
            Expression::StringTemplate(t) => self.template_expression(t)?,
            Expression::HeredocTemplate(h) => {
                let mut h = (**h).clone();
                h.dedent();
                self.template_expression(&h.template)?
            }
            Expression::UnaryOp(op) => match (op.operator.value(), &op.expr) {
                (UnaryOperator::Neg, Expression::Number(n)) => negate(n.value()),
                (UnaryOperator::Not, Expression::Bool(b)) => Json::Bool(!*b.value()),
                _ => Json::String(self.wrap(expr)),
            },
            _ => Json::String(self.wrap(expr)),
        })
    }

    /// A quoted or heredoc template. A template that is exactly one
    /// interpolation is that expression (hcl2json's `TemplateWrapExpr`).
    fn template_expression(&self, template: &Template) -> Result<Json, String> {
        let elements: Vec<&Element> = template.iter().collect();
        if let [Element::Interpolation(i)] = elements.as_slice() {
            return self.expression(&i.expr);
        }
        Ok(Json::String(self.template(template)?))
    }

    fn template(&self, template: &Template) -> Result<String, String> {
        let mut out = String::new();
        for element in template.iter() {
            match element {
                Element::Literal(s) => out.push_str(&escape_literal(s.value())),
                Element::Interpolation(i) => out.push_str(&self.string_part(&i.expr)?),
                Element::Directive(d) => out.push_str(&self.directive(d)?),
            }
        }
        Ok(out)
    }

    fn directive(&self, directive: &Directive) -> Result<String, String> {
        Ok(match directive {
            Directive::If(d) => {
                let mut s = format!("%{{if {}}}", self.source(&d.if_expr.cond_expr));
                s.push_str(&self.template(&d.if_expr.template)?);
                if let Some(e) = &d.else_expr {
                    let f = self.template(&e.template)?;
                    if !f.is_empty() {
                        s.push_str("%{else}");
                        s.push_str(&f);
                    }
                }
                s.push_str("%{endif}");
                s
            }
            Directive::For(d) => {
                let f = &d.for_expr;
                let mut s = String::from("%{for ");
                if let Some(k) = &f.key_var {
                    s.push_str(k.as_str());
                    s.push_str(", ");
                }
                s.push_str(f.value_var.as_str());
                s.push_str(" in ");
                s.push_str(&self.source(&f.collection_expr));
                s.push('}');
                s.push_str(&self.template(&f.template)?);
                s.push_str("%{endfor}");
                s
            }
        })
    }

    /// An expression inside a string: literals as text, everything else as
    /// its source (hcl2json's `convertStringPart`).
    fn string_part(&self, expr: &Expression) -> Result<String, String> {
        Ok(match expr {
            Expression::Null(_) => "null".to_owned(),
            Expression::Bool(b) => b.value().to_string(),
            Expression::Number(n) => match number(n.value()) {
                Json::Number(n) => n.to_string(),
                other => other.to_string(),
            },
            Expression::String(s) => escape_literal(s.value()),
            Expression::StringTemplate(t) => self.template(t)?,
            Expression::HeredocTemplate(h) => {
                let mut h = (**h).clone();
                h.dedent();
                self.template(&h.template)?
            }
            Expression::Conditional(c) => {
                let mut s = format!("%{{if {}}}", self.source(&c.cond_expr));
                s.push_str(&self.string_part(&c.true_expr)?);
                let f = self.string_part(&c.false_expr)?;
                if !f.is_empty() {
                    s.push_str("%{else}");
                    s.push_str(&f);
                }
                s.push_str("%{endif}");
                s
            }
            _ => self.wrap(expr),
        })
    }
}

fn label_str(label: &BlockLabel) -> &str {
    match label {
        BlockLabel::Ident(i) => i.as_str(),
        BlockLabel::String(s) => s.value(),
    }
}

fn escape_literal(s: &str) -> String {
    s.replace("${", "$${").replace("%{", "%%{")
}

fn number(n: &hcl_edit::Number) -> Json {
    if let Some(i) = n.as_i64() {
        Json::from(i)
    } else if let Some(u) = n.as_u64() {
        Json::from(u)
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Json::Null, Json::Number)
    }
}

fn negate(n: &hcl_edit::Number) -> Json {
    if let Some(i) = n.as_i64().and_then(i64::checked_neg) {
        Json::from(i)
    } else {
        n.as_f64()
            .and_then(|f| serde_json::Number::from_f64(-f))
            .map_or(Json::Null, Json::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> String {
        let v = parse(text, Path::new("main.tf")).unwrap_or_else(|e| panic!("{e}"));
        serde_json::to_string(&v).unwrap_or_default()
    }

    #[test]
    fn blocks_nest_by_labels_in_arrays() {
        assert_eq!(
            json(
                "resource \"aws_s3_bucket\" \"b\" {\n  acl = \"private\"\n  tags = { Name = \"x\" }\n}\nresource \"aws_s3_bucket\" \"c\" {}\nprovider \"aws\" { region = var.region }\n"
            ),
            r#"{"provider":{"aws":[{"region":"${var.region}"}]},"resource":{"aws_s3_bucket":{"b":[{"acl":"private","tags":{"Name":"x"}}],"c":[{}]}}}"#
        );
    }

    #[test]
    fn expressions_render_as_source() {
        assert_eq!(
            json(
                "a = \"${var.x}-${local.y}\"\nb = -1\nc = [1, 2.5, true, null]\nd = length(var.list) > 0\ne = \"${1}\"\nf = \"$${lit}\"\ng = \"${var.p ? \"y\" : \"n\"}!\"\n"
            ),
            r#"{"a":"${var.x}-${local.y}","b":-1,"c":[1,2.5,true,null],"d":"${length(var.list) > 0}","e":1,"f":"$${lit}","g":"%{if var.p}y%{else}n%{endif}!"}"#
        );
    }

    #[test]
    fn heredocs() {
        assert_eq!(
            json("a = <<-EOT\n    hello\n      ${var.n}\n    EOT\n"),
            r#"{"a":"hello\n  ${var.n}\n"}"#
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a = \nb = 1\n", Path::new("x.tf"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.starts_with("x.tf:")),
            "{err:?}"
        );
    }
}

//! Jsonnet, evaluated with `rsjsonnet-lang` (a maintained pure-Rust
//! Jsonnet implementation). As in conftest, `import`, `importstr` and
//! `importbin` resolve relative to the importing file's directory, and the
//! evaluated value goes through JSON. Standard input resolves imports
//! against the working directory.

use std::path::{Path, PathBuf};

use regorus::Value;
use rsjsonnet_lang::arena::Arena;
use rsjsonnet_lang::interner::InternedStr;
use rsjsonnet_lang::program::{
    Callbacks, EvalStackTraceItem, ImportError, LoadError, NativeError, Program, Thunk,
    Value as JValue,
};
use rsjsonnet_lang::span::{SpanContextId, SpanId};

use super::support::{check_nesting, error, error_at_offset};
use crate::error::Result;

/// go-jsonnet's default call depth limit.
const MAX_STACK: usize = 500;

/// Evaluates one Jsonnet file.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Value> {
    // The Jsonnet parser recurses once per nesting level.
    check_nesting(text, path)?;
    let arena = Arena::new();
    let mut program = Program::new(&arena);
    program.set_max_stack(MAX_STACK);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let (ctx, _) = program.span_manager_mut().insert_source_context(text.len());
    let mut callbacks = Imports {
        files: vec![(ctx, dir, text.to_owned())],
    };
    let this_file = path.to_string_lossy();
    let thunk = program
        .load_source(ctx, text.as_bytes(), true, &this_file)
        .map_err(|e| load_error(&program, &callbacks, path, text, &e))?;
    let value = program.eval_value(&thunk, &mut callbacks).map_err(|e| {
        let span = e.stack_trace.iter().find_map(|item| match item {
            EvalStackTraceItem::Expr { span } | EvalStackTraceItem::Variable { span, .. } => {
                Some(*span)
            }
            EvalStackTraceItem::Call { span, .. }
            | EvalStackTraceItem::ArrayItem { span, .. }
            | EvalStackTraceItem::ObjectField { span, .. } => *span,
            _ => None,
        });
        located(
            &program,
            &callbacks,
            path,
            text,
            span,
            &format!("{:?}", e.kind),
        )
    })?;
    let json = program
        .manifest_json(&value, false)
        .map_err(|e| error(path, format!("{:?}", e.kind)))?;
    Value::from_json_str(&json).map_err(|e| error(path, e.to_string()))
}

fn load_error(
    program: &Program<'_>,
    imports: &Imports,
    path: &Path,
    text: &str,
    e: &LoadError,
) -> crate::Error {
    let message = match e {
        LoadError::Parse(rsjsonnet_lang::parser::ParseError::Expected {
            span,
            expected,
            instead,
        }) => {
            return located(
                program,
                imports,
                path,
                text,
                Some(*span),
                &format!("expected one of {expected:?}, found {instead:?}"),
            );
        }
        other => format!("{other:?}"),
    };
    error(path, strip_span_ids(&message))
}

/// An error placed at a span when the span is in the file being read.
fn located(
    program: &Program<'_>,
    imports: &Imports,
    path: &Path,
    text: &str,
    span: Option<SpanId>,
    message: &str,
) -> crate::Error {
    let message = strip_span_ids(message);
    if let Some(span) = span {
        let (ctx, start, _) = program.span_manager().get_span(span);
        if imports.files.first().is_some_and(|(c, _, _)| *c == ctx) {
            return error_at_offset(path, text, start, message);
        }
    }
    error(path, message)
}

/// Debug output of rsjsonnet errors names internal span ids; drop them.
fn strip_span_ids(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("span: SpanId(") {
        out.push_str(rest.get(..i).unwrap_or(""));
        let after = rest.get(i..).unwrap_or("");
        let end = after.find(')').map_or(after.len(), |j| j + 1);
        rest = after.get(end..).unwrap_or("");
        rest = rest.strip_prefix(", ").unwrap_or(rest);
    }
    out.push_str(rest);
    out
}

struct Imports {
    /// Every loaded source: its span context, directory and text.
    files: Vec<(SpanContextId, PathBuf, String)>,
}

impl Imports {
    fn resolve(&self, program: &Program<'_>, from: SpanId, path: &str) -> PathBuf {
        let target = Path::new(path);
        if target.is_absolute() {
            return target.to_path_buf();
        }
        let (ctx, _, _) = program.span_manager().get_span(from);
        let dir = self
            .files
            .iter()
            .find(|(c, _, _)| *c == ctx)
            .or_else(|| self.files.first())
            .map(|(_, d, _)| d.clone())
            .unwrap_or_default();
        dir.join(target)
    }
}

impl<'p> Callbacks<'p> for Imports {
    fn import(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<Thunk<'p>, ImportError> {
        let full = self.resolve(program, from, path);
        let bytes = std::fs::read(&full).map_err(|_| ImportError)?;
        let text = String::from_utf8(bytes).map_err(|_| ImportError)?;
        let (ctx, _) = program.span_manager_mut().insert_source_context(text.len());
        let thunk = program
            .load_source(ctx, text.as_bytes(), true, &full.to_string_lossy())
            .map_err(|_| ImportError)?;
        let dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        self.files.push((ctx, dir, text));
        Ok(thunk)
    }

    fn import_str(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<String, ImportError> {
        let full = self.resolve(program, from, path);
        std::fs::read_to_string(full).map_err(|_| ImportError)
    }

    fn import_bin(
        &mut self,
        program: &mut Program<'p>,
        from: SpanId,
        path: &str,
    ) -> Result<Vec<u8>, ImportError> {
        let full = self.resolve(program, from, path);
        std::fs::read(full).map_err(|_| ImportError)
    }

    fn trace(&mut self, _program: &mut Program<'p>, _message: &str, _stack: &[EvalStackTraceItem]) {
    }

    fn native_call(
        &mut self,
        _program: &mut Program<'p>,
        _name: InternedStr<'p>,
        _args: &[JValue<'p>],
    ) -> Result<JValue<'p>, NativeError> {
        Err(NativeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_with_relative_imports() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("lib.libsonnet"), "{ port: 8000 + 80 }")?;
        let main = dir.path().join("main.jsonnet");
        let text = "local lib = import 'lib.libsonnet';\n{ name: 'web', port: lib.port, tags: [x * 2 for x in [1, 2]] }";
        let v = parse(text, &main)?;
        assert_eq!(
            serde_json::to_string(&v)?,
            r#"{"name":"web","port":8080,"tags":[2,4]}"#
        );
        Ok(())
    }

    #[test]
    fn errors_have_positions() {
        let err = parse("{\n  a: ,\n}", Path::new("x.jsonnet"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.starts_with("x.jsonnet:2:")),
            "{err:?}"
        );
        let err = parse("{ a: error 'boom' }", Path::new("x.jsonnet"))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("boom")),
            "{err:?}"
        );
    }
}

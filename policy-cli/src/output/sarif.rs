//! SARIF 2.1.0. Rule ids name the rule that produced each result
//! (`main/deny_root`), not conftest's catch-all `main/deny`, so code-scanning
//! tools can tell findings apart. Status results (`success`, `skip`) follow
//! conftest. An evaluation error is an `error`-level result under
//! `<rule id>/error` (`main/deny_root/error`), and marks the run as not
//! executed successfully.

use serde_json::{Value, json};

use policy_core::conftest::{CheckResult, Outcome};

use super::RenderOptions;

struct Rules {
    ids: Vec<String>,
    defs: Vec<Value>,
}

impl Rules {
    fn index(&mut self, id: &str, description: &str, properties: Option<Value>) -> usize {
        if let Some(i) = self.ids.iter().position(|x| x == id) {
            return i;
        }
        let mut def = json!({
            "id": id,
            "shortDescription": {"text": description},
        });
        if let (Some(props), Some(obj)) = (properties, def.as_object_mut()) {
            obj.insert("properties".to_owned(), props);
        }
        self.ids.push(id.to_owned());
        self.defs.push(def);
        self.ids.len() - 1
    }
}

fn location(file: &str, outcome: Option<&Outcome>) -> Value {
    match outcome.and_then(|o| o.loc.as_ref()) {
        Some(loc) => json!({"physicalLocation": {
            "artifactLocation": {"uri": loc.file.replace('\\', "/")},
            "region": {"startLine": loc.line, "endLine": loc.line},
        }}),
        None => json!({"physicalLocation": {"artifactLocation": {"uri": file.replace('\\', "/")}}}),
    }
}

fn metadata(o: &Outcome) -> Option<Value> {
    if o.metadata.is_empty() {
        return None;
    }
    serde_json::to_value(&o.metadata).ok()
}

pub(super) fn render(results: &[CheckResult], options: &RenderOptions) -> String {
    let mut rules = Rules {
        ids: Vec::new(),
        defs: Vec::new(),
    };
    let mut out = Vec::new();
    let mut push = |rules: &mut Rules,
                    id: String,
                    desc: &str,
                    level: &str,
                    msg: &str,
                    r: &CheckResult,
                    o: Option<&Outcome>| {
        let index = rules.index(&id, desc, o.and_then(metadata));
        out.push(json!({
            "ruleId": id,
            "ruleIndex": index,
            "level": level,
            "message": {"text": msg},
            "locations": [location(&r.filename, o)],
        }));
    };
    let rule_id = |ns: &str, o: &Outcome, fallback: &str| {
        let rule = if o.rule.is_empty() { fallback } else { &o.rule };
        format!("{ns}/{rule}")
    };
    for r in results {
        for o in &r.failures {
            push(
                &mut rules,
                rule_id(&r.namespace, o, "deny"),
                "Policy violation",
                "error",
                &o.msg,
                r,
                Some(o),
            );
        }
        for o in &r.errors {
            // Its own rule id, so the rule's findings keep their description.
            push(
                &mut rules,
                format!("{}/error", rule_id(&r.namespace, o, "eval")),
                "Evaluation error",
                "error",
                &o.msg,
                r,
                Some(o),
            );
        }
        for o in &r.warnings {
            push(
                &mut rules,
                rule_id(&r.namespace, o, "warn"),
                "Policy warning",
                "warning",
                &o.msg,
                r,
                Some(o),
            );
        }
        for o in &r.exceptions {
            push(
                &mut rules,
                format!("{}/allow", r.namespace),
                "Policy exception",
                "note",
                &o.msg,
                r,
                Some(o),
            );
        }
        if !r.failures.is_empty() || !r.warnings.is_empty() || !r.errors.is_empty() {
            continue;
        }
        if r.successes > 0 || !r.exceptions.is_empty() {
            let d = "Policy was satisfied successfully";
            push(
                &mut rules,
                format!("{}/success", r.namespace),
                d,
                "none",
                d,
                r,
                None,
            );
        } else {
            let d = "Policy check was skipped";
            push(
                &mut rules,
                format!("{}/skip", r.namespace),
                d,
                "none",
                d,
                r,
                None,
            );
        }
    }
    let failures = results.iter().any(|r| !r.failures.is_empty());
    let warnings = results.iter().any(|r| !r.warnings.is_empty());
    let errors = results.iter().any(|r| !r.errors.is_empty());
    let description = if errors {
        "Policy evaluation errors found"
    } else if failures {
        "Policy violations found"
    } else if warnings {
        "Policy warnings found"
    } else {
        "No policy violations found"
    };
    let report = json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": {"driver": {
                "name": "regard",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.defs,
            }},
            "invocations": [{
                "executionSuccessful": !errors,
                "exitCode": options.exit_code,
                "exitCodeDescription": description,
            }],
            "results": out,
        }],
    });
    let mut text = serde_json::to_string(&report).unwrap_or_default();
    text.push('\n');
    text
}

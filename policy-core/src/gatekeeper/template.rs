//! ConstraintTemplates: parsing, Gatekeeper's checks, and compiling the Rego
//! once into a prepared regorus engine that reviews clone, and the
//! `K8sNativeValidation` (CEL) code once into a [`Validator`].
//!
//! Flow: [`ConstraintTemplate::from_value`] reads the resource (v1, v1beta1
//! or v1alpha1), picks the Rego source (legacy `targets[].rego` first,
//! then a `code[]` entry with `engine: Rego`) and the first `code[]` entry
//! with `engine: K8sNativeValidation`; a template needs one of them.
//! [`ConstraintTemplate::compile`] rewrites each Rego module for OPA parity
//! ([`crate::rego`]), checks the `violation` rule, the `lib.*` packages and
//! the `data` references, and prepares the engine; it compiles the CEL
//! validations, variables and match conditions, refusing the template on a
//! compile error as it does for Rego. Which of the two runs is chosen per
//! review ([`CompiledTemplate::engine`]).

use std::sync::Arc;

use regorus::{Engine as RegoEngine, Value};

use super::data_access::DataAccess;
use super::object::{str_at, value_at};
use super::schema::ParametersSchema;
use crate::cel::validator::{FailurePolicy, Validator, ValidatorSource};
use crate::error::Error;
use crate::policy::{RegoVersion, new_engine_for, register_go_sprintf};
use crate::rego::{package_components, parse_module, prepare as rewrite, rule_name};
use crate::rvm;

/// The only target Gatekeeper's Kubernetes admission uses.
pub const TARGET: &str = "admission.k8s.gatekeeper.sh";

/// A parsed ConstraintTemplate (not yet compiled).
#[derive(Debug, Clone)]
pub struct ConstraintTemplate {
    /// `metadata.name` (the lower-cased kind).
    pub name: String,
    /// The constraint kind it defines (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// Where it came from.
    pub file: String,
    /// The main Rego module (empty for a CEL-only template).
    pub rego: String,
    /// Library modules (`package lib.…`).
    pub libs: Vec<String>,
    /// Rego syntax version of `rego` and `libs`.
    pub version: RegoVersion,
    /// `spec.crd.spec.validation.openAPIV3Schema`, if any.
    pub parameters_schema: Option<Value>,
    /// `targets[0].operations` (empty = all).
    pub operations: Vec<String>,
    /// Whether a K8sNativeValidation (CEL) block is present; it runs before
    /// the Rego unless CEL is disabled (`--enable-k8s-native-validation=false`).
    pub has_cel: bool,
    /// The K8sNativeValidation source.
    pub(crate) cel: Option<ValidatorSource>,
}

/// The policy language a template is evaluated with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The `Rego` code (or legacy `rego`), run by regorus.
    Rego,
    /// The `K8sNativeValidation` code, run by the CEL engine.
    Cel,
}

/// The built-in variables Gatekeeper declares before a template's own.
pub(crate) const CEL_BUILTINS: [&str; 2] = ["anyObject", "params"];

/// A compiled template. Cloning is cheap.
#[derive(Debug, Clone)]
pub(crate) struct CompiledTemplate {
    pub meta: Arc<ConstraintTemplate>,
    /// The compiled Rego, when the template has some.
    pub rego: Option<RegoCode>,
    /// The compiled K8sNativeValidation code, when the template has some.
    pub cel: Option<Arc<Validator>>,
    pub schema: Option<Arc<ParametersSchema>>,
}

/// A template's Rego, compiled.
#[derive(Debug, Clone)]
pub(crate) struct RegoCode {
    /// Prepared engine; clone it per evaluation.
    pub engine: RegoEngine,
    /// `data.<package>.violation`.
    pub rule: String,
    /// Whether the Rego reads `data.inventory`.
    pub uses_inventory: bool,
    /// `violation` compiled for the RVM on first use.
    pub program: Arc<rvm::RvmProgram>,
    /// `data` for the RVM: the inventory, when the template reads it.
    pub data: Value,
}

fn template_error(file: &str, name: &str, message: impl Into<String>) -> Error {
    Error::Template {
        file: file.to_owned(),
        name: name.to_owned(),
        message: message.into(),
    }
}

/// Whether a document is a ConstraintTemplate.
pub(crate) fn is_template(doc: &Value) -> bool {
    str_at(doc, &["kind"]) == Some("ConstraintTemplate")
        && str_at(doc, &["apiVersion"]).is_some_and(|v| v.starts_with("templates.gatekeeper.sh/"))
}

impl ConstraintTemplate {
    /// Reads a ConstraintTemplate resource.
    ///
    /// ```
    /// use policy_core::gatekeeper::ConstraintTemplate;
    /// use policy_core::Value;
    /// let doc = Value::from_json_str(r#"{
    ///   "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
    ///   "metadata": {"name": "k8sdemo"},
    ///   "spec": {"crd": {"spec": {"names": {"kind": "K8sDemo"}}},
    ///            "targets": [{"target": "admission.k8s.gatekeeper.sh",
    ///                         "rego": "package k8sdemo\nviolation[{\"msg\": \"no\"}] { true }"}]}
    /// }"#).unwrap();
    /// let t = ConstraintTemplate::from_value("t.yaml", &doc).unwrap();
    /// assert_eq!(t.kind, "K8sDemo");
    /// ```
    pub fn from_value(file: &str, doc: &Value) -> Result<ConstraintTemplate, Error> {
        let kind = str_at(doc, &["spec", "crd", "spec", "names", "kind"]).unwrap_or("");
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("");
        let shown = if name.is_empty() { kind } else { name };
        let api = str_at(doc, &["apiVersion"]).unwrap_or("");
        if !matches!(
            api,
            "templates.gatekeeper.sh/v1"
                | "templates.gatekeeper.sh/v1beta1"
                | "templates.gatekeeper.sh/v1alpha1"
        ) {
            return Err(template_error(
                file,
                shown,
                format!("unsupported apiVersion {api:?}"),
            ));
        }
        if kind.is_empty() {
            return Err(template_error(
                file,
                shown,
                "spec.crd.spec.names.kind is required",
            ));
        }
        if name != kind.to_lowercase() {
            return Err(template_error(
                file,
                shown,
                format!(
                    "the ConstraintTemplate's name {name:?} is not equal to the lowercase of CRD's Kind: {:?}",
                    kind.to_lowercase()
                ),
            ));
        }
        let targets = match value_at(doc, &["spec", "targets"]) {
            Value::Array(a) => a.iter().cloned().collect::<Vec<_>>(),
            _ => {
                return Err(template_error(
                    file,
                    name,
                    r#"field "targets" not specified in ConstraintTemplate spec"#,
                ));
            }
        };
        let target = match targets.as_slice() {
            [t] => t.clone(),
            [] => {
                return Err(template_error(
                    file,
                    name,
                    "no targets specified: ConstraintTemplate must specify one target",
                ));
            }
            _ => {
                return Err(template_error(
                    file,
                    name,
                    "multi-target templates are not currently supported",
                ));
            }
        };
        let target_name = str_at(&target, &["target"]).unwrap_or("");
        if target_name != TARGET {
            return Err(template_error(
                file,
                name,
                format!("target {target_name:?} is not supported (only {TARGET})"),
            ));
        }
        let strings = |v: &Value, what: &str| -> Result<Vec<String>, Error> {
            match v {
                Value::Undefined | Value::Null => Ok(Vec::new()),
                Value::Array(a) => a
                    .iter()
                    .map(|s| {
                        s.as_string().map(|s| s.to_string()).map_err(|_| {
                            template_error(file, name, format!("{what} must be a list of strings"))
                        })
                    })
                    .collect(),
                _ => Err(template_error(
                    file,
                    name,
                    format!("{what} must be a list of strings"),
                )),
            }
        };
        let code: Vec<Value> = match &target["code"] {
            Value::Array(a) => a.iter().cloned().collect(),
            _ => Vec::new(),
        };
        let has_cel = code
            .iter()
            .any(|c| str_at(c, &["engine"]) == Some("K8sNativeValidation"));
        let (rego, libs, version) =
            if let Some(rego) = str_at(&target, &["rego"]).filter(|r| !r.trim().is_empty()) {
                (
                    rego.to_owned(),
                    strings(&target["libs"], "libs")?,
                    RegoVersion::V0,
                )
            } else if let Some(c) = code.iter().find(|c| str_at(c, &["engine"]) == Some("Rego")) {
                let src = &c["source"];
                let rego = str_at(src, &["rego"]).ok_or_else(|| {
                    template_error(file, name, "code[engine=Rego].source.rego is required")
                })?;
                let version = match str_at(src, &["version"]) {
                    Some("v1") => RegoVersion::V1,
                    _ => RegoVersion::V0,
                };
                (
                    rego.to_owned(),
                    strings(&src["libs"], "code[engine=Rego].source.libs")?,
                    version,
                )
            } else if has_cel {
                (String::new(), Vec::new(), RegoVersion::V0)
            } else {
                return Err(template_error(
                    file,
                    name,
                    "could not extract Rego from the constraint template",
                ));
            };
        let cel = match code
            .iter()
            .find(|c| str_at(c, &["engine"]) == Some("K8sNativeValidation"))
        {
            Some(c) => Some(cel_source(&c["source"]).map_err(|m| template_error(file, name, m))?),
            None => None,
        };
        let operations = strings(&target["operations"], "operations")?;
        if operations.len() > 1 && operations.iter().any(|o| o == "*") {
            return Err(template_error(
                file,
                name,
                "operations: \"*\" cannot be combined with other operations",
            ));
        }
        let parameters_schema = match value_at(
            doc,
            &["spec", "crd", "spec", "validation", "openAPIV3Schema"],
        ) {
            Value::Undefined | Value::Null => None,
            v => Some(v.clone()),
        };
        Ok(ConstraintTemplate {
            name: name.to_owned(),
            kind: kind.to_owned(),
            file: file.to_owned(),
            rego,
            libs,
            version,
            parameters_schema,
            operations,
            has_cel,
            cel,
        })
    }

    /// Whether the template has Rego code.
    pub fn has_rego(&self) -> bool {
        !self.rego.is_empty()
    }

    /// The template's Rego and libs as `(file name, source)` pairs, rewritten
    /// for OPA parity exactly as for admission.
    pub fn rego_modules(&self) -> Vec<(String, String)> {
        let v1 = self.version == RegoVersion::V1;
        let mut modules = vec![(
            format!("{}/template.rego", self.name),
            rewrite(&self.rego, v1),
        )];
        for (i, lib) in self.libs.iter().enumerate() {
            modules.push((format!("{}/lib_{i}.rego", self.name), rewrite(lib, v1)));
        }
        modules
    }

    /// A policy set holding this template's Rego, with the builtins
    /// templates get at admission, plus `extra` modules (e.g. unit tests
    /// written against the template's package: `regard verify --template`).
    pub fn policy_set_with(
        &self,
        extra: Vec<(String, String)>,
    ) -> Result<crate::policy::PolicySet, Error> {
        let mut sources = self.rego_modules();
        sources.extend(extra);
        crate::policy::PolicySet::from_sources_with(sources, self.version, register_go_sprintf)
    }

    /// Like [`ConstraintTemplate::policy_set_with`], loaded as
    /// [`crate::policy::PolicySet::load_tests`] loads policies: duplicate
    /// test definitions split apart, uncompilable files left out and listed.
    pub fn test_policy_set_with(
        &self,
        extra: Vec<(String, String)>,
    ) -> Result<crate::policy::PolicySet, Error> {
        let mut sources = self.rego_modules();
        sources.extend(extra);
        crate::policy::PolicySet::from_test_sources_with(sources, self.version, register_go_sprintf)
    }

    /// Compiles the template: OPA-parity rewrites, Gatekeeper's checks, and
    /// a prepared engine with `data` (`inventory` when given).
    pub(crate) fn compile(self, data: Option<&Value>) -> Result<CompiledTemplate, Error> {
        let err = |m: String| template_error(&self.file, &self.name, m);
        let schema = match &self.parameters_schema {
            Some(s) => Some(Arc::new(
                ParametersSchema::new(s)
                    .map_err(|e| err(format!("invalid openAPIV3Schema: {e}")))?,
            )),
            None => None,
        };
        let cel = match &self.cel {
            Some(source) => Some(Arc::new(
                Validator::compile(source, &CEL_BUILTINS, crate::cel::Dialect::Gatekeeper)
                    .map_err(|e| err(format!("invalid K8sNativeValidation code: {e}")))?,
            )),
            None => None,
        };
        let rego = if self.has_rego() {
            Some(self.compile_rego(data)?)
        } else {
            None
        };
        Ok(CompiledTemplate {
            meta: Arc::new(self),
            rego,
            cel,
            schema,
        })
    }

    fn compile_rego(&self, data: Option<&Value>) -> Result<RegoCode, Error> {
        let file = self.file.clone();
        let name = self.name.clone();
        let err = |m: String| template_error(&file, &name, m);
        let v1 = self.version == RegoVersion::V1;
        let sources: Vec<&str> = std::iter::once(self.rego.as_str())
            .chain(self.libs.iter().map(String::as_str))
            .collect();
        let mut engine = new_engine_for(self.version, &sources)?;
        register_go_sprintf(&mut engine)?;
        let mut access = DataAccess::default();

        let main_src = rewrite(&self.rego, v1);
        let main_mod = parse_module(&format!("{name}/template.rego"), &main_src, v1)
            .map_err(|e| err(format!("invalid rego: {e}")))?;
        if !main_mod
            .policy
            .iter()
            .any(|r| rule_name(r).as_deref() == Some("violation"))
        {
            return Err(err(
                "invalid rego: missing required rule: violation".to_owned()
            ));
        }
        access.check_module(&main_mod);
        let mut modules = vec![main_mod];
        let mut prepared = vec![(format!("{name}/template.rego"), main_src.clone())];
        let package = engine
            .add_policy(format!("{name}/template.rego"), main_src)
            .map_err(|e| err(format!("invalid rego: {e}")))?;

        for (i, lib) in self.libs.iter().enumerate() {
            let lib_name = format!("{name}/lib_{i}.rego");
            let src = rewrite(lib, v1);
            let module = parse_module(&lib_name, &src, v1)
                .map_err(|e| err(format!("invalid lib {i}: {e}")))?;
            let pkg = package_components(&module);
            if pkg.len() < 2 || pkg.first().map(String::as_str) != Some("lib") {
                return Err(err(format!(
                    "invalid lib {i}: package {} must be under package lib",
                    pkg.join(".")
                )));
            }
            access.check_module(&module);
            modules.push(module);
            prepared.push((lib_name.clone(), src.clone()));
            engine
                .add_policy(lib_name, src)
                .map_err(|e| err(format!("invalid lib {i}: {e}")))?;
        }
        if let Some(bad) = &access.disallowed {
            return Err(err(format!(
                "invalid rego: disallowed ref {bad}: templates may only read data.inventory and data.lib"
            )));
        }
        let mut rvm_data = Value::new_object();
        if access.inventory
            && let Some(d) = data
        {
            engine
                .add_data(d.clone())
                .map_err(|e| err(format!("inventory: {e}")))?;
            rvm_data = d.clone();
        }
        let rule = format!("{package}.violation");
        prepare(&mut engine).map_err(|e| {
            // OPA's compile error where regorus words it differently.
            let e = e.to_string();
            let text = crate::rego::messages::compile_error(&e).map_or(e, |c| c.to_string());
            err(format!("invalid rego: {text}"))
        })?;
        let program = Arc::new(rvm::RvmProgram::new(
            &modules,
            prepared,
            self.version,
            access.inventory.then(|| rvm_data.clone()),
        ));
        Ok(RegoCode {
            engine,
            rule,
            uses_inventory: access.inventory,
            program,
            data: rvm_data,
        })
    }
}

/// Runs regorus' one-time analysis now, so every clone starts prepared.
pub(crate) fn prepare(engine: &mut RegoEngine) -> anyhow::Result<()> {
    crate::guard::catch(|| engine.eval_query("data.__regard_prepare__".to_owned(), false))
        .map_err(|panic| anyhow::anyhow!("{panic}"))??;
    Ok(())
}

impl CompiledTemplate {
    /// The same template with a different `data.inventory` (only templates
    /// that read the inventory are re-prepared).
    pub(crate) fn with_inventory(&self, data: &Value) -> Result<CompiledTemplate, Error> {
        let Some(rego) = self.rego.as_ref().filter(|r| r.uses_inventory) else {
            return Ok(self.clone());
        };
        let mut r = rego.clone();
        r.engine.clear_data();
        let err = |m: String| template_error(&self.meta.file, &self.meta.name, m);
        r.engine
            .add_data(data.clone())
            .map_err(|e| err(format!("inventory: {e}")))?;
        prepare(&mut r.engine).map_err(|e| err(e.to_string()))?;
        r.data = data.clone();
        Ok(CompiledTemplate {
            rego: Some(r),
            ..self.clone()
        })
    }

    /// The engine a review uses: Gatekeeper registers its CEL driver before
    /// the Rego one, so the CEL code runs whenever the template has it and
    /// CEL is enabled. `None`: no engine can run the template.
    pub(crate) fn engine(&self, cel_enabled: bool) -> Option<Engine> {
        if cel_enabled && self.cel.is_some() {
            Some(Engine::Cel)
        } else if self.rego.is_some() {
            Some(Engine::Rego)
        } else {
            None
        }
    }
}

/// Reads a `K8sNativeValidation` source as Gatekeeper's schema does.
fn cel_source(source: &Value) -> Result<ValidatorSource, String> {
    if !matches!(source, Value::Object(_)) {
        return Err("K8sNativeValidation: could not recognize the type".to_owned());
    }
    let list = |key: &str| -> Result<Vec<Value>, String> {
        match &source[key] {
            Value::Undefined | Value::Null => Ok(Vec::new()),
            Value::Array(a) => Ok(a.iter().cloned().collect()),
            _ => Err(format!("K8sNativeValidation: {key} must be a list")),
        }
    };
    let text = |v: &Value, key: &str| str_at(v, &[key]).map(str::to_owned);
    let mut out = ValidatorSource::default();
    for (i, v) in list("variables")?.iter().enumerate() {
        let name = text(v, "name").unwrap_or_default();
        if name.starts_with("gatekeeper_internal_") || CEL_BUILTINS.contains(&name.as_str()) {
            return Err(format!(
                "invalid variable definition: variables[{i}]: {name:?} is reserved"
            ));
        }
        out.variables
            .push((name, text(v, "expression").unwrap_or_default()));
    }
    for (i, v) in list("matchCondition")?.iter().enumerate() {
        let name = text(v, "name").unwrap_or_default();
        if name.starts_with("gatekeeper_internal_") {
            return Err(format!(
                "invalid match condition: matchCondition[{i}]: {name:?} is reserved"
            ));
        }
        out.match_conditions
            .push((name, text(v, "expression").unwrap_or_default()));
    }
    for v in list("validations")? {
        out.validations.push((
            text(&v, "expression").unwrap_or_default(),
            text(&v, "message"),
            text(&v, "messageExpression"),
        ));
    }
    out.failure_policy = match str_at(source, &["failurePolicy"]) {
        None | Some("Fail") => FailurePolicy::Fail,
        Some("Ignore") => FailurePolicy::Ignore,
        Some(other) => {
            return Err(format!(
                "invalid failure policy: unrecognized failure policy: {other}"
            ));
        }
    };
    Ok(out)
}

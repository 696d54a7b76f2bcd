//! A compiled set of CEL validations evaluated as the API server's
//! validating admission policy plugin evaluates them.
//!
//! [`Validator::compile`] checks and compiles match conditions, variables,
//! validations and message expressions once. [`Validator::validate`] runs
//! them against an [`Activation`] (the request, converted once per review):
//! match conditions first (any `false` → no decision), then the variables in
//! order, then every validation; each validation that is not `true` gives a
//! [`Decision`] whose message is the message expression's result, else the
//! static message, else `failed expression: <expression>`, exactly as the
//! API server forms it. Evaluation errors become decisions too (under
//! `failurePolicy: Fail`) or are dropped (`Ignore`); a panic inside the CEL
//! crate is caught and reported the same way, so one constraint's expression
//! can never fail another's.
//!
//! `variables.<name>` is resolved without building a `variables` map: at
//! compile time each such selection is rewritten into an internal identifier
//! (`@var.<name>`, a name the CEL parser cannot produce) that the bindings
//! resolve directly, so built-in variables such as Gatekeeper's `anyObject`
//! borrow the request instead of copying it for every constraint.
//!
//! Each expression also has a lowered form ([`super::program`]), which runs
//! first unless the evaluator is the interpreter; the `cel` crate's
//! interpreter runs what that form leaves, and every expression that errs.
//!
//! Every expression runs under cel-go's per-expression cost limit, and the
//! validations (with the variables they read) share the budget of the
//! [`Dialect`], the match conditions the API server's match-condition budget
//! ([`super::cost`]); a budget that runs out ends the evaluation with one
//! decision in the API server's words, handled by the failure policy.

use std::collections::{BTreeSet, HashMap};

use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, ListExpr, LiteralValue};
use cel::common::types::{CelBool, CelNull, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, IdedExpr};
use regorus::Value;

use super::check::{self, Declarations, Type, located};
use super::cost::{self, BUDGET_EXHAUSTED, LIMIT_EXCEEDED};
use super::library::{PATH_SEPARATOR, PRESENCE_TEST};
use super::program::Program;
use super::{Dialect, value::to_val};
use crate::rvm::Evaluator;

/// Longest message a message expression may produce (the API server's
/// `MaxEvaluatedMessageExpressionSizeBytes`); longer ones fall back.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// The root names an expression may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `object`, `oldObject`, `request`, `namespaceObject`, `variables`.
    Admission,
    /// The same plus `params`.
    WithParams,
}

impl Scope {
    fn declares(self, name: &str) -> bool {
        matches!(
            name,
            "object" | "oldObject" | "request" | "namespaceObject" | "variables"
        ) || (self == Scope::WithParams && name == "params")
    }
}

/// What an expression was compiled from.
#[derive(Debug)]
pub(crate) struct Expression {
    /// The source text.
    pub source: String,
    /// The parsed expression, macros expanded.
    ast: IdedExpr,
    /// The `variables.<name>` it reads.
    reads: BTreeSet<String>,
    /// Whether it reads `params`.
    reads_params: bool,
    /// Its type, as far as it is known.
    ty: Type,
    /// The dialect it was compiled in (its environment).
    dialect: Dialect,
    /// Its static cost, charged before it runs (see [`cost::instrument`]).
    base_cost: u64,
    /// `ast` lowered for evaluation.
    program: Program,
}

/// The prefix of the identifiers `variables.<name>` is rewritten into.
const VARIABLE_PREFIX: &str = "@var.";

/// One `validations[]` entry.
#[derive(Debug)]
pub(crate) struct Validation {
    /// `expression`.
    pub expression: Expression,
    /// `message`.
    pub message: Option<String>,
    /// `messageExpression`.
    pub message_expression: Option<Expression>,
}

/// A named expression (`variables[]`, `matchConditions[]`).
#[derive(Debug)]
pub(crate) struct Named {
    /// `name`.
    pub name: String,
    /// `expression`.
    pub expression: Expression,
}

/// `failurePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FailurePolicy {
    /// Errors deny (the default).
    #[default]
    Fail,
    /// Errors are ignored.
    Ignore,
}

/// The source of a validator, as written in a template or policy.
#[derive(Clone, Debug, Default)]
pub(crate) struct ValidatorSource {
    /// `(name, expression)` of each match condition.
    pub match_conditions: Vec<(String, String)>,
    /// `(name, expression)` of each variable after the built-in ones.
    pub variables: Vec<(String, String)>,
    /// `(expression, message, messageExpression)` of each validation.
    pub validations: Vec<(String, Option<String>, Option<String>)>,
    /// `failurePolicy`.
    pub failure_policy: FailurePolicy,
    /// `(key, valueExpression)` of each audit annotation (ValidatingAdmissionPolicy).
    pub audit_annotations: Vec<(String, String)>,
}

/// A compile error: the field it concerns (`validations[2].messageExpression`)
/// and the CEL error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompileError {
    /// The field path.
    pub field: String,
    /// The message (`ERROR: <input>:1:5: ...`, or `must evaluate to bool`).
    pub message: String,
    /// Whether the expression does not parse or type-check, rather than
    /// having a result of the wrong type.
    pub compilation: bool,
}

impl CompileError {
    /// The API server's wording: `<field>: compilation failed: ERROR: ...`.
    pub(crate) fn api_server_message(&self) -> String {
        if self.compilation {
            format!("{}: compilation failed: {}", self.field, self.message)
        } else {
            self.to_string()
        }
    }
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The compiled validator.
#[derive(Debug)]
pub(crate) struct Validator {
    match_conditions: Vec<Named>,
    variables: Vec<Named>,
    validations: Vec<Validation>,
    /// `auditAnnotations[]`: the key and its value expression.
    audit_annotations: Vec<Named>,
    failure_policy: FailurePolicy,
    /// Whether `params` is visible outside variables, the environment and
    /// the cost budget.
    dialect: Dialect,
    /// Whether any expression reads `params`.
    reads_params: bool,
}

/// A deny decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The message, formed as the API server forms it.
    pub message: String,
    /// Index of the validation (`None` for match-condition and variable errors).
    pub expression_index: Option<usize>,
    /// Whether an evaluation error made it (such decisions carry no `reason`).
    pub is_error: bool,
}

/// What an audit annotation's value expression gave (annotations whose value
/// is null or blank, or that failed under `failurePolicy: Ignore`, give none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnnotationValue {
    /// The trimmed string to publish.
    Publish(String),
    /// An error the caller turns into a deny decision.
    Error(String),
}

/// Everything one evaluation gave: the deny decisions and the audit
/// annotations, `(key, value)` in declaration order.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Evaluation {
    /// The deny decisions.
    pub decisions: Vec<Decision>,
    /// The audit annotations.
    pub annotations: Vec<(String, AnnotationValue)>,
}

/// The request as CEL sees it, converted once per review.
#[derive(Debug)]
pub(crate) struct Activation {
    object: Box<dyn Val>,
    old_object: Box<dyn Val>,
    request: Box<dyn Val>,
    namespace_object: Box<dyn Val>,
}

impl Activation {
    /// `object`, `oldObject` (`null` when absent), `request`, `namespaceObject`.
    pub(crate) fn new(
        object: &Value,
        old_object: &Value,
        request: &Value,
        namespace_object: Option<&Value>,
    ) -> Activation {
        Activation {
            object: to_val(object),
            old_object: to_val(old_object),
            request: to_val(request),
            namespace_object: namespace_object.map_or_else(|| Box::new(CelNull) as _, to_val),
        }
    }
}

/// Values by variable name for one evaluation. A template has a handful of
/// variables, so a list beats a hash map (which cost 6 % of the library's
/// CEL reviews in SipHash alone). Inserting a name again replaces its value,
/// as a map does.
struct ByName<'a, T>(Vec<(&'a str, T)>);

impl<T> Default for ByName<'_, T> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

impl<'a, T> ByName<'a, T> {
    fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn insert(&mut self, name: &'a str, value: T) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    fn remove(&mut self, name: &str) -> Option<T> {
        let at = self.0.iter().position(|(n, _)| *n == name)?;
        Some(self.0.swap_remove(at).1)
    }
}

/// What expressions resolve their root names against.
pub(super) struct Bindings<'a> {
    activation: &'a Activation,
    params: Option<&'a dyn Val>,
    builtins: &'a [(&'a str, &'a dyn Val)],
    variables: &'a [(String, Box<dyn Val>)],
    /// Whether expressions run their lowered form ([`super::program`]) or
    /// only the crate's interpreter (`--evaluator interpreter`).
    lowered: bool,
}

/// A root name of an expression, resolved when it is compiled (see
/// [`super::program`]).
#[derive(Debug)]
pub(super) enum Root {
    Object,
    OldObject,
    Request,
    NamespaceObject,
    Params,
    /// `variables.<name>` (a built-in or a declared variable), by name.
    Variable(String),
}

impl Root {
    /// The root `name` spells, as [`Bindings`] resolves it.
    pub(super) fn of(name: &str) -> Option<Root> {
        Some(match name {
            "object" => Root::Object,
            "oldObject" => Root::OldObject,
            "request" => Root::Request,
            "namespaceObject" => Root::NamespaceObject,
            "params" => Root::Params,
            _ => Root::Variable(name.strip_prefix(VARIABLE_PREFIX)?.to_owned()),
        })
    }
}

impl<'a> Bindings<'a> {
    /// The value of `root`, if bound.
    pub(super) fn root(&self, root: &Root) -> Option<&'a dyn Val> {
        Some(match root {
            Root::Object => self.activation.object.as_ref(),
            Root::OldObject => self.activation.old_object.as_ref(),
            Root::Request => self.activation.request.as_ref(),
            Root::NamespaceObject => self.activation.namespace_object.as_ref(),
            Root::Params => self.params?,
            Root::Variable(var) => self.variable(var)?,
        })
    }

    /// `variables.<var>`: a built-in, else a declared variable.
    fn variable(&self, var: &str) -> Option<&'a dyn Val> {
        match self.builtins.iter().find(|(n, _)| *n == var) {
            Some((_, v)) => Some(*v),
            None => Some(self.variables.iter().find(|(n, _)| n == var)?.1.as_ref()),
        }
    }
}

impl VariableResolver for Bindings<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let v = match name {
            "object" => self.activation.object.as_ref(),
            "oldObject" => self.activation.old_object.as_ref(),
            "request" => self.activation.request.as_ref(),
            "namespaceObject" => self.activation.namespace_object.as_ref(),
            "params" => self.params?,
            _ => self.variable(name.strip_prefix(VARIABLE_PREFIX)?)?,
        };
        Some(CowVal::Borrowed(v))
    }
}

impl Activation {
    /// `object`, or `oldObject` when `object` is null (a DELETE): Gatekeeper's
    /// `variables.anyObject`.
    pub(crate) fn any_object(&self, operation: &str) -> &dyn Val {
        if operation == "DELETE" && self.object.downcast_ref::<CelNull>().is_some() {
            self.old_object.as_ref()
        } else {
            self.object.as_ref()
        }
    }
}

/// Checks the root names an expression reads and rewrites its
/// `variables.<name>` selections (comprehension variables are in scope where
/// the macro binds them, and shadow the root names).
struct Reads<'s> {
    source: &'s str,
    /// The variables declared before the expression.
    declared: &'s HashMap<String, Type>,
    info: cel::common::ast::SourceInfo,
    error: Option<String>,
    variables: BTreeSet<String>,
    params: bool,
}

impl Reads<'_> {
    fn error_at(&mut self, id: u64, message: String) {
        if self.error.is_none() {
            let offset = self.info.offset_for(id).map_or(0, |(start, _)| start);
            self.error = Some(located(self.source, offset, &message));
        }
    }

    fn walk(&mut self, e: &mut IdedExpr, bound: &mut Vec<String>, scope: Scope) {
        let id = e.id;
        match &mut e.expr {
            Expr::Ident(name) => {
                if name.starts_with('@') || bound.iter().any(|b| b == name) {
                    return;
                }
                if name == "variables" {
                    self.error_at(
                        id,
                        "variables can only be read one by one (variables.<name>)".to_owned(),
                    );
                } else if name == "authorizer" && !scope.declares(name) {
                    // The API server binds `authorizer` to its RBAC authorizer; there
                    // is nothing to ask outside it, so say that rather than "undeclared".
                    self.error_at(
                        id,
                        "authorizer is not available outside the API server (it asks the cluster's authorization, e.g. RBAC)".to_owned(),
                    );
                } else if !scope.declares(name) {
                    let m = format!("undeclared reference to '{name}' (in container '')");
                    self.error_at(id, m);
                } else if name == "params" {
                    self.params = true;
                }
            }
            Expr::Select(s) => {
                let is_variables = matches!(&s.operand.expr, Expr::Ident(root)
                    if root == "variables" && !bound.iter().any(|b| b == root));
                if is_variables {
                    if !self.declared.contains_key(&s.field) {
                        let m = format!("undefined field '{}' of variables", s.field);
                        self.error_at(id, m);
                    }
                    self.variables.insert(s.field.clone());
                    // `has(variables.x)`: declared variables are always present.
                    e.expr = if s.test {
                        Expr::Literal(LiteralValue::Boolean(CelBool::from(true)))
                    } else {
                        Expr::Ident(format!("{VARIABLE_PREFIX}{}", s.field))
                    };
                    return;
                }
                if !s.test {
                    self.walk(&mut s.operand, bound, scope);
                    return;
                }
                // `has(x.a.b.f)`: false, not an error, when a field on the
                // way is missing or `x` has no fields (see
                // `library::presence_test`). The plain selections under the
                // test become a path.
                let mut path = vec![s.field.clone()];
                let mut root = std::mem::take(s.operand.as_mut());
                loop {
                    let next = match &mut root.expr {
                        Expr::Select(inner)
                            if !inner.test
                                && !matches!(&inner.operand.expr, Expr::Ident(r)
                                    if r == "variables" && !bound.iter().any(|b| b == r)) =>
                        {
                            path.push(inner.field.clone());
                            std::mem::take(inner.operand.as_mut())
                        }
                        _ => break,
                    };
                    root = next;
                }
                path.reverse();
                self.walk(&mut root, bound, scope);
                let literal = |f: String| IdedExpr {
                    id: 0,
                    expr: Expr::Literal(LiteralValue::String(CelString::from(f))),
                };
                let path = if path.iter().any(|f| f.contains(PATH_SEPARATOR)) {
                    IdedExpr {
                        id: 0,
                        expr: Expr::List(ListExpr::new(path.into_iter().map(literal).collect())),
                    }
                } else {
                    literal(path.join(PATH_SEPARATOR))
                };
                e.expr = Expr::Call(CallExpr {
                    func_name: PRESENCE_TEST.to_owned(),
                    target: None,
                    args: vec![root, path],
                });
            }
            Expr::Call(c) => {
                if let Some(t) = &mut c.target {
                    // `sets.contains(a, b)`, `lists.range(n)`: `sets` names the
                    // function's namespace, not a variable.
                    let namespace = matches!(&t.expr, Expr::Ident(ns)
                        if !bound.iter().any(|b| b == ns)
                            && !scope.declares(ns)
                            && (check::is_namespaced_function(ns, &c.func_name)
                                || super::FUNCTION_NAMESPACES.contains(&ns.as_str())));
                    if !namespace {
                        self.walk(t, bound, scope);
                    }
                }
                for a in &mut c.args {
                    self.walk(a, bound, scope);
                }
            }
            Expr::Comprehension(c) => {
                self.walk(&mut c.iter_range, bound, scope);
                self.walk(&mut c.accu_init, bound, scope);
                let depth = bound.len();
                bound.push(c.accu_var.clone());
                bound.push(c.iter_var.clone());
                if let Some(v2) = &c.iter_var2 {
                    bound.push(v2.clone());
                }
                self.walk(&mut c.loop_cond, bound, scope);
                self.walk(&mut c.loop_step, bound, scope);
                bound.truncate(depth);
                bound.push(c.accu_var.clone());
                self.walk(&mut c.result, bound, scope);
                bound.truncate(depth);
            }
            Expr::List(l) => {
                for x in &mut l.elements {
                    self.walk(x, bound, scope);
                }
            }
            Expr::Map(m) => {
                for entry in &mut m.entries {
                    self.walk_entry(&mut entry.expr, bound, scope);
                }
            }
            Expr::Struct(s) => {
                for entry in &mut s.entries {
                    self.walk_entry(&mut entry.expr, bound, scope);
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn walk_entry(&mut self, entry: &mut EntryExpr, bound: &mut Vec<String>, scope: Scope) {
        match entry {
            EntryExpr::StructField(f) => self.walk(&mut f.value, bound, scope),
            EntryExpr::MapEntry(me) => {
                self.walk(&mut me.key, bound, scope);
                self.walk(&mut me.value, bound, scope);
            }
        }
    }
}

/// Compiles one expression: syntax, undeclared root names,
/// `variables.<name>` against the variables declared before it (`types`),
/// and the types ([`check`]).
fn compile(
    field: &str,
    source: &str,
    scope: Scope,
    types: &HashMap<String, Type>,
    dialect: Dialect,
) -> Result<Expression, CompileError> {
    let err = |message: String| CompileError {
        field: field.to_owned(),
        message,
        compilation: true,
    };
    let env = dialect.environment();
    let (mut ast, info) = crate::guard::catch(|| env.parser().parse_with_source_info(source))
        .map_err(|p| err(p.to_string()))?
        .map_err(|e| err(e.to_string()))?;
    let decls = Declarations {
        variables: types,
        lists: dialect == Dialect::ValidatingAdmissionPolicy,
    };
    let checked = check::check(&ast, &info, source, &decls);
    let mut reads = Reads {
        source,
        declared: types,
        info,
        error: None,
        variables: BTreeSet::new(),
        params: false,
    };
    reads.walk(&mut ast, &mut Vec::new(), scope);
    if let Some(m) = reads.error {
        return Err(err(m));
    }
    // Last, so the passes above see the expression as written.
    let base_cost = cost::instrument(&mut ast);
    let program = Program::compile(&ast);
    Ok(Expression {
        source: source.to_owned(),
        ast,
        reads: reads.variables,
        reads_params: reads.params,
        ty: checked.map_err(err)?,
        dialect,
        base_cost,
        program,
    })
}

/// `expression` when its type may be `want`; else the API server's
/// `must evaluate to <want>` (a `dyn` result is checked at evaluation).
fn returning(expression: Expression, field: &str, want: &Type) -> Result<Expression, CompileError> {
    if expression.ty.is_known_not(want) {
        return Err(CompileError {
            field: field.to_owned(),
            message: format!("must evaluate to {want}"),
            compilation: false,
        });
    }
    Ok(expression)
}

/// What the caller needs of a result that is not a bool.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Its type name (validations, match conditions).
    Type,
    /// The string (message expressions).
    String,
    /// The whole value (variables).
    Value,
}

/// The outcome of one expression.
enum Outcome {
    True,
    False,
    /// A result of another type: its type name.
    Other(String),
    /// A string result, when asked for.
    Str(String),
    /// The result, when asked for.
    Value(Box<dyn Val>),
    Error(String),
}

impl Expression {
    /// Runs the expression under cel-go's per-expression limit; returns the
    /// outcome and what it cost.
    fn evaluate(&self, bindings: &Bindings<'_>, keep: Keep) -> (Outcome, u64) {
        let (outcome, spent) = cost::metered(cost::PER_CALL_LIMIT, self.base_cost, || {
            self.evaluate_unmetered(bindings, keep)
        });
        if spent.exceeded {
            // Whatever error the interrupted evaluation surfaced (or a
            // result an `all()` reached by absorbing it), it was stopped.
            (Outcome::Error(LIMIT_EXCEEDED.to_owned()), spent.cost)
        } else {
            (outcome, spent.cost)
        }
    }

    fn evaluate_unmetered(&self, bindings: &Bindings<'_>, keep: Keep) -> Outcome {
        let env = self.dialect.environment();
        if bindings.lowered {
            // The compiled program first; where it stops, the crate's
            // interpreter runs the expression again from the same meter.
            let checkpoint = cost::checkpoint();
            let fast = crate::guard::catch(|| {
                let v = self.program.eval(bindings, env).ok()?;
                outcome(v.as_ref(), keep).ok()
            });
            if let Ok(Some(o)) = fast {
                return o;
            }
            #[cfg(test)]
            FALLBACKS.with(|c| c.set(c.get() + 1));
            cost::rewind(checkpoint);
        }
        let run = || {
            let mut ctx = Context::with_env(Arc::clone(env));
            ctx.set_variable_resolver(bindings);
            let v = cel::Value::resolve_val(&self.ast, &ctx)?;
            outcome(v.as_ref(), keep)
        };
        match crate::guard::catch(run) {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => Outcome::Error(cel_error(&e)),
            Err(panic) => Outcome::Error(panic.to_string()),
        }
    }

    /// `expression '<source>' resulted in error: <err>`, the API server's wording.
    fn error(&self, err: &str) -> String {
        format!("expression '{}' resulted in error: {err}", self.source)
    }
}

/// The start of the API server's error for a variable that failed.
const COMPOSITED: &str = "composited variable ";

/// `outcome`, with the error of reading a failed (so unbound) variable
/// replaced by that variable's own error, as the API server reports it.
fn with_variable_errors(outcome: Outcome, failed: &ByName<'_, String>) -> Outcome {
    match outcome {
        Outcome::Error(e) => {
            let read = e
                .strip_prefix("undeclared reference to '")
                .and_then(|rest| rest.strip_suffix('\''))
                .and_then(|name| name.strip_prefix(VARIABLE_PREFIX))
                .and_then(|name| failed.get(name));
            Outcome::Error(read.cloned().unwrap_or(e))
        }
        other => other,
    }
}

/// What `keep` asks of the value `v` of an expression.
fn outcome(v: &dyn Val, keep: Keep) -> Result<Outcome, cel::ExecutionError> {
    if keep == Keep::Value {
        // The result borrows from the bindings: copy it.
        if let Some(owned) = super::value::to_static(v) {
            return Ok(Outcome::Value(owned));
        }
        let owned = cel::Value::try_from(v)?;
        return Ok(Outcome::Value(Box::<dyn Val>::try_from(owned)?));
    }
    Ok(match v.downcast_ref::<CelBool>().map(|b| *b.inner()) {
        Some(true) => Outcome::True,
        Some(false) => Outcome::False,
        None => match v.downcast_ref::<CelString<'_>>() {
            Some(s) if keep == Keep::String => Outcome::Str(s.inner().to_owned()),
            _ => Outcome::Other(v.get_type().name().to_owned()),
        },
    })
}

#[cfg(test)]
thread_local! {
    /// Evaluations the lowered form left to the crate.
    static FALLBACKS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many evaluations on this thread the lowered form left to the crate's
/// interpreter (tests only).
#[cfg(test)]
pub(crate) fn fallbacks() -> u64 {
    FALLBACKS.with(std::cell::Cell::get)
}

impl Validator {
    /// Compiles `source`. `builtins` names the variables the caller computes
    /// before the user's (`anyObject`, `params` in Gatekeeper); `params` is
    /// visible to variables always, and to the rest when `params_everywhere`.
    pub(crate) fn compile(
        source: &ValidatorSource,
        builtins: &[&str],
        dialect: Dialect,
    ) -> Result<Validator, CompileError> {
        let rest = if dialect.params_everywhere() {
            Scope::WithParams
        } else {
            Scope::Admission
        };
        // Built-in variables are computed by the caller: their type is unknown.
        let mut declared: HashMap<String, Type> = builtins
            .iter()
            .map(|b| ((*b).to_owned(), Type::Dyn))
            .collect();
        let mut variables = Vec::new();
        for (i, (name, expr)) in source.variables.iter().enumerate() {
            let field = format!("variables[{i}].expression");
            let expression = compile(&field, expr, Scope::WithParams, &declared, dialect)?;
            declared.insert(name.clone(), expression.ty.clone());
            variables.push(Named {
                name: name.clone(),
                expression,
            });
        }
        let match_conditions = source
            .match_conditions
            .iter()
            .enumerate()
            .map(|(i, (name, expr))| {
                let field = format!("matchConditions[{i}].expression");
                Ok(Named {
                    name: name.clone(),
                    expression: returning(
                        compile(&field, expr, rest, &declared, dialect)?,
                        &field,
                        &Type::Bool,
                    )?,
                })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        let validations = source
            .validations
            .iter()
            .enumerate()
            .map(|(i, (expr, message, message_expr))| {
                let field = format!("validations[{i}].expression");
                let expression = returning(
                    compile(&field, expr, rest, &declared, dialect)?,
                    &field,
                    &Type::Bool,
                )?;
                let message_expression = match message_expr {
                    Some(m) if !m.trim().is_empty() => {
                        let field = format!("validations[{i}].messageExpression");
                        Some(returning(
                            compile(&field, m, rest, &declared, dialect)?,
                            &field,
                            &Type::String,
                        )?)
                    }
                    _ => None,
                };
                Ok(Validation {
                    expression,
                    message: message.clone(),
                    message_expression,
                })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        // The API server compiles them in the validations' environment.
        let audit_annotations = source
            .audit_annotations
            .iter()
            .enumerate()
            .map(|(i, (key, expr))| {
                let field = format!("auditAnnotations[{i}].valueExpression");
                let expression = compile(&field, expr, rest, &declared, dialect)?;
                // A string or null, as the API server's accessor declares.
                if expression.ty.is_known_not(&Type::String)
                    && expression.ty.is_known_not(&Type::Null)
                {
                    return Err(CompileError {
                        field,
                        message: "must evaluate to one of [string null_type]".to_owned(),
                        compilation: false,
                    });
                }
                Ok(Named {
                    name: key.clone(),
                    expression,
                })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        let reads_params =
            variables
                .iter()
                .chain(&match_conditions)
                .chain(&audit_annotations)
                .map(|n| &n.expression)
                .chain(validations.iter().flat_map(|v| {
                    std::iter::once(&v.expression).chain(v.message_expression.as_ref())
                }))
                .any(|e| e.reads_params);
        Ok(Validator {
            reads_params,
            match_conditions,
            variables,
            validations,
            audit_annotations,
            failure_policy: source.failure_policy,
            dialect,
        })
    }

    /// Whether an expression reads `params` (the caller may then skip
    /// converting it).
    pub(crate) fn reads_params(&self) -> bool {
        self.reads_params
    }

    /// Evaluates every validation. `params` is the `params` binding;
    /// `builtins` the values of the built-in variables named at
    /// [`Validator::compile`]. Returns the deny decisions.
    pub(crate) fn validate(
        &self,
        activation: &Activation,
        params: &dyn Val,
        builtins: &[(&str, &dyn Val)],
        evaluator: Evaluator,
    ) -> Vec<Decision> {
        self.evaluate(activation, params, builtins, evaluator)
            .decisions
    }

    /// [`Validator::validate`], and after the validations the audit
    /// annotations (not when a match condition is false or fails), as the
    /// API server's validator runs them.
    pub(crate) fn evaluate(
        &self,
        activation: &Activation,
        params: &dyn Val,
        builtins: &[(&str, &dyn Val)],
        evaluator: Evaluator,
    ) -> Evaluation {
        let lowered = evaluator == Evaluator::Rvm;
        let fail = |message: String, expression_index: Option<usize>| match self.failure_policy {
            FailurePolicy::Fail => vec![Decision {
                message,
                expression_index,
                is_error: true,
            }],
            FailurePolicy::Ignore => Vec::new(),
        };
        // Variables are lazy in the API server: one that fails only matters
        // to the expressions that read it, where reading it is an error
        // like any other (`||` and `&&` absorb it; otherwise the expression
        // fails with the variable's error). regard evaluates them up front,
        // leaves a failed one unbound (reading it is then an error the
        // expression may absorb, reported as the variable's), and charges
        // each one's cost to the budget of the first expression that reads
        // it (as the API server charges a lazy variable where it is first
        // used).
        let mut failed: ByName<'_, String> = ByName::default();
        let mut uncharged: ByName<'_, u64> = ByName::default();
        let mut values: Vec<(String, Box<dyn Val>)> = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let bindings = Bindings {
                activation,
                params: Some(params),
                builtins,
                variables: &values,
                lowered,
            };
            let (outcome, cost) = v.expression.evaluate(&bindings, Keep::Value);
            let outcome = with_variable_errors(outcome, &failed);
            uncharged.insert(&v.name, cost);
            let value: Box<dyn Val> = match outcome {
                Outcome::Value(b) => b,
                Outcome::True => Box::new(CelBool::from(true)),
                Outcome::False => Box::new(CelBool::from(false)),
                Outcome::Other(t) | Outcome::Str(t) => {
                    let e = format!(
                        "{COMPOSITED}\"{}\" fails to evaluate: unexpected {t}",
                        v.name
                    );
                    failed.insert(&v.name, e);
                    continue;
                }
                Outcome::Error(e) if e.starts_with(COMPOSITED) => {
                    // A failed variable it read: that variable's error.
                    failed.insert(&v.name, e);
                    continue;
                }
                Outcome::Error(e) => {
                    let e = format!("{COMPOSITED}\"{}\" fails to evaluate: {e}", v.name);
                    failed.insert(&v.name, e);
                    continue;
                }
            };
            values.push((v.name.clone(), value));
        }
        let bindings = Bindings {
            activation,
            params: self.dialect.params_everywhere().then_some(params),
            builtins,
            variables: &values,
            lowered,
        };
        let run = |e: &Expression, keep: Keep| -> (Outcome, u64) {
            let (outcome, cost) = e.evaluate(&bindings, keep);
            (with_variable_errors(outcome, &failed), cost)
        };
        // An expression's cost with that of the variables it reads first.
        let mut charged = |e: &Expression, cost: u64| -> u64 {
            let mut total = cost;
            let mut reads: Vec<&str> = e.reads.iter().map(String::as_str).collect();
            while let Some(name) = reads.pop() {
                if let Some(c) = uncharged.remove(name) {
                    total = total.saturating_add(c);
                    if let Some(v) = self.variables.iter().find(|v| v.name == name) {
                        reads.extend(v.expression.reads.iter().map(String::as_str));
                    }
                }
            }
            total
        };
        // An evaluation that ends with one failure and no annotations.
        let stop = |message: String| Evaluation {
            decisions: fail(message, None),
            annotations: Vec::new(),
        };
        let mut errors = Vec::new();
        let mut budget = cost::MATCH_CONDITIONS_BUDGET;
        for c in &self.match_conditions {
            let (outcome, cost) = run(&c.expression, Keep::Type);
            match budget.checked_sub(charged(&c.expression, cost)) {
                Some(left) => budget = left,
                None => return stop(BUDGET_EXHAUSTED.to_owned()),
            }
            match outcome {
                Outcome::False => return Evaluation::default(),
                Outcome::True => {}
                Outcome::Other(t) | Outcome::Str(t) => errors.push(
                    c.expression
                        .error(&format!("must evaluate to bool but got {t}")),
                ),
                Outcome::Value(_) => {}
                Outcome::Error(e) => errors.push(c.expression.error(&e)),
            }
        }
        if !errors.is_empty() {
            let message = if let [one] = errors.as_slice() {
                one.clone()
            } else {
                format!("[{}]", errors.join(", "))
            };
            return stop(message);
        }
        // Message expressions run under the per-expression limit only; one
        // that exceeds it falls back to the static message like any error.
        let message_run = |e: &Expression, keep: Keep| run(e, keep).0;
        let mut budget = self.dialect.validation_budget();
        let mut decisions = Vec::new();
        for (i, v) in self.validations.iter().enumerate() {
            let (outcome, cost) = run(&v.expression, Keep::Type);
            // As the API server: the budget is checked before the result, and
            // when it runs out no decision but that one is returned.
            match budget.checked_sub(charged(&v.expression, cost)) {
                Some(left) => budget = left,
                None => return stop(BUDGET_EXHAUSTED.to_owned()),
            }
            match outcome {
                Outcome::True => {}
                Outcome::False | Outcome::Other(_) | Outcome::Str(_) | Outcome::Value(_) => {
                    decisions.push(Decision {
                        message: self.message(v, &message_run),
                        expression_index: Some(i),
                        is_error: false,
                    })
                }
                Outcome::Error(e) => decisions.extend(fail(v.expression.error(&e), Some(i))),
            }
        }
        let mut annotations = Vec::new();
        for a in &self.audit_annotations {
            let unsupported = |t: &str| {
                AnnotationValue::Error(format!(
                    "valueExpression '{}' resulted in unsupported return type: {t}. Return type must be either string or null.",
                    a.expression.source
                ))
            };
            // Audit annotations share the validations' budget, as in the API server.
            let (outcome, cost) = run(&a.expression, Keep::String);
            match budget.checked_sub(charged(&a.expression, cost)) {
                Some(left) => budget = left,
                None => return stop(BUDGET_EXHAUSTED.to_owned()),
            }
            let value = match outcome {
                Outcome::Str(s) if s.trim().is_empty() => continue,
                Outcome::Str(s) => AnnotationValue::Publish(s.trim().to_owned()),
                Outcome::Other(t) if t == "null_type" => continue,
                Outcome::Other(t) => unsupported(&t),
                Outcome::True | Outcome::False => unsupported("bool"),
                Outcome::Value(_) => unsupported("dyn"),
                // Unlike a wrong type, an error obeys the failure policy.
                Outcome::Error(e) => match self.failure_policy {
                    FailurePolicy::Fail => AnnotationValue::Error(a.expression.error(&e)),
                    FailurePolicy::Ignore => continue,
                },
            };
            annotations.push((a.name.clone(), value));
        }
        Evaluation {
            decisions,
            annotations,
        }
    }

    fn message(&self, v: &Validation, run: &dyn Fn(&Expression, Keep) -> Outcome) -> String {
        if let Some(m) = &v.message_expression
            && let Outcome::Str(s) = run(m, Keep::String)
        {
            let s = s.trim();
            if !s.is_empty() && s.len() <= MAX_MESSAGE_BYTES && !s.contains('\n') {
                return s.to_owned();
            }
        }
        match v.message.as_deref().map(str::trim) {
            Some(m) if !m.is_empty() => m.to_owned(),
            _ => format!("failed expression: {}", v.expression.source.trim()),
        }
    }
}

/// An evaluation error as text, without the crate's debug formatting of values.
fn cel_error(e: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    let d = sorted_debug;
    // The crate's own wording, with values printed by `sorted_debug`.
    match e {
        E::NoSuchKey(k) => format!("no such key: {k}"),
        E::UndeclaredReference(n) => format!("undeclared reference to '{n}'"),
        E::UnsupportedTargetType { target } => format!("Invalid argument type: {}", d(target)),
        E::NotSupportedAsMethod { method, target } => {
            format!("Method '{method}' not supported on type '{}'", d(target))
        }
        E::UnsupportedKeyType(v) => format!("Unable to use value '{}' as a key", d(v)),
        E::ValuesNotComparable(a, b) => format!("{} can not be compared to {}", d(a), d(b)),
        E::UnsupportedBinaryOperator(op, a, b) => {
            format!("Unsupported binary operator '{op}': {}, {}", d(a), d(b))
        }
        E::UnsupportedIndex(a, b) => format!("Cannot use value {} to index {}", d(a), d(b)),
        E::DivisionByZero(v) => format!("Division by zero of {}", d(v)),
        E::RemainderByZero(v) => format!("Remainder by zero of {}", d(v)),
        E::Overflow(op, a, b) => {
            format!("Overflow from binary operator '{op}': {}, {}", d(a), d(b))
        }
        E::IndexOutOfBounds(v) => format!("Index out of bounds: {}", d(v)),
        E::DuplicateKey(v) => format!("Failed with repeated key: {}", d(v)),
        other => other.to_string(),
    }
}

/// `{v:?}`, with every map's entries in key order: the crate's maps are
/// hash maps with a random seed each, so their own `Debug` order changes
/// from one run to the next, and with it the error texts that print them.
fn sorted_debug(v: &cel::Value) -> String {
    match v {
        cel::Value::List(items) => {
            let items: Vec<String> = items.iter().map(sorted_debug).collect();
            format!("List([{}])", items.join(", "))
        }
        cel::Value::Map(m) => {
            let mut entries: Vec<_> = m.map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k:?}: {}", sorted_debug(v)))
                .collect();
            format!("Map(Map {{ map: {{{}}} }})", entries.join(", "))
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    fn source(validations: &[(&str, Option<&str>, Option<&str>)]) -> ValidatorSource {
        ValidatorSource {
            validations: validations
                .iter()
                .map(|(e, m, me)| ((*e).to_owned(), m.map(str::to_owned), me.map(str::to_owned)))
                .collect(),
            ..ValidatorSource::default()
        }
    }

    fn activation(object: &str) -> Activation {
        Activation::new(
            &v(object),
            &Value::Null,
            &v(r#"{"operation": "CREATE"}"#),
            None,
        )
    }

    fn messages(validator: &Validator, object: &str) -> Vec<String> {
        let params = to_val(&v(r#"{"limit": 2}"#));
        let builtins = [("params", params.as_ref())];
        validator
            .validate(&activation(object), &CelNull, &builtins, Evaluator::Rvm)
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn reading_a_failed_variable_is_an_error_the_reader_may_absorb() {
        // kubescape's C-0013 shape: the Pod's securityContext is absent, and
        // the container's own settings decide.
        let src = ValidatorSource {
            variables: vec![("psc".to_owned(), "object.spec.securityContext".to_owned())],
            validations: vec![
                (
                    "variables.psc.runAsNonRoot == true || object.spec.user != 0".to_owned(),
                    None,
                    None,
                ),
                ("variables.psc.runAsNonRoot == true".to_owned(), None, None),
            ],
            ..ValidatorSource::default()
        };
        let validator = Validator::compile(&src, &[], Dialect::ValidatingAdmissionPolicy).unwrap();
        // The first absorbs the error with `||`; the second fails with the
        // variable's own error.
        assert_eq!(
            messages(&validator, r#"{"spec": {"user": 5}}"#),
            vec![
                "expression 'variables.psc.runAsNonRoot == true' resulted in error: \
                 composited variable \"psc\" fails to evaluate: no such key: securityContext"
                    .to_owned()
            ]
        );
    }

    #[test]
    fn errors_print_maps_in_key_order() {
        let src = source(&[("object.spec + [] == []", None, None)]);
        let validator = Validator::compile(&src, &[], Dialect::Gatekeeper).unwrap();
        let object = r#"{"spec": {"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": null}}}"#;
        let want = "expression 'object.spec + [] == []' resulted in error: \
            Unsupported binary operator 'add': Map(Map { map: {String(\"a\"): \
            Map(Map { map: {String(\"c\"): Null, String(\"z\"): List([Int(1), \
            Map(Map { map: {String(\"x\"): Int(3), String(\"y\"): Int(2)} })])} }), \
            String(\"b\"): Int(1)} }), List([])";
        // Each run of the crate's maps has its own hash seed.
        for _ in 0..20 {
            assert_eq!(messages(&validator, object), vec![want.to_owned()]);
        }
    }

    #[test]
    fn messages_are_formed_as_the_api_server_forms_them() {
        let src = source(&[
            (
                "object.n < variables.params.limit",
                None,
                Some("'n is ' + string(object.n)"),
            ),
            ("object.n < 1", Some("  static message  "), None),
            (" object.n < 0 ", None, None),
            ("object.n < 1", Some("fallback"), Some("'two\\nlines'")),
            ("object.n < 1", Some("fallback"), Some("object.missing")),
            ("object.n < 1", Some("fallback"), Some("'  '")),
            ("object.n > 0", None, None),
        ]);
        let validator = Validator::compile(&src, &["params"], Dialect::Gatekeeper).unwrap();
        assert_eq!(
            messages(&validator, r#"{"n": 3}"#),
            [
                "n is 3",
                "static message",
                "failed expression: object.n < 0",
                "fallback",
                "fallback",
                "fallback",
            ]
        );
        assert_eq!(messages(&validator, r#"{"n": 1}"#).len(), 5);
    }

    #[test]
    fn errors_follow_the_failure_policy() {
        let mut src = source(&[("object.missing == 1", None, None), ("true", None, None)]);
        let validator = Validator::compile(&src, &[], Dialect::Gatekeeper).unwrap();
        assert_eq!(
            messages(&validator, "{}"),
            ["expression 'object.missing == 1' resulted in error: no such key: missing"]
        );
        src.failure_policy = FailurePolicy::Ignore;
        let ignoring = Validator::compile(&src, &[], Dialect::Gatekeeper).unwrap();
        assert_eq!(messages(&ignoring, "{}"), Vec::<String>::new());
    }

    #[test]
    fn variables_are_lazy_about_errors() {
        let mut src = source(&[
            ("variables.bad == 1", None, None),
            ("variables.good == 2", None, None),
            ("variables.double == 1", None, None),
        ]);
        src.variables = vec![
            ("bad".to_owned(), "object.missing".to_owned()),
            ("good".to_owned(), "object.n * 2".to_owned()),
            (
                "double".to_owned(),
                "variables.good + variables.good".to_owned(),
            ),
        ];
        let validator = Validator::compile(&src, &[], Dialect::Gatekeeper).unwrap();
        assert_eq!(
            messages(&validator, r#"{"n": 1}"#),
            [
                "expression 'variables.bad == 1' resulted in error: composited variable \"bad\" fails to evaluate: no such key: missing",
                "failed expression: variables.double == 1",
            ]
        );
    }

    #[test]
    fn match_conditions_gate_the_validations() {
        let mut src = source(&[("false", Some("denied"), None)]);
        src.match_conditions = vec![("is-pod".to_owned(), "object.kind == 'Pod'".to_owned())];
        let validator = Validator::compile(&src, &[], Dialect::Gatekeeper).unwrap();
        assert_eq!(messages(&validator, r#"{"kind": "Pod"}"#), ["denied"]);
        assert_eq!(
            messages(&validator, r#"{"kind": "Service"}"#),
            Vec::<String>::new()
        );
        assert_eq!(
            messages(&validator, "{}"),
            ["expression 'object.kind == 'Pod'' resulted in error: no such key: kind"]
        );
    }

    #[test]
    fn presence_tests_are_false_on_missing_paths_and_non_maps() {
        let src = source(&[
            ("!has(object.a.b.c)", Some("a.b.c present"), None),
            ("!has(variables.params.x)", Some("params.x present"), None),
            ("has(variables.params)", Some("params absent"), None),
        ]);
        let validator = Validator::compile(&src, &["params"], Dialect::Gatekeeper).unwrap();
        let run = |object: &str, params: &str| -> Vec<String> {
            let p = to_val(&v(params));
            validator
                .validate(
                    &activation(object),
                    &CelNull,
                    &[("params", p.as_ref())],
                    Evaluator::Rvm,
                )
                .into_iter()
                .map(|d| d.message)
                .collect()
        };
        assert_eq!(run("{}", "null"), Vec::<String>::new());
        assert_eq!(run(r#"{"a": 1}"#, "null"), Vec::<String>::new());
        assert_eq!(
            run(r#"{"a": {"b": {"c": 0}}}"#, r#"{"x": 1}"#),
            ["a.b.c present", "params.x present"]
        );
    }

    #[test]
    fn compile_errors_name_the_field_and_position() {
        let err = |src: ValidatorSource| {
            Validator::compile(&src, &["params"], Dialect::Gatekeeper)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(source(&[("true", None, None), ("object.x ==", None, None)]))
                .lines()
                .next(),
            Some(
                "validations[1].expression: ERROR: <input>:1:12: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"
            )
        );
        assert_eq!(
            err(source(&[("true", None, Some("'x' + params.y"))])),
            "validations[0].messageExpression: ERROR: <input>:1:7: undeclared reference to 'params' (in container '')\n | 'x' + params.y\n | ......^"
        );
        assert_eq!(
            err(source(&[(
                "object.items.all(i, i > variables.nope)",
                None,
                None
            )])),
            "validations[0].expression: ERROR: <input>:1:34: undefined field 'nope' of variables\n | object.items.all(i, i > variables.nope)\n | .................................^"
        );
        // Comprehension variables are declared inside the macro only.
        assert_eq!(
            err(source(&[(
                "object.items.all(i, i > 0) && i > 0",
                None,
                None
            )])),
            "validations[0].expression: ERROR: <input>:1:31: undeclared reference to 'i' (in container '')\n | object.items.all(i, i > 0) && i > 0\n | ..............................^"
        );
        assert_eq!(
            err(source(&[(
                "authorizer.group('apps').resource('deployments').check('create').allowed()",
                None,
                None
            )])),
            "validations[0].expression: ERROR: <input>:1:1: authorizer is not available outside the API server (it asks the cluster's authorization, e.g. RBAC)\n | authorizer.group('apps').resource('deployments').check('create').allowed()\n | ^"
        );
    }

    #[test]
    fn type_errors_name_the_field_and_position() {
        let err = |src: ValidatorSource| {
            Validator::compile(&src, &["params"], Dialect::Gatekeeper).unwrap_err()
        };
        let e = err(source(&[
            ("true", None, None),
            ("object.n + 'a' > 1", None, None),
        ]));
        assert_eq!(
            e.to_string(),
            "validations[1].expression: ERROR: <input>:1:16: found no matching overload for '_>_' applied to '(string, int)'\n | object.n + 'a' > 1\n | ...............^"
        );
        assert_eq!(
            e.api_server_message(),
            "validations[1].expression: compilation failed: ERROR: <input>:1:16: found no matching overload for '_>_' applied to '(string, int)'\n | object.n + 'a' > 1\n | ...............^"
        );
        // The result types the API server requires.
        let e = err(source(&[("size(object.items)", None, None)]));
        assert_eq!(
            e.to_string(),
            "validations[0].expression: must evaluate to bool"
        );
        assert_eq!(e.api_server_message(), e.to_string());
        assert_eq!(
            err(source(&[("true", None, Some("size(object.items)"))])).to_string(),
            "validations[0].messageExpression: must evaluate to string"
        );
        let mut src = source(&[("true", None, None)]);
        src.match_conditions = vec![("c".to_owned(), "'yes'".to_owned())];
        assert_eq!(
            err(src).to_string(),
            "matchConditions[0].expression: must evaluate to bool"
        );
        let mut src = source(&[("true", None, None)]);
        src.audit_annotations = vec![("k".to_owned(), "size(object.items)".to_owned())];
        assert_eq!(
            err(src).to_string(),
            "auditAnnotations[0].valueExpression: must evaluate to one of [string null_type]"
        );
        for fine in ["object.name", "null", "'x'"] {
            let mut src = source(&[("true", None, None)]);
            src.audit_annotations = vec![("k".to_owned(), fine.to_owned())];
            assert!(
                Validator::compile(&src, &["params"], Dialect::Gatekeeper).is_ok(),
                "{fine}"
            );
        }
        // A variable has its expression's type; later ones build on it.
        let mut src = source(&[("variables.names.all(n, n.startsWith(1))", None, None)]);
        src.variables = vec![
            ("name".to_owned(), "request.name".to_owned()),
            ("names".to_owned(), "[variables.name, 'b']".to_owned()),
        ];
        assert_eq!(
            err(src).to_string(),
            "validations[0].expression: ERROR: <input>:1:36: found no matching overload for 'startsWith' applied to 'string.(int)'\n | variables.names.all(n, n.startsWith(1))\n | ...................................^"
        );
        let mut src = source(&[("true", None, None)]);
        src.variables = vec![("v".to_owned(), "request.uid".to_owned())];
        assert_eq!(
            err(src).to_string(),
            "variables[0].expression: ERROR: <input>:1:8: undefined field 'uid'\n | request.uid\n | .......^"
        );
        // `dyn` passes: the object has no schema here.
        let mut ok = source(&[
            ("variables.x", None, Some("variables.x")),
            (
                "object.spec.replicas > 1",
                None,
                Some("'n: ' + string(object.spec.replicas)"),
            ),
        ]);
        ok.variables = vec![("x".to_owned(), "object.spec.flag".to_owned())];
        ok.match_conditions = vec![("c".to_owned(), "variables.params.enabled".to_owned())];
        // Namespaced functions are no variables.
        ok.validations.push((
            "sets.contains(['a'], ['a']) && optional.none().orValue(true) && ip.isCanonical('::1')"
                .to_owned(),
            None,
            Some("strings.quote('x')".to_owned()),
        ));
        assert!(Validator::compile(&ok, &["params"], Dialect::Gatekeeper).is_ok());
    }

    /// An object with `items`: `n` integers.
    fn items(n: usize) -> String {
        let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        format!(r#"{{"items": [{}]}}"#, items.join(","))
    }

    fn run_dialect(src: &ValidatorSource, dialect: Dialect, object: &str) -> Vec<String> {
        let validator = Validator::compile(src, &[], dialect).unwrap();
        validator
            .validate(&activation(object), &CelNull, &[], Evaluator::Rvm)
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    /// Three nested loops over 3,000 items: 2.7e10 steps unbounded.
    const RUNAWAY: &str =
        "object.items.all(a, object.items.all(b, object.items.all(c, a + b + c >= 0)))";

    #[test]
    fn an_expression_past_the_per_call_limit_fails() {
        let object = items(3000);
        let src = source(&[(RUNAWAY, None, None), ("object.items[0] == 1", None, None)]);
        // The API server: a runtime error of that expression; the others run.
        assert_eq!(
            run_dialect(&src, Dialect::ValidatingAdmissionPolicy, &object),
            [
                format!(
                    "expression '{RUNAWAY}' resulted in error: operation cancelled: actual cost limit exceeded"
                ),
                "failed expression: object.items[0] == 1".to_owned(),
            ]
        );
        // Gatekeeper: the limit is the whole constraint's budget, so the
        // budget error comes first and ends the evaluation.
        assert_eq!(
            run_dialect(&src, Dialect::Gatekeeper, &object),
            [BUDGET_EXHAUSTED]
        );
        let mut ignoring = src;
        ignoring.failure_policy = FailurePolicy::Ignore;
        assert_eq!(
            run_dialect(&ignoring, Dialect::Gatekeeper, &object),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_budget_is_shared_by_the_validations_and_the_variables_they_read() {
        // Each validation costs about 546,000 (300 × 300 × 6 inner steps
        // plus 300 outer ones), under the per-call limit.
        let object = items(300);
        let pair = "object.items.all(a, object.items.all(b, true))";
        let one = source(&[(pair, Some("one"), None), ("false", Some("after"), None)]);
        assert_eq!(run_dialect(&one, Dialect::Gatekeeper, &object), ["after"]);
        // Two exceed Gatekeeper's 1,000,000 for the constraint.
        let two = source(&[
            (pair, None, None),
            (pair, None, None),
            ("false", None, None),
        ]);
        assert_eq!(
            run_dialect(&two, Dialect::Gatekeeper, &object),
            [BUDGET_EXHAUSTED]
        );
        // The API server's 10,000,000: 18 fit, the 19th does not.
        let many = |n: usize| source(&vec![(pair, None, None); n]);
        assert_eq!(
            run_dialect(&many(18), Dialect::ValidatingAdmissionPolicy, &object),
            Vec::<String>::new()
        );
        assert_eq!(
            run_dialect(&many(19), Dialect::ValidatingAdmissionPolicy, &object),
            [BUDGET_EXHAUSTED]
        );
        // A variable is charged once, to the first validation reading it.
        let mut shared = source(&[("variables.v", None, None), ("variables.v", None, None)]);
        shared.variables = vec![("v".to_owned(), pair.to_owned())];
        assert_eq!(
            run_dialect(&shared, Dialect::Gatekeeper, &object),
            Vec::<String>::new()
        );
        shared.validations.push((pair.to_owned(), None, None));
        assert_eq!(
            run_dialect(&shared, Dialect::Gatekeeper, &object),
            [BUDGET_EXHAUSTED]
        );
    }

    #[test]
    fn match_conditions_have_their_own_budget() {
        let object = items(300);
        let pair = "object.items.all(a, object.items.all(b, true))";
        // 4 × 546,000 fit in 2,500,000; a fifth does not.
        let mut src = source(&[("false", Some("denied"), None)]);
        src.match_conditions = vec![("m".to_owned(), pair.to_owned()); 4];
        assert_eq!(run_dialect(&src, Dialect::Gatekeeper, &object), ["denied"]);
        src.match_conditions.push(("m".to_owned(), pair.to_owned()));
        assert_eq!(
            run_dialect(&src, Dialect::Gatekeeper, &object),
            [BUDGET_EXHAUSTED]
        );
    }

    #[test]
    fn the_list_extensions_are_in_the_admission_policy_environment_only() {
        let ranged = source(&[(
            "lists.range(3) == [0, 1, 2] && sets.contains([1, 2], [1]) && strings.quote('a') == '\"a\"'",
            Some("wrong"),
            None,
        )]);
        assert_eq!(
            run_dialect(&ranged, Dialect::ValidatingAdmissionPolicy, "{}"),
            Vec::<String>::new()
        );
        let src = source(&[("[3, 1, 2].sort() == [1, 2, 3]", Some("unsorted"), None)]);
        assert_eq!(
            run_dialect(&src, Dialect::ValidatingAdmissionPolicy, "{}"),
            Vec::<String>::new()
        );
        // Gatekeeper's 1.33 environment has no `sort`: the type checker refuses it.
        assert_eq!(
            Validator::compile(&src, &[], Dialect::Gatekeeper)
                .unwrap_err()
                .to_string(),
            "validations[0].expression: ERROR: <input>:1:15: undeclared reference to 'sort' (in container '')\n | [3, 1, 2].sort() == [1, 2, 3]\n | ..............^"
        );
    }
}

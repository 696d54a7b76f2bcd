//! CEL expressions lowered for evaluation: names and operators resolved once,
//! when the expression is compiled, instead of on every evaluation.
//!
//! The `cel` crate's interpreter walks the parsed expression and, at every
//! node, works out again what the node means: it matches the function name
//! against each operator, joins a qualified name (`object.spec.containers`)
//! into a string and looks every prefix of it up as a variable and as a type,
//! and collects call arguments into a fresh vector. On the library's
//! templates that was more than a quarter of the CEL time. A [`Program`] is
//! the same expression with those questions answered at compile time: roots
//! and comprehension variables are slots, operators are variants, and the
//! evaluation is a walk over that tree.
//!
//! What it runs natively is the success path of the crate's own semantics,
//! through the crate's own value traits (`equals`, `Comparer`, `Container`,
//! `Indexer`, `Adder`) and its function overloads. Everything else is handed
//! to the crate's interpreter, node by node: a call it does not run itself
//! (member functions, the other operators) gets its evaluated arguments
//! bound to hidden names, and a construct it does not lower (map literals,
//! optional values, a comprehension whose condition reads the element) is
//! evaluated as written, with the comprehension variables in scope. An error
//! anywhere ends the attempt ([`Bail`]): the caller then evaluates the whole
//! expression with the crate's interpreter, which gives the crate's error,
//! or the value CEL's error-absorbing `&&`, `||` and `all()` make of it.
//! Written by hand because the crate exposes no compiled form of an
//! expression; its interpreter stays the reference for every result.

use std::sync::Arc;

use cel::common::ast::{CallExpr, ComprehensionExpr, Expr, IdedExpr, LiteralValue, operators};
use cel::common::functions::Function;
use cel::common::types::{CelBool, CelList, CelOptional, CelString};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env};

use super::cost;
use super::library::{PATH_SEPARATOR, PRESENCE_TEST, fields_present, presence_test};
use super::validator::{Bindings, Root};

/// The evaluation stopped: the expression errs, or reaches something the
/// program does not run. The caller evaluates it with the crate instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bail;

type Eval<'b, 'v> = Result<CowVal<'b, 'v>, Bail>;

/// A compiled expression.
#[derive(Debug)]
pub(crate) struct Program {
    root: Node,
}

#[derive(Debug)]
enum Node {
    Literal(LiteralValue),
    /// A root name the bindings hold (`object`, `@var.x`, ...).
    Root(Root),
    /// A comprehension variable: `up` levels out, its element or accumulator.
    Local {
        up: usize,
        accu: bool,
    },
    /// `operand.field`, not a presence test.
    Select {
        operand: Box<Node>,
        field: CelString<'static>,
    },
    And(Box<[Node; 2]>),
    Or(Box<[Node; 2]>),
    Cond(Box<[Node; 3]>),
    Not(Box<Node>),
    NotStrictlyFalse(Box<Node>),
    Binary(Binary, Box<[Node; 2]>),
    /// A global function, by overload; `call` as [`Node::Apply`]'s, for a
    /// function the environment has no overload of.
    Call {
        name: String,
        args: Vec<Node>,
        call: IdedExpr,
    },
    /// `has(x.a.b)`: `@has(x, "a\0b")` with the path split at load.
    Has {
        root: Box<Node>,
        fields: Vec<CelString<'static>>,
    },
    /// A function with one overload, which takes any argument: regard's
    /// hidden ones (`@has`, the cost meter's).
    Direct {
        f: Function,
        args: Vec<Node>,
    },
    /// `s.startsWith(t)`, `s.endsWith(t)`, `s.contains(t)`: on two strings,
    /// what the crate's string overloads do; on anything else, `call` as in
    /// [`Node::Apply`].
    Text {
        test: Text,
        target: Box<Node>,
        arg: Box<Node>,
        call: IdedExpr,
    },
    /// A call the crate makes: `call` applies it to `@t` and `@a0`, `@a1`, ...
    Apply {
        call: IdedExpr,
        target: Option<Box<Node>>,
        args: Vec<Node>,
    },
    List(Vec<Node>),
    Fold(Box<Fold>),
    /// Evaluated by the crate as written, comprehension variables in scope.
    Crate(IdedExpr),
}

#[derive(Debug, Clone, Copy)]
enum Text {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Debug, Clone, Copy)]
enum Binary {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Index,
    Add,
}

/// A comprehension, as the crate runs it: accumulator first, then the range;
/// the condition before each element, then the step; the result at the end.
#[derive(Debug)]
struct Fold {
    init: Node,
    range: Node,
    cond: Node,
    step: Node,
    result: Node,
    /// `map` and `filter`: with an empty list to start from, the crate
    /// appends each element's items instead of running the step (and the
    /// accumulator is not in scope), and the result is that list.
    append: Option<Append>,
    iter_var: String,
    accu_var: String,
}

#[derive(Debug)]
struct Append {
    guard: Option<Node>,
    items: Node,
}

/// The comprehension variables in scope at compile time, innermost last.
#[derive(Default)]
struct Scopes<'a>(Vec<(Option<&'a str>, Option<&'a str>)>);

impl<'a> Scopes<'a> {
    fn lookup(&self, name: &str) -> Option<Node> {
        for (up, (iter, accu)) in self.0.iter().rev().enumerate() {
            if *iter == Some(name) {
                return Some(Node::Local { up, accu: false });
            }
            if *accu == Some(name) {
                return Some(Node::Local { up, accu: true });
            }
        }
        None
    }

    fn with<R>(
        &mut self,
        iter: Option<&'a str>,
        accu: Option<&'a str>,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        self.0.push((iter, accu));
        let r = f(self);
        self.0.pop();
        r
    }
}

impl Program {
    /// Lowers `e` (names checked, macros expanded, cost calls in place).
    pub(crate) fn compile(e: &IdedExpr) -> Program {
        Program {
            root: lower(e, &mut Scopes::default()),
        }
    }

    /// Evaluates the program; `None` when the crate must (see [`Bail`]).
    pub(crate) fn eval<'b, 'v>(
        &'b self,
        bindings: &'b Bindings<'v>,
        env: &'b Arc<Env>,
    ) -> Eval<'b, 'v> {
        let cx = Cx {
            bindings,
            env,
            frame: None,
        };
        self.root.eval(&cx)
    }
}

fn lower<'a>(e: &'a IdedExpr, scopes: &mut Scopes<'a>) -> Node {
    let hole = || Node::Crate(e.clone());
    match &e.expr {
        Expr::Literal(l) => Node::Literal(l.clone()),
        Expr::Ident(name) => scopes
            .lookup(name)
            .or_else(|| Root::of(name).map(Node::Root))
            .unwrap_or_else(hole),
        Expr::Select(s) if !s.test => {
            let operand = lower(&s.operand, scopes);
            if matches!(operand, Node::Crate(_)) {
                // `google.protobuf.Timestamp`, a namespaced name: the crate
                // resolves the whole qualified name.
                return hole();
            }
            Node::Select {
                operand: Box::new(operand),
                field: CelString::from(s.field.clone()),
            }
        }
        Expr::Call(c) => lower_call(e, c, scopes),
        Expr::List(l) if l.optional_indices.is_empty() => {
            Node::List(l.elements.iter().map(|x| lower(x, scopes)).collect())
        }
        Expr::Comprehension(c) => lower_fold(c, scopes).unwrap_or_else(hole),
        _ => hole(),
    }
}

fn lower_call<'a>(e: &'a IdedExpr, c: &'a CallExpr, scopes: &mut Scopes<'a>) -> Node {
    let each = |scopes: &mut Scopes<'a>| -> Vec<Node> {
        c.args.iter().map(|a| lower(a, scopes)).collect()
    };
    if let Some(target) = &c.target {
        // `sets.contains(a, b)`, `optional.of(x)`: a namespaced function,
        // which the crate tells from a member call by the target's name
        // (even when a comprehension variable has that name).
        if names_namespace(target) {
            return Node::Crate(e.clone());
        }
        let target = lower(target, scopes);
        if matches!(target, Node::Crate(_)) {
            return Node::Crate(e.clone());
        }
        let mut args = each(scopes);
        let test = match c.func_name.as_str() {
            "startsWith" => Text::StartsWith,
            "endsWith" => Text::EndsWith,
            "contains" => Text::Contains,
            _ => return apply(c, Some(target), args),
        };
        if args.len() != 1 {
            return apply(c, Some(target), args);
        }
        let [arg] = take::<1>(&mut args);
        let Node::Apply { call, target, .. } = apply(c, Some(target), Vec::new()) else {
            unreachable!("apply makes an Apply")
        };
        return Node::Text {
            test,
            target: target.unwrap_or_else(|| unreachable!("given above")),
            arg: Box::new(arg),
            call: with_arity(call, 1),
        };
    }
    let name = c.func_name.as_str();
    if let (PRESENCE_TEST, [root, path]) = (name, c.args.as_slice())
        && let Expr::Literal(LiteralValue::String(path)) = &path.expr
    {
        return Node::Has {
            root: Box::new(lower(root, scopes)),
            fields: path
                .inner()
                .split(PATH_SEPARATOR)
                .map(|f| CelString::from(f.to_owned()))
                .collect(),
        };
    }
    if let Some(f) = direct(name, &c.args) {
        return Node::Direct {
            f,
            args: each(scopes),
        };
    }
    if !is_operator(name) {
        let args = each(scopes);
        let Node::Apply { call, .. } = apply(c, None, Vec::new()) else {
            unreachable!("apply makes an Apply")
        };
        return Node::Call {
            name: c.func_name.clone(),
            call: with_arity(call, args.len()),
            args,
        };
    }
    let mut args = each(scopes);
    let binary = match (name, args.len()) {
        (operators::EQUALS, 2) => Binary::Eq,
        (operators::NOT_EQUALS, 2) => Binary::Ne,
        (operators::LESS, 2) => Binary::Lt,
        (operators::LESS_EQUALS, 2) => Binary::Le,
        (operators::GREATER, 2) => Binary::Gt,
        (operators::GREATER_EQUALS, 2) => Binary::Ge,
        (operators::IN, 2) => Binary::In,
        (operators::INDEX, 2) => Binary::Index,
        (operators::ADD, 2) => Binary::Add,
        (operators::LOGICAL_AND | operators::LOGICAL_OR, 2) => {
            let pair = Box::new(take::<2>(&mut args));
            return if name == operators::LOGICAL_AND {
                Node::And(pair)
            } else {
                Node::Or(pair)
            };
        }
        (operators::CONDITIONAL, 3) => return Node::Cond(Box::new(take::<3>(&mut args))),
        (operators::LOGICAL_NOT, 1) => {
            let [x] = take::<1>(&mut args);
            return Node::Not(Box::new(x));
        }
        (operators::NOT_STRICTLY_FALSE, 1) => {
            let [x] = take::<1>(&mut args);
            return Node::NotStrictlyFalse(Box::new(x));
        }
        // `_-_`, `-_`, `_?._`, ...: the interpreter runs them on the operands.
        _ => return apply(c, None, args),
    };
    Node::Binary(binary, Box::new(take::<2>(&mut args)))
}

/// Whether `target` spells a qualified name whose root is a function
/// namespace.
fn names_namespace(target: &IdedExpr) -> bool {
    let mut e = target;
    loop {
        match &e.expr {
            Expr::Ident(root) => return super::FUNCTION_NAMESPACES.contains(&root.as_str()),
            Expr::Select(s) if !s.test => e = &s.operand,
            _ => return false,
        }
    }
}

/// The function a call of `name` on `args` always reaches: regard's hidden
/// functions, each registered with one overload (`@has(dyn, dyn)`,
/// `@cost_loop(dyn, int)`, `@cost_size(dyn, int)`, the int a literal the
/// cost pass writes), so looking the overload up finds it every time.
fn direct(name: &str, args: &[IdedExpr]) -> Option<Function> {
    let int_literal = |e: &IdedExpr| matches!(e.expr, Expr::Literal(LiteralValue::Int(_)));
    match (name, args) {
        (PRESENCE_TEST, [_, _]) => Some(presence_test),
        (cost::COST_LOOP, [_, w]) if int_literal(w) => Some(cost::cost_loop),
        (cost::COST_SIZE, [_, w]) if int_literal(w) => Some(cost::cost_size),
        _ => None,
    }
}

/// The `N` nodes of `args` (which has exactly `N`).
fn take<const N: usize>(args: &mut Vec<Node>) -> [Node; N] {
    std::mem::take(args)
        .try_into()
        .unwrap_or_else(|_| unreachable!("arity checked by the caller"))
}

/// Whether the crate's interpreter gives `name` a meaning of its own instead
/// of looking up an overload: its operators.
fn is_operator(name: &str) -> bool {
    name.starts_with('_')
        || name.starts_with('!')
        || name.starts_with('-')
        || name == operators::IN
        || name == operators::NOT_STRICTLY_FALSE
}

fn apply(c: &CallExpr, target: Option<Node>, args: Vec<Node>) -> Node {
    let call = IdedExpr {
        id: 0,
        expr: Expr::Call(CallExpr {
            func_name: c.func_name.clone(),
            target: target.as_ref().map(|_| Box::new(ident(TARGET.to_owned()))),
            args: Vec::new(),
        }),
    };
    Node::Apply {
        call: with_arity(call, args.len()),
        target: target.map(Box::new),
        args,
    }
}

fn ident(name: String) -> IdedExpr {
    IdedExpr {
        id: 0,
        expr: Expr::Ident(name),
    }
}

/// `call` applied to the operands `@a0` .. `@a{n-1}`.
fn with_arity(mut call: IdedExpr, n: usize) -> IdedExpr {
    if let Expr::Call(c) = &mut call.expr {
        c.args = (0..n).map(|i| ident(format!("{ARG}{i}"))).collect();
    }
    call
}

/// The names an [`Node::Apply`] binds its operands to (the parser cannot
/// produce them).
const TARGET: &str = "@t";
const ARG: &str = "@a";

fn lower_fold<'a>(c: &'a ComprehensionExpr, scopes: &mut Scopes<'a>) -> Option<Node> {
    let iter = c.iter_var.as_str();
    let accu = c.accu_var.as_str();
    // The crate evaluates the condition and the result with the element
    // variable still bound to the previous (or last) element; the macros
    // never read it there, and a program that did would need that kept.
    if c.iter_var2.is_some() || mentions(&c.loop_cond, iter) || mentions(&c.result, iter) {
        return None;
    }
    let init = lower(&c.accu_init, scopes);
    let range = lower(&c.iter_range, scopes);
    let cond = scopes.with(None, Some(accu), |s| lower(&c.loop_cond, s));
    let step = scopes.with(Some(iter), Some(accu), |s| lower(&c.loop_step, s));
    let result = scopes.with(None, Some(accu), |s| lower(&c.result, s));
    let append = append_step(c).map(|(guard, items)| {
        scopes.with(Some(iter), None, |s| Append {
            guard: guard.map(|g| lower(g, s)),
            items: lower(items, s),
        })
    });
    Some(Node::Fold(Box::new(Fold {
        init,
        range,
        cond,
        step,
        result,
        append,
        iter_var: c.iter_var.clone(),
        accu_var: c.accu_var.clone(),
    })))
}

/// The guard and the appended list of a `map`/`filter` step, recognised as
/// the crate recognises them (result and every kept step the accumulator
/// itself, a literal condition, `@result + [item]` as the step).
fn append_step(c: &ComprehensionExpr) -> Option<(Option<&IdedExpr>, &IdedExpr)> {
    let accu = c.accu_var.as_str();
    let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if n == accu);
    fn items_of<'e>(e: &'e IdedExpr, is_accu: &dyn Fn(&IdedExpr) -> bool) -> Option<&'e IdedExpr> {
        match &e.expr {
            Expr::Call(call) if call.func_name == operators::ADD && call.target.is_none() => {
                match call.args.as_slice() {
                    [lhs, rhs] if is_accu(lhs) && matches!(rhs.expr, Expr::List(_)) => Some(rhs),
                    _ => None,
                }
            }
            _ => None,
        }
    }
    if !is_accu(&c.result) || !matches!(c.loop_cond.expr, Expr::Literal(_)) {
        return None;
    }
    match &c.loop_step.expr {
        Expr::Call(call) if call.func_name == operators::CONDITIONAL && call.target.is_none() => {
            match call.args.as_slice() {
                [guard, step, otherwise] if is_accu(otherwise) => {
                    Some((Some(guard), items_of(step, &is_accu)?))
                }
                _ => None,
            }
        }
        _ => Some((None, items_of(&c.loop_step, &is_accu)?)),
    }
}

/// Whether `e` reads the name `name` anywhere (shadowing ignored: a `true`
/// that is not needed only keeps a comprehension on the crate).
fn mentions(e: &IdedExpr, name: &str) -> bool {
    match &e.expr {
        Expr::Ident(n) => n == name,
        Expr::Select(s) => mentions(&s.operand, name),
        Expr::Call(c) => {
            c.target.as_deref().is_some_and(|t| mentions(t, name))
                || c.args.iter().any(|a| mentions(a, name))
        }
        Expr::List(l) => l.elements.iter().any(|x| mentions(x, name)),
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .iter()
        .any(|x| mentions(x, name)),
        Expr::Literal(_) => false,
        // Maps, structs: not looked into.
        _ => true,
    }
}

/// One comprehension level at run time.
struct Frame<'b, 'v> {
    parent: Option<&'b Frame<'b, 'v>>,
    iter: Option<(&'b str, &'b (dyn Val + 'v))>,
    accu: Option<(&'b str, &'b (dyn Val + 'v))>,
}

#[derive(Clone, Copy)]
struct Cx<'b, 'v> {
    bindings: &'b Bindings<'v>,
    env: &'b Arc<Env>,
    frame: Option<&'b Frame<'b, 'v>>,
}

impl<'b, 'v> Cx<'b, 'v> {
    fn local(&self, up: usize, accu: bool) -> Option<&'b (dyn Val + 'v)> {
        let mut frame = self.frame?;
        for _ in 0..up {
            frame = frame.parent?;
        }
        let slot = if accu { frame.accu } else { frame.iter };
        slot.map(|(_, v)| v)
    }
}

/// What a [`Node::Crate`] expression resolves its names against: the
/// comprehension variables in scope, innermost first, then the bindings.
struct Scoped<'b, 'v> {
    cx: Cx<'b, 'v>,
}

impl VariableResolver for Scoped<'_, '_> {
    fn resolve<'r>(&'r self, name: &str) -> Option<CowVal<'r, 'r>> {
        let mut frame = self.cx.frame;
        while let Some(f) = frame {
            for (n, v) in [f.iter, f.accu].into_iter().flatten() {
                if n == name {
                    return Some(CowVal::Borrowed(v));
                }
            }
            frame = f.parent;
        }
        self.cx.bindings.resolve(name)
    }
}

/// What a [`Node::Apply`] call resolves its operands against.
struct Operands<'a, 'b, 'v> {
    target: Option<&'a (dyn Val + 'v)>,
    args: &'a [CowVal<'b, 'v>],
}

impl VariableResolver for Operands<'_, '_, '_> {
    fn resolve<'r>(&'r self, name: &str) -> Option<CowVal<'r, 'r>> {
        if name == TARGET {
            return self.target.map(CowVal::Borrowed);
        }
        let i: usize = name.strip_prefix(ARG)?.parse().ok()?;
        Some(CowVal::Borrowed(self.args.get(i)?.as_ref()))
    }
}

/// Runs `e` on the crate's interpreter; the value is copied out of the
/// context it borrowed from.
fn on_crate(
    e: &IdedExpr,
    env: &Arc<Env>,
    names: &dyn VariableResolver,
) -> Result<Box<dyn Val + 'static>, Bail> {
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.set_variable_resolver(names);
    let v = cel::Value::resolve_val(e, &ctx).map_err(|_| Bail)?;
    super::value::detach(v.as_ref()).ok_or(Bail)
}

fn truth(v: &CowVal<'_, '_>) -> Result<bool, Bail> {
    v.downcast_ref::<CelBool>().map(|b| *b.inner()).ok_or(Bail)
}

impl Node {
    fn eval<'b, 'v>(&'b self, cx: &Cx<'b, 'v>) -> Eval<'b, 'v> {
        match self {
            Node::Literal(l) => Ok(l.to_val()),
            Node::Root(r) => cx.bindings.root(r).map(CowVal::Borrowed).ok_or(Bail),
            Node::Local { up, accu } => cx.local(*up, *accu).map(CowVal::Borrowed).ok_or(Bail),
            Node::Select { operand, field } => {
                let left = operand.eval(cx)?;
                if left.downcast_ref::<CelOptional<'_>>().is_some() {
                    return Err(Bail);
                }
                index(left, field)
            }
            Node::And(ab) => {
                let [a, b] = &**ab;
                if !truth(&a.eval(cx)?)? {
                    return Ok(bool(false));
                }
                Ok(bool(truth(&b.eval(cx)?)?))
            }
            Node::Or(ab) => {
                let [a, b] = &**ab;
                if truth(&a.eval(cx)?)? {
                    return Ok(bool(true));
                }
                Ok(bool(truth(&b.eval(cx)?)?))
            }
            Node::Cond(abc) => {
                let [cond, then, otherwise] = &**abc;
                if truth(&cond.eval(cx)?)? {
                    then.eval(cx)
                } else {
                    otherwise.eval(cx)
                }
            }
            Node::Not(a) => Ok(bool(!truth(&a.eval(cx)?)?)),
            // The crate turns an error here into `true`; the caller's
            // interpreter run does that.
            Node::NotStrictlyFalse(a) => {
                let v = a.eval(cx)?;
                Ok(bool(truth(&v).unwrap_or(true)))
            }
            Node::Binary(op, ab) => {
                let [a, b] = &**ab;
                let lhs = a.eval(cx)?;
                let rhs = b.eval(cx)?;
                binary(*op, lhs, rhs)
            }
            Node::Call { name, args, call } => {
                let args = args
                    .iter()
                    .map(|a| a.eval(cx))
                    .collect::<Result<Vec<_>, Bail>>()?;
                if let Some(f) = cx.env.find_overload(name, &args) {
                    return f(args).map_err(|_| Bail);
                }
                // One of the crate's own functions (or none): it decides.
                let names = Operands {
                    target: None,
                    args: &args,
                };
                on_crate(call, cx.env, &names).map(CowVal::Owned)
            }
            Node::Has { root, fields } => {
                let root = root.eval(cx)?;
                fields_present(root.as_ref(), fields)
                    .map(bool)
                    .map_err(|_| Bail)
            }
            Node::Direct { f, args } => {
                let args = args
                    .iter()
                    .map(|a| a.eval(cx))
                    .collect::<Result<Vec<_>, Bail>>()?;
                f(args).map_err(|_| Bail)
            }
            Node::Text {
                test,
                target,
                arg,
                call,
            } => {
                // The crate evaluates the argument before the target.
                let needle = arg.eval(cx)?;
                let this = target.eval(cx)?;
                match (
                    this.downcast_ref::<CelString<'_>>(),
                    needle.downcast_ref::<CelString<'_>>(),
                ) {
                    (Some(this), Some(needle)) => {
                        let (this, needle) = (this.inner(), needle.inner());
                        Ok(bool(match test {
                            Text::StartsWith => this.starts_with(needle),
                            Text::EndsWith => this.ends_with(needle),
                            Text::Contains => this.contains(needle),
                        }))
                    }
                    _ => {
                        let args = [needle];
                        let names = Operands {
                            target: Some(this.as_ref()),
                            args: &args,
                        };
                        on_crate(call, cx.env, &names).map(CowVal::Owned)
                    }
                }
            }
            Node::Apply { call, target, args } => {
                let args = args
                    .iter()
                    .map(|a| a.eval(cx))
                    .collect::<Result<Vec<_>, Bail>>()?;
                let target = target.as_ref().map(|t| t.eval(cx)).transpose()?;
                let names = Operands {
                    target: target.as_ref().map(|t| t.as_ref()),
                    args: &args,
                };
                on_crate(call, cx.env, &names).map(CowVal::Owned)
            }
            Node::List(items) => {
                let items = items
                    .iter()
                    .map(|x| x.eval(cx).map(CowVal::into_owned))
                    .collect::<Result<Vec<_>, Bail>>()?;
                Ok(CowVal::owned(CelList::from(items)))
            }
            Node::Fold(f) => f.eval(cx),
            Node::Crate(e) => on_crate(e, cx.env, &Scoped { cx: *cx }).map(CowVal::Owned),
        }
    }
}

impl Fold {
    fn eval<'b, 'v>(&'b self, cx: &Cx<'b, 'v>) -> Eval<'b, 'v> {
        let init = self.init.eval(cx)?;
        let range = self.range.eval(cx)?;
        let items = range.as_iterable().ok_or(Bail)?;
        let mut items = items.iter();
        if let Some(append) = &self.append
            && init
                .downcast_ref::<CelList<'_>>()
                .is_some_and(|l| l.inner().is_empty())
        {
            let mut out: Vec<Box<dyn Val + 'v>> = Vec::new();
            while let Some(item) = items.next() {
                // The condition is a literal: it reads no variable.
                if !truth(&self.cond.eval(cx)?)? {
                    break;
                }
                let frame = Frame {
                    parent: cx.frame,
                    iter: Some((&self.iter_var, item)),
                    accu: None,
                };
                let inner = Cx {
                    frame: Some(&frame),
                    ..*cx
                };
                if let Some(guard) = &append.guard
                    && !truth(&guard.eval(&inner)?)?
                {
                    continue;
                }
                match &append.items {
                    Node::List(xs) => {
                        for x in xs {
                            out.push(x.eval(&inner)?.into_owned());
                        }
                    }
                    other => {
                        let list = other.eval(&inner)?;
                        let list = list.as_iterable().ok_or(Bail)?;
                        let mut list = list.iter();
                        while let Some(x) = list.next() {
                            out.push(x.clone_as_boxed());
                        }
                    }
                }
            }
            return Ok(CowVal::owned(CelList::from(out)));
        }
        let mut accu: Box<dyn Val + 'v> = init.into_owned();
        while let Some(item) = items.next() {
            let go_on = {
                let frame = Frame {
                    parent: cx.frame,
                    iter: None,
                    accu: Some((&self.accu_var, accu.as_ref())),
                };
                let inner = Cx {
                    frame: Some(&frame),
                    ..*cx
                };
                truth(&self.cond.eval(&inner)?)?
            };
            if !go_on {
                break;
            }
            let next = {
                let frame = Frame {
                    parent: cx.frame,
                    iter: Some((&self.iter_var, item)),
                    accu: Some((&self.accu_var, accu.as_ref())),
                };
                let inner = Cx {
                    frame: Some(&frame),
                    ..*cx
                };
                self.step.eval(&inner)?.into_owned()
            };
            accu = next;
        }
        let frame = Frame {
            parent: cx.frame,
            iter: None,
            accu: Some((&self.accu_var, accu.as_ref())),
        };
        let inner = Cx {
            frame: Some(&frame),
            ..*cx
        };
        Ok(CowVal::Owned(self.result.eval(&inner)?.into_owned()))
    }
}

use super::value::lent_bool as bool;

/// `left.field` (or `left[field]`) on the success path of the crate's
/// `index_into`: a borrowed container lends the element, an owned one gives
/// a copy.
fn index<'b, 'v>(left: CowVal<'b, 'v>, key: &dyn Val) -> Eval<'b, 'v> {
    match left {
        CowVal::Borrowed(v) => v.as_indexer().ok_or(Bail)?.get(key).map_err(|_| Bail),
        CowVal::Owned(b) => {
            let v = b.as_indexer().ok_or(Bail)?.get(key).map_err(|_| Bail)?;
            Ok(CowVal::Owned(v.into_owned()))
        }
    }
}

fn binary<'b, 'v>(op: Binary, lhs: CowVal<'b, 'v>, rhs: CowVal<'b, 'v>) -> Eval<'b, 'v> {
    use std::cmp::Ordering::{Greater, Less};
    let order = |lhs: &CowVal<'b, 'v>, rhs: &CowVal<'b, 'v>| {
        lhs.as_comparer()
            .ok_or(Bail)?
            .compare(rhs.as_ref())
            .map_err(|_| Bail)
    };
    Ok(match op {
        Binary::Eq => bool(lhs == rhs),
        Binary::Ne => bool(lhs != rhs),
        Binary::Lt => bool(order(&lhs, &rhs)? == Less),
        Binary::Le => bool(order(&lhs, &rhs)? != Greater),
        Binary::Gt => bool(order(&lhs, &rhs)? == Greater),
        Binary::Ge => bool(order(&lhs, &rhs)? != Less),
        Binary::In => {
            let container = rhs.as_container().ok_or(Bail)?;
            bool(container.contains(lhs.as_ref()).map_err(|_| Bail)?)
        }
        Binary::Index => {
            if lhs.downcast_ref::<CelOptional<'_>>().is_some() {
                return Err(Bail);
            }
            return index(lhs, rhs.as_ref());
        }
        Binary::Add => {
            let sum = lhs
                .as_adder()
                .ok_or(Bail)?
                .add(rhs.as_ref())
                .map_err(|_| Bail)?
                .into_owned();
            CowVal::Owned(sum)
        }
    })
}

#[cfg(test)]
mod tests {
    use regorus::Value;

    use crate::cel::Dialect;
    use crate::cel::validator::{Activation, Evaluation, Validator, ValidatorSource, fallbacks};
    use crate::cel::value::to_val;
    use crate::rvm::Evaluator;

    const OBJECTS: &[&str] = &[
        r#"{"kind": "Pod", "metadata": {"name": "p", "labels": {"app": "web", "tier": "1"}},
            "spec": {"hostNetwork": true,
              "containers": [
                {"name": "a", "image": "nginx:1.27", "securityContext": {"privileged": true,
                  "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"], "drop": ["ALL"]}},
                  "ports": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "registry.k8s.io/pause@sha256:abc", "resources": {"limits": {"memory": "1Gi", "cpu": "500m"}}}],
              "initContainers": [{"name": "i", "image": "busybox", "securityContext": {"runAsUser": 0}}]}}"#,
        r#"{"kind": "Pod", "metadata": {"name": "q"}, "spec": {"containers": []}}"#,
        r#"{"kind": "Deployment", "metadata": {"name": "d", "annotations": {"a": "b"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "x", "image": "x:latest"}]}}}}"#,
        r#"{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v", "n": "12"}}"#,
        r#"{"kind": "Weird", "spec": "a string", "list": [1, 2.5, "3", null, true, {"a": 1}], "n": -7}"#,
    ];

    /// Expressions (validation, message expression) covering what the
    /// program runs itself and what it hands to the crate.
    const EXPRESSIONS: &[&str] = &[
        "has(object.spec.hostNetwork) && object.spec.hostNetwork",
        "!has(object.spec.securityContext) || object.spec.securityContext.runAsNonRoot == true",
        "object.spec.containers.all(c, !has(c.securityContext) || !has(c.securityContext.privileged) || !c.securityContext.privileged)",
        "object.spec.containers.exists(c, c.image.startsWith('nginx'))",
        "object.spec.containers.exists_one(c, c.name == 'a')",
        "size(object.spec.containers.filter(c, c.image.endsWith(':latest'))) == 0",
        "object.spec.containers.map(c, c.name).join(',') != 'a,b'",
        "object.spec.containers.map(c, has(c.ports), c.ports.map(p, p.hostPort)).size() < 2",
        "(has(object.spec.initContainers) ? object.spec.initContainers : []).all(c, c.name.size() > 0)",
        "object.metadata.labels.all(k, k in ['app', 'tier'])",
        "object.metadata.labels['app'] == 'web'",
        "object.metadata.?labels.?app.orValue('none') == 'web'",
        "'app' in object.metadata.labels && object.metadata.labels.app.matches('^w')",
        "object.spec.replicas < 5 && object.spec.replicas >= 1 && object.spec.replicas > 0.5",
        "object.spec.replicas + 1 - 2 * 3 / 1 % 4 == 0",
        "object.n < 0 && -object.n == 7",
        "1 / 0 == 1 || true",
        "false && 1 / 0 == 1",
        "object.list[1] == 2.5 && object.list[0] == 1u && object.list[2] == '3'",
        "object.list.size() == 6 && object.list[5].a == 1",
        "object.spec.containers.all(i, c, i >= 0 && c.name != '')",
        "object.spec.containers.transformList(i, c, c.name + string(i)) == ['a0', 'b1']",
        "object.metadata.labels.exists(k, v, k == 'app' && v == 'web')",
        "{'a': 1, 'b': object.kind}.b == object.kind",
        "[1, 2, 3].map(x, x * 2).filter(x, x > 2) == [4, 6]",
        "int('12') == 12 && string(12) == '12' && double(1) == 1.0",
        "dyn(object.spec) == object.spec",
        "object.spec.x == 1",
        "object.missing.deeper",
        "object.spec.containers[5].name == 'x'",
        "quantity(object.spec.containers[1].resources.limits.memory).compareTo(quantity('2Gi')) < 0",
        "sets.contains(['a', 'b', 'c'], ['a']) && optional.of(1).hasValue()",
        "lists.range(3).all(i, i < 3)",
        "object.metadata.name.lowerAscii().upperAscii().split('').size() == 1",
        "[1, 2, 3].sum() == 6 && [3, 1].min() == 1",
        "object.kind == 'Pod' ? object.spec.containers.size() : 'not a pod'",
        "variables.images.all(i, i.contains(':') || i.contains('@'))",
        "variables.bad.size() == 0",
        "variables.count > 1",
        "variables.broken == 1",
        "params.limit > variables.count",
        "request.operation == 'CREATE' && oldObject == null",
        "object.spec.containers.map(c, object.spec.containers.map(d, c.name + d.name)).size() == 2",
        "[[1, 2], [3]].map(l, l.map(x, x + 1)).exists(l, l.exists(x, x == 4))",
        "object.metadata.labels.map(k, k + '=' + object.metadata.labels[k]).size() == 2",
        "lists.range(100000).all(i, lists.range(100000).all(j, i + j >= 0))",
        "object.kind.contains('o') && object.kind.startsWith('P') && !object.kind.endsWith('x')",
        "object.n.startsWith('x')",
        "object.list.contains('3')",
        "object.metadata.name.startsWith(object.kind)",
    ];

    fn evaluate(expression: &str, object: &str, evaluator: Evaluator) -> Evaluation {
        try_evaluate(expression, object, evaluator).unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// [`evaluate`], or the compile error.
    fn try_evaluate(
        expression: &str,
        object: &str,
        evaluator: Evaluator,
    ) -> Result<Evaluation, String> {
        let source = ValidatorSource {
            variables: vec![
                (
                    "images".to_owned(),
                    "has(object.spec.containers) ? object.spec.containers.map(c, c.image) : []"
                        .to_owned(),
                ),
                (
                    "bad".to_owned(),
                    "variables.images.filter(i, i.endsWith(':latest'))".to_owned(),
                ),
                ("count".to_owned(), "size(variables.images)".to_owned()),
                ("broken".to_owned(), "object.nothing.here".to_owned()),
            ],
            validations: vec![(
                expression.to_owned(),
                None,
                Some(format!("'got ' + string({expression})")),
            )],
            ..ValidatorSource::default()
        };
        let validator =
            Validator::compile(&source, &["params"], Dialect::ValidatingAdmissionPolicy)
                .map_err(|e| format!("{e:?}"))?;
        let object = Value::from_json_str(object).unwrap();
        let request = Value::from_json_str(r#"{"operation": "CREATE"}"#).unwrap();
        let activation = Activation::new(&object, &Value::Null, &request, None);
        let params = to_val(&Value::from_json_str(r#"{"limit": 4}"#).unwrap());
        let builtins = [("params", params.as_ref())];
        Ok(validator.evaluate(&activation, params.as_ref(), &builtins, evaluator))
    }

    #[test]
    fn programs_give_the_crates_results() {
        for object in OBJECTS {
            for expression in EXPRESSIONS {
                let compiled = evaluate(expression, object, Evaluator::Rvm);
                let interpreted = evaluate(expression, object, Evaluator::Interpreter);
                assert_eq!(compiled, interpreted, "{expression} on {object}");
            }
        }
    }

    /// Random expressions from a small grammar over the test objects (a
    /// fixed seed, so every run draws the same ones): both evaluators agree.
    /// Two grammars: a typed one, whose draws mostly evaluate without error
    /// (the lowered form's own path), and one of `dyn` values of any type,
    /// whose draws mostly err (the path back to the crate).
    #[test]
    fn random_expressions_give_the_crates_results() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d, 0);
        let (mut compiled_ok, mut lowered_throughout) = (0, 0);
        for i in 0..300 {
            let expression = if i % 2 == 0 {
                rng.typed_bool(3)
            } else {
                rng.boolean(3)
            };
            for object in OBJECTS {
                let before = fallbacks();
                let Ok(compiled) = try_evaluate(&expression, object, Evaluator::Rvm) else {
                    continue;
                };
                compiled_ok += 1;
                // The variable `broken` always falls back; nothing else did.
                if fallbacks() - before == 1 {
                    lowered_throughout += 1;
                }
                let interpreted = try_evaluate(&expression, object, Evaluator::Interpreter)
                    .unwrap_or_else(|e| panic!("{expression}: {e}"));
                assert_eq!(compiled, interpreted, "{expression} on {object}");
            }
        }
        assert!(compiled_ok > 1200, "{compiled_ok}");
        assert!(lowered_throughout > 500, "{lowered_throughout}");
    }

    /// xorshift64*: enough to vary the draws, no dependency. The second
    /// field counts the comprehensions around the draw (`c` is bound there).
    struct Rng(u64, u32);

    impl Rng {
        fn next(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
        }

        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[self.next(xs.len())]
        }

        fn inside(&mut self, f: impl FnOnce(&mut Self) -> String) -> String {
            self.1 += 1;
            let s = f(self);
            self.1 -= 1;
            s
        }

        fn typed_int(&mut self, d: u32) -> String {
            if d == 0 {
                return self.pick(&["0", "1", "2", "-3", "10"]).to_owned();
            }
            match self.next(5) {
                0 => format!("size({})", self.typed_list(d - 1)),
                1 => format!("size({})", self.typed_str(d - 1)),
                2 => format!("{} + {}", self.typed_int(d - 1), self.typed_int(d - 1)),
                3 => format!(
                    "({} ? {} : {})",
                    self.typed_bool(d - 1),
                    self.typed_int(d - 1),
                    self.typed_int(d - 1)
                ),
                _ => self.typed_int(0),
            }
        }

        fn typed_str(&mut self, d: u32) -> String {
            if d == 0 {
                return match self.next(4) {
                    0 if self.1 > 0 => "c".to_owned(),
                    1 => "object.kind".to_owned(),
                    _ => self
                        .pick(&["'a'", "'web'", "''", "'Pod'", "'nginx'"])
                        .to_owned(),
                };
            }
            match self.next(4) {
                0 => format!("{} + {}", self.typed_str(d - 1), self.typed_str(d - 1)),
                1 => format!("string({})", self.typed_int(d - 1)),
                2 => format!(
                    "({} ? {} : {})",
                    self.typed_bool(d - 1),
                    self.typed_str(d - 1),
                    self.typed_str(d - 1)
                ),
                _ => self.typed_str(0),
            }
        }

        fn typed_list(&mut self, d: u32) -> String {
            if d == 0 {
                return self
                    .pick(&["variables.images", "['a', 'web']", "[]", "variables.bad"])
                    .to_owned();
            }
            match self.next(5) {
                0 => format!("{} + {}", self.typed_list(d - 1), self.typed_list(d - 1)),
                1 => format!(
                    "{}.filter(c, {})",
                    self.typed_list(d - 1),
                    self.inside(|r| r.typed_bool(d - 1))
                ),
                2 => format!(
                    "{}.map(c, {})",
                    self.typed_list(d - 1),
                    self.inside(|r| r.typed_str(d - 1))
                ),
                3 => format!("[{}, {}]", self.typed_str(d - 1), self.typed_str(d - 1)),
                _ => self.typed_list(0),
            }
        }

        fn typed_bool(&mut self, d: u32) -> String {
            if d == 0 {
                return match self.next(4) {
                    0 => format!(
                        "has({}.{})",
                        self.pick(&["object", "object.metadata", "object.spec"]),
                        self.pick(&["metadata", "labels", "name", "containers", "x"])
                    ),
                    1 => self.pick(&["true", "false"]).to_owned(),
                    2 => "request.operation == 'CREATE'".to_owned(),
                    _ => "variables.count > 1".to_owned(),
                };
            }
            let d = d - 1;
            match self.next(11) {
                0 => format!("{} && {}", self.typed_bool(d), self.typed_bool(d)),
                1 => format!("{} || {}", self.typed_bool(d), self.typed_bool(d)),
                2 => format!("!({})", self.typed_bool(d)),
                3 => format!("{} < {}", self.typed_int(d), self.typed_int(d)),
                4 => format!("{} == {}", self.typed_str(d), self.typed_str(d)),
                5 => format!("{} in {}", self.typed_str(d), self.typed_list(d)),
                6 => format!(
                    "{}.all(c, {})",
                    self.typed_list(d),
                    self.inside(|r| r.typed_bool(d))
                ),
                7 => format!(
                    "{}.exists(c, {})",
                    self.typed_list(d),
                    self.inside(|r| r.typed_bool(d))
                ),
                8 => format!("{}.startsWith({})", self.typed_str(d), self.typed_str(d)),
                9 => format!("{}.contains({})", self.typed_str(d), self.typed_str(d)),
                _ => format!(
                    "({} ? {} : {})",
                    self.typed_bool(d),
                    self.typed_bool(d),
                    self.typed_bool(d)
                ),
            }
        }

        fn path(&mut self) -> String {
            self.pick(&[
                "object.spec",
                "object.spec.containers",
                "object.metadata.labels",
                "object.metadata.name",
                "object.kind",
                "object.n",
                "object.list",
                "object.spec.replicas",
                "object.missing",
                "object.data",
                "dyn(variables.images)",
                "dyn(variables.count)",
                "params.limit",
                "request.operation",
            ])
            .to_owned()
        }

        fn value(&mut self, depth: u32) -> String {
            if depth == 0 {
                return match self.next(5) {
                    0 => self.path(),
                    1 => format!("dyn({})", self.pick(&["1", "2.5", "-7", "0u", "3"])),
                    2 => format!(
                        "dyn({})",
                        self.pick(&["'web'", "'a'", "''", "'Pod'", "'nginx:1.27'"])
                    ),
                    3 => format!(
                        "dyn({})",
                        self.pick(&["[]", "[1, 2]", "['a', 'b']", "null", "true"])
                    ),
                    _ if self.1 > 0 => "c".to_owned(),
                    _ => self.path(),
                };
            }
            let v = self.value(depth - 1);
            // Under `dyn` every draw passes the type checker; the types are
            // then the evaluators' to check.
            let e = match self.next(8) {
                0 => format!("size({v})"),
                1 => format!("{v} + {}", self.value(depth - 1)),
                2 => format!("{v}[{}]", self.value(0)),
                3 => format!("string({v})"),
                4 => format!("{v}.map(c, {})", self.inside(|r| r.value(depth - 1))),
                5 => format!("{v}.filter(c, {})", self.inside(|r| r.boolean(depth - 1))),
                6 => format!(
                    "({} ? {v} : {})",
                    self.boolean(depth - 1),
                    self.value(depth - 1)
                ),
                _ => format!("{v}.{}", self.pick(&["name", "image", "app", "spec", "a"])),
            };
            format!("dyn({e})")
        }

        fn boolean(&mut self, depth: u32) -> String {
            if depth == 0 {
                return match self.next(4) {
                    0 => format!(
                        "has({}.{})",
                        self.path(),
                        self.pick(&["name", "containers", "app", "x"])
                    ),
                    1 => self.pick(&["true", "false"]).to_owned(),
                    2 => format!("{} == {}", self.value(0), self.value(0)),
                    _ => format!("{} in {}", self.value(0), self.value(0)),
                };
            }
            let d = depth - 1;
            match self.next(10) {
                0 => format!("{} && {}", self.boolean(d), self.boolean(d)),
                1 => format!("{} || {}", self.boolean(d), self.boolean(d)),
                2 => format!("!({})", self.boolean(d)),
                3 => format!("{} < {}", self.value(d), self.value(d)),
                4 => format!("{} != {}", self.value(d), self.value(d)),
                5 => format!(
                    "{}.all(c, {})",
                    self.value(d),
                    self.inside(|r| r.boolean(d))
                ),
                6 => format!(
                    "{}.exists(c, {})",
                    self.value(d),
                    self.inside(|r| r.boolean(d))
                ),
                7 => format!("string({}).startsWith({})", self.value(d), self.value(0)),
                8 => format!("{} >= {}", self.value(d), self.value(d)),
                _ => format!(
                    "({} ? {} : {})",
                    self.boolean(d),
                    self.boolean(d),
                    self.boolean(d)
                ),
            }
        }
    }

    #[test]
    fn the_common_forms_run_without_the_crate() {
        let object = OBJECTS[0];
        // The variable `broken` errs: one fallback in every evaluation.
        let count = |expression: &str| {
            let before = fallbacks();
            let _ = evaluate(expression, object, Evaluator::Rvm);
            fallbacks() - before
        };
        let base = count("true");
        assert_eq!(base, 1);
        let handed_to_the_crate = [
            "object.spec.containers.exists(c, c.image.startsWith('nginx'))",
            "object.metadata.?labels.?app.orValue('none') == 'web'",
            "{'a': 1, 'b': object.kind}.b == object.kind",
            "sets.contains(['a', 'b', 'c'], ['a']) && optional.of(1).hasValue()",
            "[1, 2, 3].map(x, x * 2).filter(x, x > 2) == [4, 6]",
        ];
        for expression in EXPRESSIONS[..11].iter().chain(&handed_to_the_crate) {
            assert_eq!(count(expression), base, "{expression} fell back");
        }
    }
}

//! Recursive-descent parser from tokens to the concrete syntax tree.
//!
//! The grammar is the part of Groovy 2.4 that Jenkinsfiles and pipeline
//! scripts use: statements end at a line break or `;`; a name followed on
//! the same line by an argument is a command call (`sh 'make'`,
//! `git url: u, branch: b`); a `{` after a callee on the same line is a
//! closure argument (`stage('x') { … }`); declarations are recognised by
//! `def`, a modifier, or a capitalised or primitive type before a name, as
//! Groovy's own grammar does. Every token is kept in the tree, so the text
//! of a subtree is the concatenation of its tokens.
//!
//! Each nested expression or statement passes through [`Parser::enter`],
//! which refuses nesting deeper than the tree limit before the recursion
//! could exhaust the stack; binary operators use precedence climbing, so a
//! nesting level costs a handful of stack frames rather than one per
//! precedence level.

use super::MAX_DEPTH;
use super::cst::{Node, ParseError};
use super::lexer::Token;

/// Parses the tokens of `text` into a `FileNode`.
pub(super) fn parse(text: &str, tokens: Vec<Token>) -> Result<Node, ParseError> {
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        depth: 0,
        ignore_newlines: vec![false],
        classes: Vec::new(),
    };
    let mut children = Vec::new();
    parser.statements(&mut children, &[])?;
    if let Some(token) = parser.peek(0) {
        return Err(parser.unexpected(token.start, "a statement"));
    }
    Ok(Node::tree("FileNode", children))
}

type Parsed = Result<Node, ParseError>;

/// Parser recursion levels per tree level, at most: a parenthesised
/// expression enters twice (`(` and the expression inside) for one
/// `ParenExpr`.
const NESTING_PER_LEVEL: usize = 4;

/// Primitive type names, which start a declaration like a capitalised type.
const PRIMITIVES: &[&str] = &[
    "boolean", "byte", "char", "short", "int", "long", "float", "double", "void",
];

/// Binary operators by precedence, loosest first.
const BINARY: &[&[&str]] = &[
    &["Or"],
    &["And"],
    &["BitOr"],
    &["BitXor"],
    &["BitAnd"],
    &["Eq", "NotEq", "Spaceship", "RegexFind", "RegexMatch"],
    &["Lt", "LtEq", "Gt", "GtEq", "In", "Instanceof", "As"],
    &["Shl", "Shr", "UnsignedShr", "Range", "RangeExclusive"],
    &["Plus", "Minus"],
    &["Star", "Slash", "Percent"],
    &["Power"],
];

const ASSIGNMENTS: &[&str] = &[
    "Assign",
    "PlusAssign",
    "MinusAssign",
    "StarAssign",
    "SlashAssign",
    "PercentAssign",
    "AndAssign",
    "OrAssign",
    "XorAssign",
    "ShlAssign",
    "ShrAssign",
    "UnsignedShrAssign",
    "PowerAssign",
];

const MODIFIERS: &[&str] = &[
    "Final",
    "Static",
    "Private",
    "Public",
    "Protected",
    "Abstract",
];

/// Tokens that can be a named-argument or map key before `:`.
const KEY_TOKENS: &[&str] = &[
    "Identifier",
    "StringLiteral",
    "GStringFull",
    "IntLiteral",
    "FloatLiteral",
];

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
    /// Inside `(…)`, `[…]` and `${…}` line breaks do not end anything;
    /// a closure or block body makes them significant again.
    ignore_newlines: Vec<bool>,
    /// Names of the classes being declared, innermost last: a member
    /// named like its class is a constructor.
    classes: Vec<String>,
}

impl Parser<'_> {
    fn peek(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead)
    }

    fn kind(&self, ahead: usize) -> &'static str {
        self.peek(ahead).map_or("", |t| t.kind)
    }

    fn at(&self, kind: &str) -> bool {
        self.kind(0) == kind
    }

    fn token_text(&self, token: &Token) -> &str {
        self.text.get(token.start..token.end).unwrap_or("")
    }

    /// Whether a significant line break comes before the token `ahead`.
    fn newline_before(&self, ahead: usize) -> bool {
        let ignored = self.ignore_newlines.last().copied().unwrap_or(false);
        !ignored && self.peek(ahead).is_some_and(|t| t.newline_before)
    }

    /// The current token, on the same line, is `kind`.
    fn at_same_line(&self, kind: &str) -> bool {
        self.at(kind) && !self.newline_before(0)
    }

    fn bump(&mut self) -> Node {
        let node = match self.peek(0) {
            Some(t) => Node::Token {
                kind: t.kind,
                start: t.start,
                end: t.end,
            },
            None => Node::Token {
                kind: "",
                start: self.text.len(),
                end: self.text.len(),
            },
        };
        self.pos += 1;
        node
    }

    fn offset(&self) -> usize {
        self.peek(0).map_or(self.text.len(), |t| t.start)
    }

    fn unexpected(&self, offset: usize, expected: &str) -> ParseError {
        let found = match self.tokens.iter().find(|t| t.start == offset) {
            Some(t) => format!("unexpected {:?}", self.token_text(t)),
            None => "unexpected end of file".to_owned(),
        };
        ParseError::Syntax {
            offset,
            message: format!("{found}, expected {expected}"),
        }
    }

    fn expect(&mut self, kind: &str, what: &str) -> Parsed {
        if self.at(kind) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(self.offset(), what))
        }
    }

    /// Counts one level of parser recursion. A tree level costs at most
    /// [`NESTING_PER_LEVEL`] of them, so past the bound the tree is surely
    /// too deep; the exact depth is checked on the finished tree.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH * NESTING_PER_LEVEL {
            return Err(ParseError::TooDeep);
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn with_newlines<T>(
        &mut self,
        ignored: bool,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.ignore_newlines.push(ignored);
        let result = f(self);
        self.ignore_newlines.pop();
        result
    }

    // ----- statements -----

    /// Statements up to end of file, `}` or one of `stop`, with the `;`
    /// separators kept as tokens among them.
    fn statements(&mut self, out: &mut Vec<Node>, stop: &[&str]) -> Result<(), ParseError> {
        loop {
            while self.at("Semicolon") {
                out.push(self.bump());
            }
            if self.peek(0).is_none() || self.at("RBrace") || stop.contains(&self.kind(0)) {
                return Ok(());
            }
            out.push(self.statement()?);
            let ends = self.peek(0).is_none()
                || self.at("Semicolon")
                || self.at("RBrace")
                || stop.contains(&self.kind(0))
                || self.newline_before(0);
            if !ends {
                return Err(self.unexpected(self.offset(), "end of statement"));
            }
        }
    }

    fn statement(&mut self) -> Parsed {
        self.enter()?;
        let node = self.statement_inner();
        self.leave();
        node
    }

    fn statement_inner(&mut self) -> Parsed {
        match self.kind(0) {
            "At" => {
                let mut annotations = Vec::new();
                while self.at("At") {
                    annotations.push(self.annotation()?);
                }
                let statement = self.statement()?;
                Ok(match statement {
                    Node::Tree { kind, children } => {
                        annotations.extend(children);
                        Node::tree(kind, annotations)
                    }
                    token @ Node::Token { .. } => {
                        annotations.push(token);
                        Node::tree("ExpressionStmt", annotations)
                    }
                })
            }
            "Import" | "Package" => self.import(),
            "If" => self.if_statement(),
            "For" => self.for_statement(),
            "While" => {
                let mut c = vec![self.bump()];
                self.condition(&mut c)?;
                c.push(self.body()?);
                Ok(Node::tree("WhileStmt", c))
            }
            "Try" => self.try_statement(),
            "Switch" => self.switch_statement(),
            "Return" => {
                let mut c = vec![self.bump()];
                if self.starts_operand_here() {
                    c.push(self.expression()?);
                }
                Ok(Node::tree("ReturnStmt", c))
            }
            "Throw" => {
                let c = vec![self.bump(), self.expression()?];
                Ok(Node::tree("ThrowStmt", c))
            }
            "Break" => Ok(Node::tree("BreakStmt", vec![self.bump()])),
            "Continue" => Ok(Node::tree("ContinueStmt", vec![self.bump()])),
            "Assert" => {
                let mut c = vec![self.bump(), self.expression()?];
                if self.at("Colon") || self.at("Comma") {
                    c.push(self.bump());
                    c.push(self.expression()?);
                }
                Ok(Node::tree("AssertStmt", c))
            }
            "LBrace" => self.block(),
            "Class" | "Interface" | "Enum" | "Trait" => self.class_declaration(Vec::new()),
            "Def" => self.declaration(),
            k if MODIFIERS.contains(&k) => self.declaration(),
            "Identifier" if self.constructor_ahead() => self.declaration(),
            "Identifier" if self.declaration_ahead() => self.declaration(),
            _ => {
                let expression = self.assignment(true)?;
                Ok(Node::tree("ExpressionStmt", vec![expression]))
            }
        }
    }

    fn annotation(&mut self) -> Parsed {
        let mut c = vec![self.bump()];
        c.push(self.expect("Identifier", "an annotation name")?);
        while self.at("Dot") {
            c.push(self.bump());
            c.push(self.expect("Identifier", "a name")?);
        }
        if self.at_same_line("LParen") {
            self.arguments(&mut c)?;
        }
        Ok(Node::tree("Annotation", c))
    }

    fn import(&mut self) -> Parsed {
        let kind = if self.at("Import") {
            "ImportStmt"
        } else {
            "PackageStmt"
        };
        let mut c = vec![self.bump()];
        if self.at("Static") {
            c.push(self.bump());
        }
        c.push(self.name_token("a name")?);
        while self.at("Dot") {
            c.push(self.bump());
            if self.at("Star") {
                c.push(self.bump());
                break;
            }
            c.push(self.name_token("a name")?);
        }
        if self.at("As") {
            c.push(self.bump());
            c.push(self.expect("Identifier", "an alias")?);
        }
        Ok(Node::tree(kind, c))
    }

    /// `( expression )` of `if`, `while` and `switch`.
    fn condition(&mut self, c: &mut Vec<Node>) -> Result<(), ParseError> {
        c.push(self.expect("LParen", "`(`")?);
        let e = self.with_newlines(true, |p| p.expression())?;
        c.push(e);
        c.push(self.expect("RParen", "`)`")?);
        Ok(())
    }

    /// The body of `if`, `else`, `for` and `while`: a block or a statement.
    fn body(&mut self) -> Parsed {
        if self.peek(0).is_none() {
            return Err(self.unexpected(self.offset(), "a statement"));
        }
        self.statement()
    }

    fn block(&mut self) -> Parsed {
        let mut c = vec![self.expect("LBrace", "`{`")?];
        self.with_newlines(false, |p| p.statements(&mut c, &[]))?;
        c.push(self.expect("RBrace", "`}`")?);
        Ok(Node::tree("BlockStmt", c))
    }

    fn if_statement(&mut self) -> Parsed {
        let mut c = vec![self.bump()];
        self.condition(&mut c)?;
        c.push(self.body()?);
        if self.at("Else") {
            c.push(self.bump());
            c.push(self.body()?);
        }
        Ok(Node::tree("IfStmt", c))
    }

    fn for_statement(&mut self) -> Parsed {
        let mut c = vec![self.bump()];
        c.push(self.expect("LParen", "`(`")?);
        self.with_newlines(true, |p| {
            // `for (x in xs)`, `for (def x in xs)`, `for (String x : xs)`.
            let mut lookahead = 0;
            if p.at("Def") {
                lookahead = 1;
            } else if let Some(end) = p.type_end(0)
                && p.kind(end) == "Identifier"
            {
                lookahead = end;
            }
            let is_in = p.kind(lookahead) == "Identifier"
                && matches!(p.kind(lookahead + 1), "In" | "Colon");
            if is_in {
                if p.at("Def") {
                    c.push(p.bump());
                } else if lookahead > 0 {
                    c.push(p.type_ref()?);
                }
                c.push(p.bump());
                c.push(p.bump());
                c.push(p.expression()?);
            } else {
                if !p.at("Semicolon") {
                    if p.at("Def") || p.declaration_ahead() {
                        c.push(p.declaration()?);
                    } else {
                        c.push(p.expression_list()?);
                    }
                }
                c.push(p.expect("Semicolon", "`;`")?);
                if !p.at("Semicolon") {
                    c.push(p.expression()?);
                }
                c.push(p.expect("Semicolon", "`;`")?);
                if !p.at("RParen") {
                    c.push(p.expression_list()?);
                }
            }
            Ok(())
        })?;
        c.push(self.expect("RParen", "`)`")?);
        c.push(self.body()?);
        Ok(Node::tree("ForStmt", c))
    }

    /// `a, b++` in a classic `for`: one expression, or an `ExprList`.
    fn expression_list(&mut self) -> Parsed {
        let first = self.expression()?;
        if !self.at("Comma") {
            return Ok(first);
        }
        let mut c = vec![first];
        while self.at("Comma") {
            c.push(self.bump());
            c.push(self.expression()?);
        }
        Ok(Node::tree("ExprList", c))
    }

    fn try_statement(&mut self) -> Parsed {
        let mut c = vec![self.bump(), self.block()?];
        while self.at("Catch") {
            let mut clause = vec![self.bump()];
            clause.push(self.expect("LParen", "`(`")?);
            self.with_newlines(true, |p| {
                if p.kind(1) != "RParen" {
                    clause.push(p.type_ref()?);
                    while p.at("BitOr") {
                        clause.push(p.bump());
                        clause.push(p.type_ref()?);
                    }
                }
                clause.push(p.expect("Identifier", "a name")?);
                Ok(())
            })?;
            clause.push(self.expect("RParen", "`)`")?);
            clause.push(self.block()?);
            c.push(Node::tree("CatchClause", clause));
        }
        if self.at("Finally") {
            let clause = vec![self.bump(), self.block()?];
            c.push(Node::tree("FinallyClause", clause));
        }
        Ok(Node::tree("TryStmt", c))
    }

    fn switch_statement(&mut self) -> Parsed {
        let mut c = vec![self.bump()];
        self.condition(&mut c)?;
        c.push(self.expect("LBrace", "`{`")?);
        self.with_newlines(false, |p| {
            while p.at("Case") || p.at("Default") {
                let mut clause = vec![p.bump()];
                if clause
                    .first()
                    .is_some_and(|n| matches!(n, Node::Token { kind: "Case", .. }))
                {
                    clause.push(p.expression()?);
                }
                clause.push(p.expect("Colon", "`:`")?);
                p.statements(&mut clause, &["Case", "Default"])?;
                c.push(Node::tree("CaseClause", clause));
            }
            Ok(())
        })?;
        c.push(self.expect("RBrace", "`}`")?);
        Ok(Node::tree("SwitchStmt", c))
    }

    /// A capitalised or primitive type, then a name on the same line: the
    /// start of a declaration (`String name = …`, `void call(…) {`).
    fn declaration_ahead(&self) -> bool {
        match self.type_end(0) {
            Some(end) => {
                self.kind(end) == "Identifier" && self.peek(end).is_some_and(|t| !t.newline_before)
            }
            None => false,
        }
    }

    /// Where a type starting `ahead` tokens on would end: `Name`,
    /// `a.b.Name`, `Map<String, List<X>>`, `String[]`.
    fn type_end(&self, ahead: usize) -> Option<usize> {
        let first = self.peek(ahead)?;
        if first.kind != "Identifier" {
            return None;
        }
        let mut i = ahead + 1;
        let mut last = self.token_text(first);
        while self.kind(i) == "Dot" && self.kind(i + 1) == "Identifier" {
            last = self.peek(i + 1).map_or("", |t| self.token_text(t));
            i += 2;
        }
        let is_type = last.chars().next().is_some_and(char::is_uppercase)
            || (i == ahead + 1 && PRIMITIVES.contains(&last));
        if !is_type {
            return None;
        }
        if self.kind(i) == "Lt" {
            let mut open = 0_usize;
            loop {
                match self.kind(i) {
                    "Lt" => open += 1,
                    "Gt" => {
                        open = open.saturating_sub(1);
                        if open == 0 {
                            i += 1;
                            break;
                        }
                    }
                    "Identifier" | "Comma" | "Dot" | "Question" | "Super" => {}
                    _ => return None,
                }
                i += 1;
            }
        }
        while self.kind(i) == "LBracket" && self.kind(i + 1) == "RBracket" {
            i += 2;
        }
        Some(i)
    }

    fn type_ref(&mut self) -> Parsed {
        let Some(end) = self.type_end(0) else {
            // Lower-case or unusual names still make a one-token type.
            let name = self.expect("Identifier", "a type")?;
            return Ok(Node::tree("TypeRef", vec![name]));
        };
        let c = (0..end).map(|_| self.bump()).collect();
        Ok(Node::tree("TypeRef", c))
    }

    /// A member named like the class it is in, followed by `(`.
    fn constructor_ahead(&self) -> bool {
        self.kind(1) == "LParen"
            && self.peek(0).is_some_and(|t| {
                self.classes
                    .last()
                    .is_some_and(|name| name == self.token_text(t))
            })
    }

    /// `class Name extends Base implements A, B { members }` (also
    /// `interface`, `enum` with its constants first, and `trait`).
    fn class_declaration(&mut self, mut c: Vec<Node>) -> Parsed {
        let is_enum = self.at("Enum");
        c.push(self.bump());
        let name = self.expect("Identifier", "a class name")?;
        let class_name = match &name {
            Node::Token { start, end, .. } => self.text.get(*start..*end).unwrap_or(""),
            Node::Tree { .. } => "",
        }
        .to_owned();
        c.push(name);
        while self.at("Extends") || self.at("Implements") {
            c.push(self.bump());
            c.push(self.type_ref()?);
            while self.at("Comma") {
                c.push(self.bump());
                c.push(self.type_ref()?);
            }
        }
        c.push(self.expect("LBrace", "`{`")?);
        self.classes.push(class_name);
        let body = self.with_newlines(false, |p| {
            if is_enum {
                while p.at("Identifier") && !p.declaration_ahead() {
                    let mut constant = vec![p.bump()];
                    if p.at_same_line("LParen") {
                        p.arguments(&mut constant)?;
                    }
                    c.push(Node::tree("EnumConstant", constant));
                    if !p.at("Comma") {
                        break;
                    }
                    c.push(p.bump());
                }
            }
            p.statements(&mut c, &[])
        });
        self.classes.pop();
        body?;
        c.push(self.expect("RBrace", "`}`")?);
        Ok(Node::tree("ClassDecl", c))
    }

    /// `def x = 1`, `final String a, b`, `def name(args) { … }`; an
    /// abstract method has no body.
    fn declaration(&mut self) -> Parsed {
        let mut c = Vec::new();
        while MODIFIERS.contains(&self.kind(0)) {
            c.push(self.bump());
        }
        if matches!(self.kind(0), "Class" | "Interface" | "Enum" | "Trait") {
            return self.class_declaration(c);
        }
        if self.at("Def") {
            c.push(self.bump());
            if self.at_same_line("LParen") {
                return self.multiple_assignment(c);
            }
            if self.declaration_ahead() {
                c.push(self.type_ref()?);
            }
        } else if self.declaration_ahead() {
            c.push(self.type_ref()?);
        }
        let name = self.expect("Identifier", "a name")?;
        c.push(name);
        if self.at_same_line("LParen") {
            c.push(self.bump());
            self.with_newlines(true, |p| {
                while !p.at("RParen") {
                    c.push(p.parameter(true)?);
                    if !p.at("Comma") {
                        break;
                    }
                    c.push(p.bump());
                }
                Ok(())
            })?;
            c.push(self.expect("RParen", "`)`")?);
            if self.at("LBrace") {
                c.push(self.block()?);
            }
            return Ok(Node::tree("MethodDecl", c));
        }
        loop {
            if self.at("Assign") {
                c.push(self.bump());
                c.push(self.assignment(true)?);
            }
            if !self.at("Comma") {
                break;
            }
            c.push(self.bump());
            c.push(self.expect("Identifier", "a name")?);
        }
        Ok(Node::tree("VarDeclStmt", c))
    }

    /// `def (a, String b) = value`: the names in parentheses, then `=`.
    fn multiple_assignment(&mut self, mut c: Vec<Node>) -> Parsed {
        c.push(self.bump());
        self.with_newlines(true, |p| {
            loop {
                if p.declaration_ahead() {
                    c.push(p.type_ref()?);
                }
                c.push(p.expect("Identifier", "a name")?);
                if !p.at("Comma") {
                    return Ok(());
                }
                c.push(p.bump());
            }
        })?;
        c.push(self.expect("RParen", "`)`")?);
        c.push(self.expect("Assign", "`=`")?);
        c.push(self.assignment(true)?);
        Ok(Node::tree("VarDeclStmt", c))
    }

    /// A method or closure parameter: `x`, `def x`, `String x`, `x = 1`.
    fn parameter(&mut self, defaults: bool) -> Parsed {
        let mut c = Vec::new();
        while self.at("Final") {
            c.push(self.bump());
        }
        if self.at("Def") {
            c.push(self.bump());
        } else if self.kind(1) != "Comma"
            && self.kind(1) != "RParen"
            && self.kind(1) != "Arrow"
            && self.kind(1) != "Assign"
        {
            c.push(self.type_ref()?);
        }
        c.push(self.expect("Identifier", "a parameter name")?);
        if defaults && self.at("Assign") {
            c.push(self.bump());
            c.push(self.expression()?);
        }
        Ok(Node::tree("Param", c))
    }

    // ----- expressions -----

    fn expression(&mut self) -> Parsed {
        self.assignment(false)
    }

    /// Assignment (right-associative), then the conditional level. With
    /// `command`, the leftmost operand may be a command call.
    fn assignment(&mut self, command: bool) -> Parsed {
        self.enter()?;
        let result = (|| {
            let left = self.conditional(command)?;
            if ASSIGNMENTS.contains(&self.kind(0)) && !self.newline_before(0) {
                let op = self.bump();
                let right = self.assignment(true)?;
                return Ok(Node::tree("AssignExpr", vec![left, op, right]));
            }
            if self.shift_assign_ahead() {
                let op = self.joined("ShrAssign", 2);
                let right = self.assignment(true)?;
                return Ok(Node::tree("AssignExpr", vec![left, op, right]));
            }
            Ok(left)
        })();
        self.leave();
        result
    }

    fn conditional(&mut self, command: bool) -> Parsed {
        let cond = self.binary(0, command)?;
        if self.at_same_line("Question") {
            let mut c = vec![cond, self.bump()];
            c.push(self.expression()?);
            c.push(self.expect("Colon", "`:`")?);
            c.push(self.expression()?);
            return Ok(Node::tree("TernaryExpr", c));
        }
        if self.at_same_line("Elvis") {
            let c = vec![cond, self.bump(), self.expression()?];
            return Ok(Node::tree("ElvisExpr", c));
        }
        Ok(cond)
    }

    /// Adjacent `>` tokens starting here: `>>` or `>>>` as one operator.
    fn adjacent_gts(&self) -> usize {
        let mut n = 0;
        let mut end = None;
        while let Some(t) = self.peek(n) {
            if t.kind != "Gt" || end.is_some_and(|e| e != t.start) {
                break;
            }
            end = Some(t.end);
            n += 1;
        }
        n
    }

    fn shift_assign_ahead(&self) -> bool {
        matches!((self.peek(0), self.peek(1)), (Some(a), Some(b))
            if a.kind == "Gt" && b.kind == "GtEq" && a.end == b.start)
            && !self.newline_before(0)
    }

    /// One token of `kind` made of the next `count` tokens.
    fn joined(&mut self, kind: &'static str, count: usize) -> Node {
        let start = self.offset();
        let end = self.peek(count.saturating_sub(1)).map_or(start, |t| t.end);
        self.pos += count;
        Node::Token { kind, start, end }
    }

    /// The binary operator here and its precedence, if any.
    fn binary_operator(&self) -> Option<(usize, &'static str, usize)> {
        if self.newline_before(0) {
            return None;
        }
        let (kind, width) = match self.adjacent_gts() {
            0 => (self.kind(0), 1),
            1 => ("Gt", 1),
            2 => ("Shr", 2),
            _ => ("UnsignedShr", 3),
        };
        if kind == "Gt" && self.shift_assign_ahead() {
            return None;
        }
        BINARY
            .iter()
            .position(|level| level.contains(&kind))
            .map(|level| (level, kind, width))
    }

    /// Precedence climbing from `min` (an index into [`BINARY`]).
    fn binary(&mut self, min: usize, command: bool) -> Parsed {
        let mut left = self.unary(command)?;
        while let Some((level, kind, width)) = self.binary_operator() {
            if level < min {
                break;
            }
            let op = if width == 1 {
                self.bump()
            } else {
                self.joined(kind, width)
            };
            let right = if matches!(kind, "As" | "Instanceof") {
                self.type_ref()?
            } else {
                self.enter()?;
                let right = self.binary(level + 1, false);
                self.leave();
                right?
            };
            left = Node::tree("BinaryExpr", vec![left, op, right]);
        }
        Ok(left)
    }

    fn unary(&mut self, command: bool) -> Parsed {
        if matches!(
            self.kind(0),
            "Not" | "BitNot" | "Minus" | "Plus" | "Inc" | "Dec"
        ) {
            self.enter()?;
            let op = self.bump();
            let operand = self.unary(false);
            self.leave();
            return Ok(Node::tree("UnaryExpr", vec![op, operand?]));
        }
        if self.at("LParen") && self.cast_ahead() {
            self.enter()?;
            let result = (|| {
                let mut c = vec![self.bump(), self.type_ref()?];
                c.push(self.expect("RParen", "`)`")?);
                c.push(self.unary(false)?);
                Ok(Node::tree("CastExpr", c))
            })();
            self.leave();
            return result;
        }
        self.postfix(command)
    }

    /// `(Type) operand`: a parenthesised type followed on the same line by
    /// something that starts an operand.
    fn cast_ahead(&self) -> bool {
        let Some(end) = self.type_end(1) else {
            return false;
        };
        self.kind(end) == "RParen"
            && self
                .peek(end + 1)
                .is_some_and(|t| !t.newline_before && starts_operand(t.kind))
    }

    /// Whether the current token starts an expression on this line (for
    /// `return x`).
    fn starts_operand_here(&self) -> bool {
        !self.newline_before(0)
            && (starts_operand(self.kind(0))
                || matches!(
                    self.kind(0),
                    "Not" | "Minus" | "Plus" | "LBracket" | "LBrace"
                ))
    }

    fn postfix(&mut self, command: bool) -> Parsed {
        let mut e = self.primary()?;
        // A parenthesised call or closure call that a following closure
        // argument joins (`stage('x') { … }`, `foo { … } { … }`).
        let mut open_call = false;
        loop {
            match self.kind(0) {
                // A selector may start the next line (method chains).
                "Dot" | "SafeDot" | "SpreadDot" => {
                    let op = self.bump();
                    let name = self.name_token("a property name")?;
                    e = Node::tree("PropertyExpr", vec![e, op, name]);
                    open_call = false;
                }
                "MethodPointer" if !self.newline_before(0) => {
                    let op = self.bump();
                    let name = self.name_token("a method name")?;
                    e = Node::tree("MethodPointerExpr", vec![e, op, name]);
                    open_call = false;
                }
                "LParen" if !self.newline_before(0) => {
                    let mut c = vec![e];
                    self.enter()?;
                    let args = self.arguments(&mut c);
                    self.leave();
                    args?;
                    e = Node::tree("CallExpr", c);
                    open_call = true;
                }
                "LBrace" if !self.newline_before(0) && callable(&e) => {
                    self.enter()?;
                    let closure = self.closure();
                    self.leave();
                    let closure = closure?;
                    e = match e {
                        Node::Tree {
                            kind: "CallExpr",
                            mut children,
                        } if open_call => {
                            children.push(closure);
                            Node::tree("CallExpr", children)
                        }
                        other => Node::tree("CallExpr", vec![other, closure]),
                    };
                    open_call = true;
                }
                "LBracket" if !self.newline_before(0) => {
                    let mut c = vec![e, self.bump()];
                    self.enter()?;
                    let index = self.with_newlines(true, |p| p.expression_list());
                    self.leave();
                    c.push(index?);
                    c.push(self.expect("RBracket", "`]`")?);
                    e = Node::tree("IndexExpr", c);
                    open_call = false;
                }
                "Inc" | "Dec" if !self.newline_before(0) => {
                    e = Node::tree("PostfixExpr", vec![e, self.bump()]);
                    open_call = false;
                }
                _ => break,
            }
        }
        if command && command_head(&e) && self.starts_command_argument() {
            let mut c = vec![e];
            self.enter()?;
            let args = self.command_arguments(&mut c);
            self.leave();
            args?;
            return Ok(Node::tree("CallExpr", c));
        }
        Ok(e)
    }

    fn starts_command_argument(&self) -> bool {
        !self.newline_before(0) && starts_operand(self.kind(0))
    }

    /// The arguments of a call without parentheses: `a, key: b, c`.
    fn command_arguments(&mut self, c: &mut Vec<Node>) -> Result<(), ParseError> {
        loop {
            c.push(self.argument()?);
            if !self.at("Comma") {
                return Ok(());
            }
            c.push(self.bump());
        }
    }

    /// `( args )`, keeping the parentheses and commas.
    fn arguments(&mut self, c: &mut Vec<Node>) -> Result<(), ParseError> {
        c.push(self.expect("LParen", "`(`")?);
        self.with_newlines(true, |p| {
            while !p.at("RParen") {
                c.push(p.argument()?);
                if !p.at("Comma") {
                    break;
                }
                c.push(p.bump());
            }
            Ok(())
        })?;
        c.push(self.expect("RParen", "`)`")?);
        Ok(())
    }

    /// A positional argument, a named argument `key: value`, or a spread
    /// `*list`.
    fn argument(&mut self) -> Parsed {
        if self.key_ahead() {
            let c = vec![self.bump(), self.bump(), self.expression()?];
            return Ok(Node::tree("NamedArg", c));
        }
        if self.at("Star") {
            let c = vec![self.bump(), self.expression()?];
            return Ok(Node::tree("SpreadArg", c));
        }
        self.expression()
    }

    /// A key token (a name, keyword, string or number) followed by `:`.
    fn key_ahead(&self) -> bool {
        let key = self.kind(0);
        let is_key = KEY_TOKENS.contains(&key)
            || self.peek(0).is_some_and(|t| {
                super::lexer::keyword(self.token_text(t)).is_some_and(|k| k == t.kind)
            });
        is_key && self.kind(1) == "Colon"
    }

    /// A property or method name after `.`: any word, keywords included,
    /// or a quoted name.
    fn name_token(&mut self, what: &str) -> Parsed {
        let ok = self.peek(0).is_some_and(|t| {
            matches!(t.kind, "Identifier" | "StringLiteral" | "GStringFull")
                || super::lexer::keyword(self.token_text(t)).is_some()
        });
        if ok {
            Ok(self.bump())
        } else {
            Err(self.unexpected(self.offset(), what))
        }
    }

    fn primary(&mut self) -> Parsed {
        match self.kind(0) {
            "Identifier" => Ok(Node::tree("IdentExpr", vec![self.bump()])),
            "This" => Ok(Node::tree("ThisExpr", vec![self.bump()])),
            "Super" => Ok(Node::tree("SuperExpr", vec![self.bump()])),
            "StringLiteral"
            | "GStringFull"
            | "SlashyStringLit"
            | "DollarSlashyStringLit"
            | "IntLiteral"
            | "FloatLiteral"
            | "True"
            | "False"
            | "Null" => Ok(Node::tree("LiteralExpr", vec![self.bump()])),
            "GStringBegin" => self.gstring(),
            "LParen" => {
                self.enter()?;
                let result = (|| {
                    let mut c = vec![self.bump()];
                    let inner = self.with_newlines(true, |p| p.expression())?;
                    c.push(inner);
                    c.push(self.expect("RParen", "`)`")?);
                    Ok(Node::tree("ParenExpr", c))
                })();
                self.leave();
                result
            }
            "LBracket" => self.list_or_map(),
            "LBrace" => self.closure(),
            "New" => self.new_expression(),
            _ => Err(self.unexpected(self.offset(), "an expression")),
        }
    }

    /// `"text ${expr} more $name.path end"`: the string tokens with the
    /// interpolated expressions (and their braces) between them.
    fn gstring(&mut self) -> Parsed {
        let mut c = vec![self.bump()];
        loop {
            if self.at("LBrace") {
                c.push(self.bump());
                if !self.at("RBrace") {
                    self.enter()?;
                    let e = self.with_newlines(true, |p| p.expression());
                    self.leave();
                    c.push(e?);
                }
                c.push(self.expect("RBrace", "`}`")?);
            } else {
                let mut e = Node::tree("IdentExpr", vec![self.expect("Identifier", "a name")?]);
                while self.at("Dot") {
                    let dot = self.bump();
                    let name = self.expect("Identifier", "a name")?;
                    e = Node::tree("PropertyExpr", vec![e, dot, name]);
                }
                c.push(e);
            }
            match self.kind(0) {
                "GStringPart" => c.push(self.bump()),
                "GStringEnd" => {
                    c.push(self.bump());
                    return Ok(Node::tree("GStringExpr", c));
                }
                _ => return Err(self.unexpected(self.offset(), "the rest of the string")),
            }
        }
    }

    /// `[]`, `[a, b]`, `[:]`, `[k: v, …]`.
    fn list_or_map(&mut self) -> Parsed {
        self.enter()?;
        let result = self.with_newlines(true, |p| {
            let mut c = vec![p.bump()];
            if p.at("Colon") && p.kind(1) == "RBracket" {
                c.push(p.bump());
                c.push(p.bump());
                return Ok(Node::tree("MapExpr", c));
            }
            let is_map = p.key_ahead() || p.at("LParen") && p.map_key_in_parens();
            while !p.at("RBracket") {
                if is_map {
                    let key = if p.at("LParen") {
                        p.primary()?
                    } else {
                        p.bump()
                    };
                    let colon = p.expect("Colon", "`:`")?;
                    let value = p.expression()?;
                    c.push(Node::tree("MapEntry", vec![key, colon, value]));
                } else if p.at("Star") {
                    let spread = vec![p.bump(), p.expression()?];
                    c.push(Node::tree("SpreadArg", spread));
                } else {
                    c.push(p.expression()?);
                }
                if !p.at("Comma") {
                    break;
                }
                c.push(p.bump());
            }
            c.push(p.expect("RBracket", "`]`")?);
            Ok(Node::tree(if is_map { "MapExpr" } else { "ListExpr" }, c))
        });
        self.leave();
        result
    }

    /// `[(expr): value]`: a parenthesised key, found by its matching `)`
    /// followed by `:`.
    fn map_key_in_parens(&self) -> bool {
        let mut open = 0_usize;
        let mut i = 0;
        while let Some(t) = self.peek(i) {
            match t.kind {
                "LParen" => open += 1,
                "RParen" => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        return self.kind(i + 1) == "Colon";
                    }
                }
                _ => {}
            }
            i += 1;
        }
        false
    }

    /// `{ stmts }` or `{ a, b -> stmts }`.
    fn closure(&mut self) -> Parsed {
        let mut c = vec![self.expect("LBrace", "`{`")?];
        self.with_newlines(false, |p| {
            if p.closure_parameters_ahead() {
                while !p.at("Arrow") {
                    c.push(p.parameter(false)?);
                    if p.at("Comma") {
                        c.push(p.bump());
                    }
                }
                c.push(p.bump());
            }
            p.statements(&mut c, &[])
        })?;
        c.push(self.expect("RBrace", "`}`")?);
        Ok(Node::tree("ClosureExpr", c))
    }

    /// `->` after a parameter list: `(Type? name ,)* Type? name ->` or a
    /// bare `->`.
    fn closure_parameters_ahead(&self) -> bool {
        let mut i = 0;
        loop {
            if self.kind(i) == "Arrow" {
                return true;
            }
            if self.kind(i) == "Def" || self.kind(i) == "Final" {
                i += 1;
            } else if let Some(end) = self.type_end(i)
                && self.kind(end) == "Identifier"
            {
                i = end;
            }
            if self.kind(i) != "Identifier" {
                return false;
            }
            i += 1;
            match self.kind(i) {
                "Arrow" => return true,
                "Comma" => i += 1,
                _ => return false,
            }
        }
    }

    /// `new Type(args) { closure }` or `new Type[size]`.
    fn new_expression(&mut self) -> Parsed {
        self.enter()?;
        let result = (|| {
            let mut c = vec![self.bump(), self.type_ref()?];
            if self.at("LBracket") {
                c.push(self.bump());
                c.push(self.with_newlines(true, |p| p.expression())?);
                c.push(self.expect("RBracket", "`]`")?);
            } else {
                self.arguments(&mut c)?;
                if self.at_same_line("LBrace") {
                    c.push(self.closure()?);
                }
            }
            Ok(Node::tree("NewExpr", c))
        })();
        self.leave();
        result
    }
}

/// Token kinds that start an operand (and so a command argument).
fn starts_operand(kind: &str) -> bool {
    matches!(
        kind,
        "Identifier"
            | "StringLiteral"
            | "GStringBegin"
            | "GStringFull"
            | "SlashyStringLit"
            | "DollarSlashyStringLit"
            | "IntLiteral"
            | "FloatLiteral"
            | "True"
            | "False"
            | "Null"
            | "New"
            | "This"
            | "Super"
            | "LParen"
    )
}

/// A name or property that a command call's arguments can follow.
fn command_head(node: &Node) -> bool {
    matches!(
        node,
        Node::Tree {
            kind: "IdentExpr" | "PropertyExpr",
            ..
        }
    )
}

/// What a closure argument can follow: a name, a property or a call.
fn callable(node: &Node) -> bool {
    matches!(
        node,
        Node::Tree {
            kind: "IdentExpr" | "PropertyExpr" | "CallExpr",
            ..
        }
    )
}

use super::*;

fn tree(text: &str) -> serde_json::Value {
    let value = parse(text, Path::new("Jenkinsfile")).unwrap_or_else(|e| panic!("{e}"));
    serde_json::to_value(&value).unwrap_or_else(|e| panic!("{e}"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn command_call_has_conftest_shape() {
    assert_eq!(
        tree("sh 'echo ok'"),
        json(
            r#"{"kind":"FileNode","line":1,"column":1,"children":[{"kind":"ExpressionStmt","line":1,"column":1,"children":[{"kind":"CallExpr","line":1,"column":1,"children":[{"kind":"IdentExpr","line":1,"column":1,"children":[{"kind":"Identifier","text":"sh","line":1,"column":1}]},{"kind":"LiteralExpr","line":1,"column":4,"children":[{"kind":"StringLiteral","text":"'echo ok'","line":1,"column":4}]}]}]}]}"#
        )
    );
}

fn parse_error(text: &str) -> String {
    match parse(text, Path::new("Jenkinsfile")) {
        Ok(v) => panic!("parsed: {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn nesting_is_bounded_without_exhausting_the_stack() {
    let deep = |open: &str, close: &str, n: usize| open.repeat(n) + "1" + &close.repeat(n);
    assert_eq!(
        parse_error(&deep("(", ")", 256)),
        "Jenkinsfile: parse groovy: syntax tree exceeds maximum depth of 256"
    );
    // 250 parentheses make a tree 254 levels deep: accepted.
    assert!(parse(&deep("(", ")", 250), Path::new("J")).is_ok());
    for (open, close) in [
        ("(", ")"),
        ("f(", ")"),
        ("[", "]"),
        ("-", ""),
        ("{", "}"),
        ("\"${", "}\""),
    ] {
        for n in [1_000, 20_000] {
            assert_eq!(
                parse_error(&deep(open, close, n)),
                "Jenkinsfile: parse groovy: syntax tree exceeds maximum depth of 256",
                "{open}"
            );
        }
    }
}

/// The fixtures under `tests/formats/groovy/cases/`: each source file next
/// to the exact tree expected for it (`NAME.json`).
#[test]
fn fixtures_match_their_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/formats/groovy/cases");
    let mut checked = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_none_or(|x| x != "json"))
        .collect();
    entries.sort();
    for source in entries {
        let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{e}"));
        let expected = std::fs::read_to_string(source.with_file_name(format!(
            "{}.json",
            source.file_name().and_then(|n| n.to_str()).unwrap_or("")
        )))
        .unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        assert_eq!(tree(&text), json(&expected), "{}", source.display());
        checked.push(
            source
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert_eq!(
        checked,
        [
            "Jenkinsfile.declarative",
            "Jenkinsfile.scripted",
            "strings.groovy"
        ]
    );
}

/// A compact rendering for the construct tests below: one line per node,
/// `Kind line:col` for interior nodes and `Kind "text" line:col` for tokens.
fn outline(text: &str) -> String {
    fn walk(v: &serde_json::Value, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent);
        let kind = v["kind"].as_str().unwrap_or("?");
        let at = format!("{}:{}", v["line"], v["column"]);
        match v["children"].as_array() {
            Some(children) => {
                out.push_str(&format!("{pad}{kind} {at}\n"));
                for c in children {
                    walk(c, indent + 1, out);
                }
            }
            None => match v["text"].as_str() {
                Some(t) => out.push_str(&format!("{pad}{kind} {t:?} {at}\n")),
                None => out.push_str(&format!("{pad}{kind} {at}\n")),
            },
        }
    }
    let mut out = String::new();
    walk(&tree(text), 0, &mut out);
    out
}

#[test]
fn empty_file_is_a_bare_file_node() {
    assert_eq!(
        tree("// nothing but a comment\n/* and another */\n"),
        json(r#"{"kind":"FileNode","line":1,"column":1}"#)
    );
}

#[test]
fn closure_call_after_parenthesised_arguments() {
    assert_eq!(
        outline("stage('Build') {\n  sh 'make'\n}"),
        r#"FileNode 1:1
  ExpressionStmt 1:1
    CallExpr 1:1
      IdentExpr 1:1
        Identifier "stage" 1:1
      LParen "(" 1:6
      LiteralExpr 1:7
        StringLiteral "'Build'" 1:7
      RParen ")" 1:14
      ClosureExpr 1:16
        LBrace "{" 1:16
        ExpressionStmt 2:3
          CallExpr 2:3
            IdentExpr 2:3
              Identifier "sh" 2:3
            LiteralExpr 2:6
              StringLiteral "'make'" 2:6
        RBrace "}" 3:1
"#
    );
}

#[test]
fn command_call_with_named_arguments() {
    assert_eq!(
        outline("git url: u, branch: 'main'"),
        r#"FileNode 1:1
  ExpressionStmt 1:1
    CallExpr 1:1
      IdentExpr 1:1
        Identifier "git" 1:1
      NamedArg 1:5
        Identifier "url" 1:5
        Colon ":" 1:8
        IdentExpr 1:10
          Identifier "u" 1:10
      Comma "," 1:11
      NamedArg 1:13
        Identifier "branch" 1:13
        Colon ":" 1:19
        LiteralExpr 1:21
          StringLiteral "'main'" 1:21
"#
    );
}

#[test]
fn gstring_splits_around_interpolations() {
    assert_eq!(
        outline(r#"echo "a ${b} c $d.e f""#),
        r#"FileNode 1:1
  ExpressionStmt 1:1
    CallExpr 1:1
      IdentExpr 1:1
        Identifier "echo" 1:1
      GStringExpr 1:6
        GStringBegin "\"a $" 1:6
        LBrace "{" 1:10
        IdentExpr 1:11
          Identifier "b" 1:11
        RBrace "}" 1:12
        GStringPart " c $" 1:13
        PropertyExpr 1:17
          IdentExpr 1:17
            Identifier "d" 1:17
          Dot "." 1:18
          Identifier "e" 1:19
        GStringEnd " f\"" 1:20
"#
    );
}

#[test]
fn statements_end_at_line_breaks_but_method_chains_continue() {
    assert_eq!(
        outline("x = 1\n-2\nfoo\n  .bar()"),
        r#"FileNode 1:1
  ExpressionStmt 1:1
    AssignExpr 1:1
      IdentExpr 1:1
        Identifier "x" 1:1
      Assign "=" 1:3
      LiteralExpr 1:5
        IntLiteral "1" 1:5
  ExpressionStmt 2:1
    UnaryExpr 2:1
      Minus "-" 2:1
      LiteralExpr 2:2
        IntLiteral "2" 2:2
  ExpressionStmt 3:1
    CallExpr 3:1
      PropertyExpr 3:1
        IdentExpr 3:1
          Identifier "foo" 3:1
        Dot "." 4:3
        Identifier "bar" 4:4
      LParen "(" 4:7
      RParen ")" 4:8
"#
    );
}

#[test]
fn syntax_errors_name_their_position() {
    for (text, expected) in [
        (
            "pipeline {",
            "parse groovy at 1:11: unexpected end of file, expected `}`",
        ),
        (
            "pipeline {\n  stage('x' {\n",
            "parse groovy at 2:13: unexpected \"{\", expected `)`",
        ),
        (
            "echo \"cost $5\"",
            "parse groovy at 1:12: illegal string body character after dollar sign",
        ),
        (
            "sh 'open",
            "parse groovy at 1:4: unterminated string literal",
        ),
        (
            "x = (1",
            "parse groovy at 1:7: unexpected end of file, expected `)`",
        ),
        (
            "x = 1 2",
            "parse groovy at 1:7: unexpected \"2\", expected end of statement",
        ),
        (
            "do { x() } while (y)",
            "parse groovy at 1:1: unexpected \"do\", expected an expression",
        ),
    ] {
        assert_eq!(
            parse_error(text),
            format!("Jenkinsfile: {expected}"),
            "{text}"
        );
    }
}

#[test]
fn node_count_is_bounded() {
    let text = format!("x = [{}]", vec!["1"; 50_000].join(","));
    assert_eq!(
        parse_error(&text),
        "Jenkinsfile: parse groovy: syntax tree exceeds maximum node count of 100000"
    );
}

/// Every prefix of every fixture parses or fails with a positioned
/// message; none panics.
#[test]
fn truncated_input_fails_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/formats/groovy/cases");
    let text =
        std::fs::read_to_string(dir.join("Jenkinsfile.scripted")).unwrap_or_else(|e| panic!("{e}"));
    let mut failures = 0;
    for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
        if let Err(e) = parse(&text[..end], Path::new("J")) {
            let message = e.to_string();
            assert!(message.starts_with("J: parse groovy at "), "{message}");
            failures += 1;
        }
    }
    assert!(failures > text.len() / 2, "{failures}");
}

#[test]
fn multiple_assignment_declares_each_name() {
    assert_eq!(
        outline("def (os, jdk) = it"),
        r#"FileNode 1:1
  VarDeclStmt 1:1
    Def "def" 1:1
    LParen "(" 1:5
    Identifier "os" 1:6
    Comma "," 1:8
    Identifier "jdk" 1:10
    RParen ")" 1:13
    Assign "=" 1:15
    IdentExpr 1:17
      Identifier "it" 1:17
"#
    );
}

/// Fixture text with characters that matter to the grammar inserted,
/// deleted or replaced at pseudo-random places: every result is a tree or
/// a positioned error, never a panic (which would surface as "the parser
/// panicked").
#[test]
fn mutated_input_never_panics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/formats/groovy/cases");
    let mut seed = 0x2545_f491_u64;
    let mut next = move |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap_or(0) % bound.max(1)
    };
    let pieces = [
        "{", "}", "(", ")", "[", "]", "\"", "'", "$", "${", "/", "$/", "/$", "\n", ",", ":", "->",
        "?", ">", "<", "\\", "'''", "\"\"\"", "def ", "@", ".", "é",
    ];
    for name in [
        "Jenkinsfile.declarative",
        "Jenkinsfile.scripted",
        "strings.groovy",
    ] {
        let original = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..300 {
            let mut text = original.clone();
            for _ in 0..=next(3) {
                let mut at = next(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                match next(3) {
                    0 => text.insert_str(at, pieces[next(pieces.len())]),
                    1 => {
                        if let Some(c) = text[at..].chars().next() {
                            text.replace_range(at..at + c.len_utf8(), "");
                        }
                    }
                    _ => {
                        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                        text.replace_range(at..end, pieces[next(pieces.len())]);
                    }
                }
            }
            if let Err(e) = parse(&text, Path::new("J")) {
                let message = e.to_string();
                assert!(
                    message.starts_with("J: parse groovy at "),
                    "{message}\n{text}"
                );
            }
        }
    }
}

#[test]
fn classes_with_fields_constructors_and_methods() {
    assert_eq!(
        outline("class A extends B {\n  def x\n  A(x) { this.x = x }\n  abstract int n()\n}"),
        r#"FileNode 1:1
  ClassDecl 1:1
    Class "class" 1:1
    Identifier "A" 1:7
    Extends "extends" 1:9
    TypeRef 1:17
      Identifier "B" 1:17
    LBrace "{" 1:19
    VarDeclStmt 2:3
      Def "def" 2:3
      Identifier "x" 2:7
    MethodDecl 3:3
      Identifier "A" 3:3
      LParen "(" 3:4
      Param 3:5
        Identifier "x" 3:5
      RParen ")" 3:6
      BlockStmt 3:8
        LBrace "{" 3:8
        ExpressionStmt 3:10
          AssignExpr 3:10
            PropertyExpr 3:10
              ThisExpr 3:10
                This "this" 3:10
              Dot "." 3:14
              Identifier "x" 3:15
            Assign "=" 3:17
            IdentExpr 3:19
              Identifier "x" 3:19
        RBrace "}" 3:21
    MethodDecl 4:3
      Abstract "abstract" 4:3
      TypeRef 4:12
        Identifier "int" 4:12
      Identifier "n" 4:16
      LParen "(" 4:17
      RParen ")" 4:18
    RBrace "}" 5:1
"#
    );
}

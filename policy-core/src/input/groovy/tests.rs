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

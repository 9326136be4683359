//! The success-criteria expressions documented for the Invoke REST API gate, check and
//! task (azure-devops.md §1.3), evaluated against real answers of the running service.
//!
//! Azure Pipelines evaluates them with its condition-expression language, `root` being the
//! parsed JSON body. [`evaluate`] implements the part of that language criteria use:
//! literals (`'text'` with `''` for a quote, numbers, `true`/`false`, `null`), `root` with
//! `['key']` and `.key` access, and the functions `eq ne gt ge lt le and or not in notIn
//! contains startsWith endsWith`. As in Azure Pipelines, text compares ignoring case and the
//! right operand is converted to the type of the left one.

use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// Evaluates a success-criteria `expression` against a response `root`.
pub fn evaluate(expression: &str, root: &Value) -> Result<bool, String> {
    let mut parser = Parser {
        text: expression.as_bytes(),
        at: 0,
        root,
    };
    let value = parser.expression()?;
    parser.skip_space();
    if parser.at != parser.text.len() {
        return Err(format!("unexpected text at {}: {expression}", parser.at));
    }
    Ok(truthy(&value))
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    root: &'a Value,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.text.get(self.at) == Some(&byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", byte as char, self.at))
        }
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            self.at += 1;
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn string(&mut self) -> Result<String, String> {
        let mut out = Vec::new();
        loop {
            match self.text.get(self.at) {
                None => return Err("unterminated string".into()),
                Some(b'\'') if self.text.get(self.at + 1) == Some(&b'\'') => {
                    out.push(b'\'');
                    self.at += 2;
                }
                Some(b'\'') => {
                    self.at += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(byte) => {
                    out.push(*byte);
                    self.at += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        while self
            .text
            .get(self.at)
            .is_some_and(|b| b.is_ascii_digit() || *b == b'.' || *b == b'-')
        {
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.text[start..self.at]);
        text.parse::<f64>()
            .map(|n| json!(n))
            .map_err(|_| format!("bad number {text}"))
    }

    fn expression(&mut self) -> Result<Value, String> {
        self.skip_space();
        match self.text.get(self.at) {
            Some(b'\'') => {
                self.at += 1;
                self.string().map(Value::String)
            }
            Some(b) if b.is_ascii_digit() || *b == b'-' => self.number(),
            _ => {
                let name = self.word();
                match name.to_ascii_lowercase().as_str() {
                    "" => Err(format!("expected a value at {}", self.at)),
                    "true" => Ok(Value::Bool(true)),
                    "false" => Ok(Value::Bool(false)),
                    "null" => Ok(Value::Null),
                    "root" => self.accessors(),
                    function => self.call(function),
                }
            }
        }
    }

    fn accessors(&mut self) -> Result<Value, String> {
        let mut value = self.root.clone();
        loop {
            if self.eat(b'[') {
                let key = self.expression()?;
                self.expect(b']')?;
                value = match key {
                    Value::String(key) => value.get(&key).cloned().unwrap_or(Value::Null),
                    Value::Number(n) => n
                        .as_f64()
                        .and_then(|i| value.get(i as usize).cloned())
                        .unwrap_or(Value::Null),
                    other => return Err(format!("bad index {other}")),
                };
            } else if self.eat(b'.') {
                let key = self.word();
                value = value.get(&key).cloned().unwrap_or(Value::Null);
            } else {
                return Ok(value);
            }
        }
    }

    fn call(&mut self, function: &str) -> Result<Value, String> {
        self.expect(b'(')?;
        let mut args = Vec::new();
        if !self.eat(b')') {
            loop {
                args.push(self.expression()?);
                if self.eat(b')') {
                    break;
                }
                self.expect(b',')?;
            }
        }
        let arity = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("{function} takes {n} arguments"))
            }
        };
        let result = match function {
            "eq" => {
                arity(2)?;
                compare(&args[0], &args[1]) == Some(std::cmp::Ordering::Equal)
            }
            "ne" => {
                arity(2)?;
                compare(&args[0], &args[1]) != Some(std::cmp::Ordering::Equal)
            }
            "gt" | "ge" | "lt" | "le" => {
                arity(2)?;
                let ordering = compare(&args[0], &args[1]).ok_or("not comparable")?;
                match function {
                    "gt" => ordering.is_gt(),
                    "ge" => ordering.is_ge(),
                    "lt" => ordering.is_lt(),
                    _ => ordering.is_le(),
                }
            }
            "and" => args.iter().all(truthy),
            "or" => args.iter().any(truthy),
            "not" => {
                arity(1)?;
                !truthy(&args[0])
            }
            "in" | "notin" => {
                let found = args[1..]
                    .iter()
                    .any(|a| compare(&args[0], a) == Some(std::cmp::Ordering::Equal));
                found == (function == "in")
            }
            "contains" | "startswith" | "endswith" => {
                arity(2)?;
                let haystack = text(&args[0]).to_lowercase();
                let needle = text(&args[1]).to_lowercase();
                match function {
                    "contains" => haystack.contains(&needle),
                    "startswith" => haystack.starts_with(&needle),
                    _ => haystack.ends_with(&needle),
                }
            }
            other => return Err(format!("unknown function {other}")),
        };
        Ok(Value::Bool(result))
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => Some(0.0),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Null => Some(0.0),
        _ => None,
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// Compares `right` converted to the type of `left`, text ignoring case.
fn compare(left: &Value, right: &Value) -> Option<std::cmp::Ordering> {
    match left {
        Value::String(l) => Some(l.to_lowercase().cmp(&text(right).to_lowercase())),
        Value::Number(_) => number(left)?.partial_cmp(&number(right)?),
        Value::Bool(l) => Some(l.cmp(&truthy(right))),
        Value::Null => Some(if right.is_null() {
            std::cmp::Ordering::Equal
        } else {
            std::cmp::Ordering::Less
        }),
        _ => None,
    }
}

#[test]
fn the_evaluator_follows_the_expression_language() {
    let root =
        json!({"status": "Approved", "count": 1425, "data": {"status": "ok"}, "list": ["a"]});
    let cases = [
        ("eq(root['status'], 'approved')", true),
        ("eq(root['count'], '1425')", true),
        ("eq(root.data.status, 'OK')", true),
        ("eq(root['data']['status'], 'nope')", false),
        ("ne(root['status'], 'pending')", true),
        (
            "or(eq(root['status'], 'pending'), eq(root['status'], 'approved'))",
            true,
        ),
        (
            "and(eq(root['status'], 'approved'), gt(root['count'], 2000))",
            false,
        ),
        ("in(root['status'], 'rejected', 'approved')", true),
        ("notIn(root['status'], 'rejected', 'approved')", false),
        ("not(eq(root['missing'], 'x'))", true),
        ("eq(root['list'][0], 'a')", true),
        ("eq('it''s', 'IT''S')", true),
    ];
    for (expression, expected) in cases {
        assert_eq!(evaluate(expression, &root), Ok(expected), "{expression}");
    }
    assert!(evaluate("eq(root['status']", &root).is_err());
    assert!(evaluate("frobnicate(1)", &root).is_err());
}

/// Criteria a team may use, each with whether it should pass for an approved release.
const CRITERIA: [&str; 5] = [
    // The one the README and azure-pipelines.yml document.
    "eq(root['status'], 'approved')",
    "eq(root['approved'], true)",
    "or(eq(root['status'], 'approved'), eq(root['status'], 'skipped'))",
    "and(eq(root['status'], 'approved'), eq(root['approvals']['pending'], 0))",
    "in(root['status'], 'approved')",
];

fn passes(body: &Value) -> Vec<bool> {
    CRITERIA
        .iter()
        .map(|c| evaluate(c, body).expect("the criteria evaluate"))
        .collect()
}

#[tokio::test]
async fn the_documented_criteria_pass_only_once_the_release_is_approved() {
    let app = spawn_app().await;
    let request = json!({
        "ReleaseName": "Desafio-CD", "ReleaseId": 386, "TeamProject": "Devx",
        "Approvers": ["ana@example.com", "bo@example.com"]
    });

    let created: Value = app.post_release(&request).await.json().await.unwrap();
    assert_eq!(passes(&created), [false; 5], "a new release: {created}");

    let mails = app.smtp.wait_for(2).await;
    let polled: Value = app.post_release(&request).await.json().await.unwrap();
    assert_eq!(passes(&polled), [false; 5]);

    let first = app.decide(&mails[0].token(), "approve", None).await;
    assert_eq!(first.status(), 200);
    let half: Value = app.get_release("Devx", "386").await.json().await.unwrap();
    assert_eq!(passes(&half), [false; 5], "one of two approvals: {half}");

    let second = app.decide(&mails[1].token(), "approve", None).await;
    assert_eq!(second.status(), 200);
    let by_post: Value = app.post_release(&request).await.json().await.unwrap();
    let by_get: Value = app.get_release("Devx", "386").await.json().await.unwrap();
    assert_eq!(passes(&by_post), [true; 5], "approved: {by_post}");
    assert_eq!(passes(&by_get), [true; 5], "approved: {by_get}");
}

#[tokio::test]
async fn a_rejected_release_never_passes_the_criteria() {
    let app = spawn_app().await;
    let request = json!({
        "ReleaseName": "Desafio-CD", "ReleaseId": "387", "TeamProject": "Devx",
        "Approvers": ["ana@example.com"]
    });
    app.post_release(&request).await;
    let mails = app.smtp.wait_for(1).await;
    assert_eq!(
        app.decide(&mails[0].token(), "reject", Some("not today"))
            .await
            .status(),
        200
    );
    let rejected: Value = app.post_release(&request).await.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(passes(&rejected), [false; 5]);
    assert_eq!(
        evaluate("eq(root['status'], 'rejected')", &rejected),
        Ok(true)
    );
}

//! The subset of Kubernetes JSONPath (`k8s.io/client-go/util/jsonpath`) that printer
//! columns and selectable fields use: `.a.b`, `['key']`, `[0]`, `[-1]`, `[*]`, `..name`
//! and filters `[?(@.type=="Ready")]` with `==`/`!=` against a literal.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Recursive(String),
    Filter {
        path: Vec<Step>,
        op: String,
        literal: Option<Value>,
    },
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `.spec.replicas`, `{.spec.replicas}` and friends.
    pub fn parse(s: &str) -> Result<JsonPath, String> {
        let s = s.trim();
        let s = s
            .strip_prefix('{')
            .and_then(|x| x.strip_suffix('}'))
            .unwrap_or(s);
        let s = s.strip_prefix('$').unwrap_or(s);
        parse_steps(s).map(JsonPath)
    }

    /// Every value the path selects, in document order.
    pub fn find<'a>(&self, v: &'a Value) -> Vec<&'a Value> {
        let mut cur = vec![v];
        for step in &self.0 {
            cur = cur.into_iter().flat_map(|x| apply(step, x)).collect();
        }
        cur
    }
}

fn parse_steps(mut s: &str) -> Result<Vec<Step>, String> {
    let mut steps = vec![];
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix("..") {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            steps.push(Step::Recursive(rest[..end].to_string()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('.') {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end > 0 {
                steps.push(Step::Field(rest[..end].to_string()));
            }
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let end = closing(rest).ok_or_else(|| format!("unterminated array index in {s:?}"))?;
            steps.push(bracket(rest[..end].trim())?);
            s = &rest[end + 1..];
        } else {
            let end = s.find(['.', '[']).unwrap_or(s.len());
            steps.push(Step::Field(s[..end].to_string()));
            s = &s[end..];
        }
    }
    Ok(steps)
}

/// The index of the `]` closing a bracket, skipping quoted text and nested brackets.
fn closing(s: &str) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') if depth == 0 => return Some(i),
            (None, ']') => depth -= 1,
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    s.strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| s.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
}

fn bracket(inner: &str) -> Result<Step, String> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(key) = unquote(inner) {
        return Ok(Step::Field(key.to_string()));
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
        return filter(f.trim());
    }
    inner
        .parse::<i64>()
        .map(Step::Index)
        .map_err(|_| format!("invalid array index {inner}"))
}

fn filter(f: &str) -> Result<Step, String> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((lhs, rhs)) = f.split_once(op) {
            let path = parse_steps(lhs.trim().strip_prefix('@').unwrap_or(lhs.trim()))?;
            let rhs = rhs.trim();
            let literal = match unquote(rhs) {
                Some(s) => Value::String(s.to_string()),
                None => serde_json::from_str(rhs)
                    .map_err(|_| format!("unrecognized filter literal {rhs}"))?,
            };
            return Ok(Step::Filter {
                path,
                op: op.to_string(),
                literal: Some(literal),
            });
        }
    }
    let path = parse_steps(f.strip_prefix('@').unwrap_or(f))?;
    Ok(Step::Filter {
        path,
        op: String::new(),
        literal: None,
    })
}

fn apply<'a>(step: &Step, v: &'a Value) -> Vec<&'a Value> {
    match step {
        Step::Field(k) => v.get(k.as_str()).into_iter().collect(),
        Step::Index(i) => {
            let Some(a) = v.as_array() else { return vec![] };
            let i = if *i < 0 { a.len() as i64 + i } else { *i };
            usize::try_from(i)
                .ok()
                .and_then(|i| a.get(i))
                .into_iter()
                .collect()
        }
        Step::Wildcard => match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(o) => o.values().collect(),
            _ => vec![],
        },
        Step::Recursive(k) => {
            let mut out = vec![];
            recurse(k, v, &mut out);
            out
        }
        Step::Filter { path, op, literal } => {
            let Some(a) = v.as_array() else { return vec![] };
            let sub = JsonPath(path.clone());
            a.iter()
                .filter(|item| {
                    let found = sub.find(item);
                    match literal {
                        None => !found.is_empty(),
                        Some(l) => found.first().is_some_and(|x| compare(x, op, l)),
                    }
                })
                .collect()
        }
    }
}

fn compare(x: &Value, op: &str, l: &Value) -> bool {
    match op {
        "==" => x == l,
        "!=" => x != l,
        _ => match (x.as_f64(), l.as_f64()) {
            (Some(a), Some(b)) => match op {
                "<" => a < b,
                ">" => a > b,
                "<=" => a <= b,
                _ => a >= b,
            },
            _ => false,
        },
    }
}

fn recurse<'a>(k: &str, v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(x) = o.get(k) {
                out.push(x);
            }
            o.values().for_each(|x| recurse(k, x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| recurse(k, x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_values() {
        let obj = json!({"spec": {"replicas": 3, "list": [1, 2], "a.b": "dotted"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        let find = |p: &str| -> Vec<Value> {
            JsonPath::parse(p)
                .unwrap()
                .find(&obj)
                .into_iter()
                .cloned()
                .collect()
        };
        assert_eq!(find(".spec.replicas"), [json!(3)]);
        assert_eq!(find("{.spec.list[-1]}"), [json!(2)]);
        assert_eq!(find(".spec['a.b']"), [json!("dotted")]);
        assert_eq!(find(".spec.list[*]"), [json!(1), json!(2)]);
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#),
            [json!("True")]
        );
        assert_eq!(
            find("..status"),
            [
                json!({"conditions": obj["status"]["conditions"]}),
                json!("True"),
                json!("False")
            ]
        );
        assert!(find(".spec.missing").is_empty());
    }
}

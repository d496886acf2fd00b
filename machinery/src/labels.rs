//! Label selectors: the `?labelSelector=` string syntax (equality and set-based, every
//! operator upstream accepts) and the `metav1.LabelSelector` object form, both compiled into
//! one [`Selector`] that matches a label map.

use serde_json::{Map, Value};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    Exists(String),
    DoesNotExist(String),
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A conjunction of requirements; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selector {
    pub requirements: Vec<Requirement>,
}

/// Label values as the object carries them (`metadata.labels`).
pub type Labels = Map<String, Value>;

fn label<'a>(labels: &'a Labels, key: &str) -> Option<&'a str> {
    labels.get(key).and_then(Value::as_str)
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Self::Exists(k) => labels.contains_key(k),
            Self::DoesNotExist(k) => !labels.contains_key(k),
            Self::Equals(k, v) => label(labels, k) == Some(v.as_str()),
            Self::NotEquals(k, v) => label(labels, k) != Some(v.as_str()),
            Self::In(k, vs) => label(labels, k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Self::NotIn(k, vs) => label(labels, k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Self::GreaterThan(k, n) => label(labels, k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Self::LessThan(k, n) => label(labels, k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        }
    }

    fn key(&self) -> &str {
        match self {
            Self::Exists(k)
            | Self::DoesNotExist(k)
            | Self::Equals(k, _)
            | Self::NotEquals(k, _)
            | Self::In(k, _)
            | Self::NotIn(k, _)
            | Self::GreaterThan(k, _)
            | Self::LessThan(k, _) => k,
        }
    }
}

impl Selector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches an object by its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        if self.is_empty() {
            return true;
        }
        let empty = Map::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }

    /// Parses the string form, e.g. `app=web,tier in (a,b),!canary`.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut p = Parser {
            s: input.as_bytes(),
            pos: 0,
            src: input,
        };
        let mut requirements = Vec::new();
        p.skip_ws();
        if p.at_end() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(p.requirement()?);
            p.skip_ws();
            if p.at_end() {
                break;
            }
            p.expect(b',')?;
        }
        // upstream sorts requirements by key; matching is order-independent
        requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(Self { requirements })
    }

    /// Compiles a `metav1.LabelSelector` (`matchLabels` + `matchExpressions`).
    /// `None`/null matches nothing upstream for most callers; that choice is the caller's.
    pub fn from_label_selector(sel: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("matchLabels[{k}] must be a string"))?;
                requirements.push(Requirement::Equals(k.clone(), v.to_string()));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let req = match op {
                    "In" if !values.is_empty() => Requirement::In(key, values),
                    "NotIn" if !values.is_empty() => Requirement::NotIn(key, values),
                    "Exists" if values.is_empty() => Requirement::Exists(key),
                    "DoesNotExist" if values.is_empty() => Requirement::DoesNotExist(key),
                    "In" | "NotIn" => {
                        return Err("for 'in', 'notin' operators, values set can't be empty".into());
                    }
                    "Exists" | "DoesNotExist" => {
                        return Err("values set must be empty for exists and does not exist".into());
                    }
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                };
                requirements.push(req);
            }
        }
        requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(Self { requirements })
    }
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "unable to parse requirement: found '{}', expected: '{}'",
                self.rest_token(),
                c as char
            ))
        }
    }
    fn rest_token(&self) -> String {
        self.src
            .get(self.pos..)
            .unwrap_or("")
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ',')
            .collect()
    }
    /// A key or value: anything but whitespace, operators, commas and parentheses.
    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_whitespace() || b"=!,()<>".contains(&c) {
                break;
            }
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or("").to_string()
    }
    fn requirement(&mut self) -> Result<Requirement, String> {
        self.skip_ws();
        if self.peek() == Some(b'!') {
            self.pos += 1;
            let key = self.word();
            validate_key(&key)?;
            return Ok(Requirement::DoesNotExist(key));
        }
        let key = self.word();
        if key.is_empty() {
            return Err(format!(
                "found '{}', expected: !, identifier, or 'end of string'",
                self.rest_token()
            ));
        }
        validate_key(&key)?;
        self.skip_ws();
        let rest = &self.s[self.pos..];
        let (op, len) = if rest.starts_with(b"==") {
            ("=", 2)
        } else if rest.starts_with(b"!=") {
            ("!=", 2)
        } else if rest.starts_with(b"=") {
            ("=", 1)
        } else if rest.starts_with(b">") {
            (">", 1)
        } else if rest.starts_with(b"<") {
            ("<", 1)
        } else if rest.starts_with(b"notin")
            && rest
                .get(5)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'(')
        {
            ("notin", 5)
        } else if rest.starts_with(b"in")
            && rest
                .get(2)
                .is_none_or(|c| c.is_ascii_whitespace() || *c == b'(')
        {
            ("in", 2)
        } else if rest.is_empty() || rest.starts_with(b",") {
            return Ok(Requirement::Exists(key));
        } else {
            return Err(format!(
                "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                self.rest_token()
            ));
        };
        self.pos += len;
        match op {
            "in" | "notin" => {
                self.expect(b'(')?;
                let mut values = Vec::new();
                loop {
                    let v = self.word();
                    validate_value(&v)?;
                    values.push(v);
                    self.skip_ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b')') => {
                            self.pos += 1;
                            break;
                        }
                        _ => {
                            return Err(format!(
                                "found '{}', expected: ',', or ')'",
                                self.rest_token()
                            ));
                        }
                    }
                }
                values.sort();
                values.dedup();
                Ok(if op == "in" {
                    Requirement::In(key, values)
                } else {
                    Requirement::NotIn(key, values)
                })
            }
            ">" | "<" => {
                let v = self.word();
                let n: i64 = v.parse().map_err(|_| {
                    "for 'Gt', 'Lt' operators, the value must be an integer".to_string()
                })?;
                Ok(if op == ">" {
                    Requirement::GreaterThan(key, n)
                } else {
                    Requirement::LessThan(key, n)
                })
            }
            _ => {
                let v = self.word();
                validate_value(&v)?;
                Ok(if op == "=" {
                    Requirement::Equals(key, v)
                } else {
                    Requirement::NotEquals(key, v)
                })
            }
        }
    }
}

fn validate_key(key: &str) -> Result<(), String> {
    let errs = crate::names::is_qualified_name(key);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("key: Invalid value: {key:?}: {}", errs.join("; ")))
    }
}

fn validate_value(v: &str) -> Result<(), String> {
    let errs = crate::names::is_valid_label_value(v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "values[0]: Invalid value: {v:?}: {}",
            errs.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Labels {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn parses_every_operator() {
        let s = Selector::parse("app=web, tier in (a, b),!canary,env!=prod,track,x notin (y),n>3")
            .expect("parse");
        assert_eq!(s.requirements.len(), 7);
        let l = labels(json!({"app":"web","tier":"b","track":"1","env":"dev","n":"4"}));
        assert!(s.matches(&l));
        let l2 = labels(json!({"app":"web","tier":"c","track":"1","n":"4"}));
        assert!(!s.matches(&l2));
        assert!(Selector::parse("").expect("empty").is_empty());
        assert!(
            Selector::parse("app==web")
                .expect("==")
                .matches(&labels(json!({"app":"web"})))
        );
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(Selector::parse("app in (a").is_err());
        assert!(Selector::parse("app=web,,").is_err());
        assert!(Selector::parse("a=-bad-").is_err());
    }

    #[test]
    fn label_selector_object() {
        let s = Selector::from_label_selector(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]
        }))
        .expect("ok");
        assert!(s.matches(&labels(json!({"app":"web","tier":"a"}))));
        assert!(!s.matches(&labels(json!({"app":"web"}))));
        assert!(
            Selector::from_label_selector(
                &json!({"matchExpressions":[{"key":"a","operator":"In"}]})
            )
            .is_err()
        );
    }
}

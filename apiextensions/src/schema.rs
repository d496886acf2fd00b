//! The compiled form of a CRD version's `openAPIV3Schema`: one [`Schema`] node per
//! schema object, with its patterns and CEL rules compiled once. Owns parsing only;
//! what the nodes mean for objects lives in `prune`, `defaults`, `validate` and `cel`.

use machinery::FieldError;
use regex::Regex;
use serde_json::Value;

use crate::cel::Rule;

/// One node of a structural schema (upstream's `structuralschema.Structural` plus the
/// value validations kube-openapi checks).
#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub type_: String,
    pub format: String,
    pub nullable: bool,
    pub properties: Vec<(String, Schema)>,
    /// `additionalProperties` (a schema; `true` becomes a schema preserving unknowns).
    pub additional: Option<Box<Schema>>,
    pub items: Option<Box<Schema>>,
    pub required: Vec<String>,
    pub enum_: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: Option<(String, Regex)>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    pub preserve_unknown: bool,
    pub embedded: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub rules: Vec<Rule>,
}

impl Schema {
    /// The schema of property `k`, or of `additionalProperties`.
    pub fn child(&self, k: &str) -> Option<&Schema> {
        self.property(k).or(self.additional.as_deref())
    }

    pub fn property(&self, k: &str) -> Option<&Schema> {
        self.properties.iter().find(|(n, _)| n == k).map(|(_, s)| s)
    }

    /// Parses `v`; problems (bad patterns, CEL rules that do not compile) are reported
    /// under `path`, the upstream CRD path of this node.
    pub fn parse(v: &Value, path: &str, errs: &mut Vec<FieldError>) -> Schema {
        let Some(o) = v.as_object() else {
            return Schema::default();
        };
        let str_ = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let bool_ = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
        let int = |k: &str| o.get(k).and_then(Value::as_i64);
        let num = |k: &str| o.get(k).and_then(Value::as_f64);
        let mut s = Schema {
            type_: str_("type"),
            format: str_("format"),
            nullable: bool_("nullable"),
            required: strings(o.get("required")),
            enum_: o.get("enum").and_then(Value::as_array).cloned(),
            default: o.get("default").cloned(),
            maximum: num("maximum"),
            exclusive_maximum: bool_("exclusiveMaximum"),
            minimum: num("minimum"),
            exclusive_minimum: bool_("exclusiveMinimum"),
            multiple_of: num("multipleOf"),
            max_length: int("maxLength"),
            min_length: int("minLength"),
            max_items: int("maxItems"),
            min_items: int("minItems"),
            unique_items: bool_("uniqueItems"),
            max_properties: int("maxProperties"),
            min_properties: int("minProperties"),
            preserve_unknown: bool_("x-kubernetes-preserve-unknown-fields"),
            embedded: bool_("x-kubernetes-embedded-resource"),
            int_or_string: bool_("x-kubernetes-int-or-string"),
            list_type: o
                .get("x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(String::from),
            list_map_keys: strings(o.get("x-kubernetes-list-map-keys")),
            ..Schema::default()
        };
        if let Some(p) = o.get("pattern").and_then(Value::as_str) {
            match Regex::new(p) {
                Ok(re) => s.pattern = Some((p.to_string(), re)),
                Err(e) => errs.push(FieldError::invalid(
                    format!("{path}.pattern"),
                    Value::String(p.into()),
                    format!("must be a valid regular expression, but isn't: {e}"),
                )),
            }
        }
        if let Some(props) = o.get("properties").and_then(Value::as_object) {
            for (k, p) in props {
                let child = Schema::parse(p, &format!("{path}.properties[{k}]"), errs);
                s.properties.push((k.clone(), child));
            }
        }
        match o.get("additionalProperties") {
            Some(Value::Bool(true)) => {
                s.additional = Some(Box::new(Schema {
                    preserve_unknown: true,
                    ..Schema::default()
                }))
            }
            Some(a @ Value::Object(_)) => {
                let p = format!("{path}.additionalProperties");
                s.additional = Some(Box::new(Schema::parse(a, &p, errs)));
            }
            _ => {}
        }
        if let Some(i) = o.get("items").filter(|i| i.is_object()) {
            s.items = Some(Box::new(Schema::parse(i, &format!("{path}.items"), errs)));
        }
        let list = |k: &str, errs: &mut Vec<FieldError>| -> Vec<Schema> {
            let items = o
                .get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let parse =
                |(i, x): (usize, &Value)| Schema::parse(x, &format!("{path}.{k}[{i}]"), errs);
            items.iter().enumerate().map(parse).collect()
        };
        s.all_of = list("allOf", errs);
        s.any_of = list("anyOf", errs);
        s.one_of = list("oneOf", errs);
        if let Some(n) = o.get("not").filter(|n| n.is_object()) {
            s.not = Some(Box::new(Schema::parse(n, &format!("{path}.not"), errs)));
        }
        if let Some(rules) = o.get("x-kubernetes-validations").and_then(Value::as_array) {
            for (i, r) in rules.iter().enumerate() {
                let p = format!("{path}.x-kubernetes-validations[{i}]");
                if let Some(rule) = Rule::compile(r, &p, errs) {
                    s.rules.push(rule);
                }
            }
        }
        s
    }

    /// The type name upstream's CEL errors show as the value (`"object"`, `"string"`).
    pub fn type_name(&self) -> &str {
        if self.type_.is_empty() && self.int_or_string {
            return "";
        }
        &self.type_
    }
}

pub(crate) fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_nested_nodes() {
        let mut errs = vec![];
        let s = Schema::parse(
            &json!({"type": "object", "properties": {"spec": {"type": "object",
                "additionalProperties": {"type": "string"}}}}),
            "openAPIV3Schema",
            &mut errs,
        );
        assert!(errs.is_empty());
        let spec = s.property("spec").unwrap();
        assert_eq!(spec.child("anything").unwrap().type_, "string");
    }

    #[test]
    fn reports_bad_patterns_at_their_path() {
        let mut errs = vec![];
        Schema::parse(
            &json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}),
            "openAPIV3Schema",
            &mut errs,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "openAPIV3Schema.properties[a].pattern");
        assert!(
            errs[0]
                .detail
                .starts_with("must be a valid regular expression, but isn't: ")
        );
    }
}

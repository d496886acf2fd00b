//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) without I/O: what the API
//! server needs to serve custom resources as upstream's apiextensions-apiserver does.
//!
//! - [`Structural`]: a version's compiled schema, which prunes, defaults and validates
//!   custom resources (OpenAPI value validation and CEL `x-kubernetes-validations`).
//! - [`default_crd`], [`validate_crd`], [`validate_crd_update`]: the CRD strategy's rules.
//! - [`columns_for_version`] and [`cell`]: `kubectl get` columns of custom resources.
//! - [`selectable_field_value`]: the values `selectableFields` field selectors match.
//!
//! Errors are [`machinery::FieldError`]s with upstream's paths and wording.

mod cel;
mod columns;
mod crd;
mod crd_defaults;
mod defaults;
mod formats;
mod gofmt;
mod jsonpath;
mod prune;
mod schema;
mod structural;
mod validate;

use machinery::FieldError;
use serde_json::Value;

pub use cel::{env as cel_env, to_cel as json_to_cel};
pub use columns::{Column, cell, columns_for_version, selectable_field_value};
pub use crd::{validate_crd, validate_crd_update};
pub use crd_defaults::{default_crd, prepare_crd_for_create};

/// A compiled structural schema of one CRD version (its `openAPIV3Schema`).
#[derive(Debug, Clone)]
pub struct Structural {
    root: schema::Schema,
}

impl Structural {
    /// Compiles `open_api_v3_schema`: patterns and CEL rules. Errors name paths below
    /// `openAPIV3Schema`. Structural-ness itself is checked by [`validate_crd`].
    pub fn new(open_api_v3_schema: &Value) -> Result<Structural, Vec<FieldError>> {
        let mut errs = vec![];
        let root = schema::Schema::parse(open_api_v3_schema, "openAPIV3Schema", &mut errs);
        if errs.is_empty() {
            Ok(Structural { root })
        } else {
            Err(errs)
        }
    }

    /// Removes the fields the schema does not specify and returns their paths, sorted,
    /// as upstream reports them in `unknown field "<path>"` warnings and errors (e.g.
    /// `spec.foo`, `spec.items[0].bar`). `apiVersion`, `kind` and `metadata` are kept at
    /// the root and in embedded resources.
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut dropped = vec![];
        prune::prune(obj, Some(&self.root), true, "", &mut dropped);
        dropped.sort();
        dropped
    }

    /// Applies `default`s. Upstream decodes, prunes, then defaults: call [`Self::prune`]
    /// first. Nulls of non-nullable fields without a default are dropped first (upstream
    /// does this as part of pruning; it is done here so defaulting alone is complete).
    pub fn default(&self, obj: &mut Value) {
        defaults::prune_nulls(obj, &self.root);
        defaults::default(obj, &self.root);
    }

    /// Validates a new object: OpenAPI value validation, list-type uniqueness, then the
    /// CEL rules (skipped, as upstream does, when an earlier error is a blocking one).
    pub fn validate(&self, obj: &Value) -> Vec<FieldError> {
        self.run(obj, None)
    }

    /// Validates an update: as [`Self::validate`] plus transition rules (`oldSelf`),
    /// which run only where the old object has a correlated value (same property path,
    /// same `map` list key) unless `optionalOldSelf` is set. Ratcheting: rules without
    /// `oldSelf` are not re-checked on values the update leaves unchanged, and list-type
    /// uniqueness is only enforced when the old object satisfied it. OpenAPI value
    /// errors are not ratcheted.
    pub fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldError> {
        self.run(obj, Some(old))
    }

    fn run(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut out = validate::Out::default();
        validate::validate(&self.root, obj, "", &mut out);
        let mut errs = out.errs;
        let mut old_list_errs = vec![];
        if let Some(old) = old {
            validate::list_sets_and_maps(&self.root, old, "", &mut old_list_errs);
        }
        if old_list_errs.is_empty() {
            validate::list_sets_and_maps(&self.root, obj, "", &mut errs);
        }
        if out.blocking {
            errs.push(FieldError::invalid(
                "<nil>",
                Value::Null,
                "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ));
        } else {
            cel::validate(&self.root, obj, old, old.is_some(), "", &mut errs);
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn structural_is_shareable() {
        assert_send_sync::<Structural>();
    }

    #[test]
    fn blocking_errors_skip_cel() {
        let s = Structural::new(
            &json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.n > 0"}]}}}),
        )
        .unwrap();
        let msgs: Vec<String> = s
            .validate(&json!({"spec": {"n": "x"}}))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            msgs,
            [
                r#"spec.n: Invalid value: "string": spec.n in body must be of type integer: "string""#,
                "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"
            ]
        );
        let msgs: Vec<String> = s
            .validate(&json!({"spec": {"n": 0}}))
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            msgs,
            [r#"spec: Invalid value: "object": failed rule: self.n > 0"#]
        );
    }

    #[test]
    fn prune_then_default() {
        let s = Structural::new(
            &json!({"type": "object", "properties": {"spec": {"type": "object",
            "properties": {"n": {"type": "integer", "default": 1}}}}}),
        )
        .unwrap();
        let mut obj = json!({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}, "spec": {"junk": 1}});
        assert_eq!(s.prune(&mut obj), ["spec.junk"]);
        s.default(&mut obj);
        assert_eq!(obj["spec"], json!({"n": 1}));
    }
}

//! List: label and field selectors, `limit`/`continue` at a fixed revision, and the
//! `resourceVersion`/`resourceVersionMatch` rules upstream applies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use machinery::ApiError;
use machinery::fields::{FieldSelector, field_value};
use machinery::labels::Selector;
use machinery::resource::ResourceInfo;
use serde_json::{Value, json};

use super::{Rest, prefix, storage_error};
use crate::storage::{ListResult, ReadAt};

/// `resourceVersionMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceVersionMatch {
    NotOlderThan,
    Exact,
}

/// Parsed list parameters.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Selector,
    pub field_selector: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<ResourceVersionMatch>,
}

/// Whether `field` may be used in a field selector on `res`.
pub fn selectable(res: &ResourceInfo, field: &str) -> bool {
    matches!(field, "metadata.name" | "metadata.namespace")
        || res.selectable_fields.iter().any(|f| f == field)
}

/// Whether an object passes both selectors.
pub fn matches(opts: &ListOptions, obj: &Value) -> bool {
    opts.label_selector.matches_object(obj) && opts.field_selector.matches(|f| field_value(obj, f))
}

fn encode_continue(rev: u64, start: &str) -> String {
    B64.encode(json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start}).to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let raw = B64.decode(token).map_err(|_| bad("illegal base64 data"))?;
    let v: Value = serde_json::from_slice(&raw)
        .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad("server does not recognize this encoded key"));
    }
    let rev = v
        .get("rv")
        .and_then(Value::as_u64)
        .filter(|r| *r > 0)
        .ok_or_else(|| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("encoded key is missing"))?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad("continue key is not valid"));
    }
    Ok((rev, start.to_string()))
}

impl Rest {
    /// Lists objects of `res` in `ns` (all namespaces when empty).
    pub fn list(
        &self,
        res: &ResourceInfo,
        ns: &str,
        opts: &ListOptions,
    ) -> Result<(ListResult, Option<String>), ApiError> {
        opts.field_selector
            .check_fields(|f| selectable(res, f))
            .map_err(ApiError::bad_request)?;
        let pfx = prefix(res, ns);
        let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        if opts.resource_version_match.is_some() && rv.is_none() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        let parsed_rv = match rv {
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}")))?,
            ),
            None => None,
        };
        let (at, start_after) =
            if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
                if parsed_rv.is_some_and(|r| r != 0) {
                    return Err(ApiError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let (rev, start) = decode_continue(token)?;
                (ReadAt::Exact(rev), Some(format!("{pfx}{start}")))
            } else {
                let at = match (parsed_rv, opts.resource_version_match) {
                    (None, _) | (Some(0), None | Some(ResourceVersionMatch::NotOlderThan)) => {
                        ReadAt::Latest
                    }
                    (Some(0), Some(ResourceVersionMatch::Exact)) => {
                        return Err(ApiError::bad_request(
                            "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                        ));
                    }
                    (Some(r), Some(ResourceVersionMatch::Exact)) => ReadAt::Exact(r),
                    (Some(r), None) if opts.limit.is_some() => ReadAt::Exact(r),
                    (Some(r), _) => {
                        let current = self.store.current_revision();
                        if r > current {
                            return Err(storage_error(
                                res,
                                "",
                                crate::storage::StorageError::TooLarge {
                                    requested: r,
                                    current,
                                },
                            ));
                        }
                        ReadAt::Latest
                    }
                };
                (at, None)
            };
        let result = self
            .store
            .list(&pfx, start_after.as_deref(), at, opts.limit.filter(|l| *l > 0), |o| matches(opts, o))
            .map_err(|e| match e {
                crate::storage::StorageError::Compacted { .. } if opts.continue_token.is_some() => ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                other => storage_error(res, "", other),
            })?;
        let token = result
            .continue_after
            .as_deref()
            .map(|k| encode_continue(result.rev, k.strip_prefix(&pfx).unwrap_or(k)));
        Ok((result, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(
            decode_continue(&t).expect("ok"),
            (42, "ns/name".to_string())
        );
        assert_eq!(decode_continue("!!!").map_err(|e| e.code), Err(400));
        assert_eq!(
            decode_continue(&encode_continue(1, "../x")).map_err(|e| e.code),
            Err(400)
        );
    }
}

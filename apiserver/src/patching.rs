//! Applies a PATCH body of any type to the live object: JSON patch, merge patch,
//! strategic merge patch (built-in types only, as upstream) and server-side apply.

use machinery::ApiError;
use machinery::resource::ResourceInfo;
use serde_json::Value;

use crate::negotiation::BodyType;
use crate::rest::WriteOptions;

/// The patched object (not yet validated or stored).
pub fn apply_patch(
    res: &ResourceInfo,
    live: &Value,
    ty: BodyType,
    body: &[u8],
    opts: &WriteOptions,
) -> Result<Value, ApiError> {
    match ty {
        BodyType::JsonPatch => patch::json_patch(live, body),
        BodyType::MergePatch => patch::merge_patch(live, body),
        BodyType::StrategicMergePatch => {
            if !crate::conversion::is_builtin_group(&res.group) {
                return Err(patch::strategic_merge_patch_unsupported());
            }
            patch::strategic_merge_patch(live, body, &res.definition)
        }
        BodyType::ApplyYaml => {
            let applied =
                crate::negotiation::decode_object(body, ty, Some((&res.kind, &res.version)))?;
            crate::fieldmanager::apply(Some(live), &applied, res, opts)
        }
        BodyType::ApplyCbor => Err(ApiError::unsupported_media_type(
            "application/apply-patch+cbor",
        )),
        BodyType::Json | BodyType::Yaml | BodyType::Protobuf => {
            Err(ApiError::unsupported_media_type("application/json"))
        }
    }
}

//! CustomResourceDefinitions: what the server knows about each served custom resource
//! version (its structural schema, printer columns, scale paths), and the rules the write
//! path applies to custom resources (pruning, defaulting, schema and CEL validation).
//!
//! The [`controller`] keeps this and the [`crate::registry::Registry`] in step with the
//! stored CRDs; everything else (routes, discovery, OpenAPI, RBAC names) derives from the
//! registry as it does for built-in resources.

pub mod controller;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use machinery::resource::ResourceInfo;
use machinery::{ApiError, FieldError};
use serde_json::{Map, Value, json};

/// The finalizer that holds a deleted CRD until all of its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// One served version of one custom resource.
#[derive(Debug)]
pub struct Served {
    /// The version's structural schema; `None` when it could not be compiled (then the
    /// object is kept as sent).
    pub schema: Option<apiextensions::Structural>,
    /// The `kubectl get` columns.
    pub columns: Vec<apiextensions::Column>,
    /// `subresources.scale` of the version, if served.
    pub scale: Option<Scale>,
    /// The CRD is being deleted: no new objects.
    pub terminating: bool,
    /// `spec.conversion` when its strategy is `Webhook`.
    pub conversion: Option<Value>,
}

/// The JSON paths of a `scale` subresource (`.spec.replicas`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// Every served custom resource version, and their OpenAPI definitions.
#[derive(Default)]
pub struct CustomResources {
    served: RwLock<HashMap<(String, String, String), Arc<Served>>>,
    definitions: RwLock<Map<String, Value>>,
}

impl CustomResources {
    /// What is known of `res`, when it is a custom resource.
    pub fn get(&self, res: &ResourceInfo) -> Option<Arc<Served>> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(res.group.clone(), res.version.clone(), res.plural.clone()))
            .cloned()
    }

    /// Every served (group, version, plural).
    pub fn served_keys(&self) -> std::collections::HashSet<(String, String, String)> {
        self.served
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// The OpenAPI definitions of every served version (by definition name), in the
    /// canonical form the `openapi` crate takes.
    pub fn definitions(&self) -> Map<String, Value> {
        self.definitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces everything at once (the controller computes the whole set).
    pub(crate) fn replace(
        &self,
        served: HashMap<(String, String, String), Arc<Served>>,
        definitions: Map<String, Value>,
    ) {
        *self.served.write().unwrap_or_else(|e| e.into_inner()) = served;
        *self.definitions.write().unwrap_or_else(|e| e.into_inner()) = definitions;
    }

    /// Drops the fields a custom resource's schema does not declare; returns their paths
    /// (for `fieldValidation`). Built-in resources are not touched.
    pub fn prune(&self, res: &ResourceInfo, obj: &mut Value) -> Vec<String> {
        match self.get(res) {
            Some(s) => s.schema.as_ref().map(|x| x.prune(obj)).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Fills the schema's defaults into a custom resource.
    pub fn default(&self, res: &ResourceInfo, obj: &mut Value) {
        if let Some(s) = self.get(res)
            && let Some(schema) = &s.schema
        {
            schema.default(obj);
        }
    }

    /// Refuses new objects of a CRD being deleted (upstream's 405).
    pub fn check_create(&self, res: &ResourceInfo) -> Result<(), ApiError> {
        match self.get(res) {
            Some(s) if s.terminating => Err(ApiError::method_not_allowed(
                "create not allowed while custom resource definition is terminating",
            )),
            _ => Ok(()),
        }
    }

    /// Schema and CEL validation of a custom resource (`old` on updates, for transition
    /// rules). Empty for built-in resources.
    pub fn validate(
        &self,
        res: &ResourceInfo,
        obj: &Value,
        old: Option<&Value>,
    ) -> Vec<FieldError> {
        let Some(s) = self.get(res) else {
            return Vec::new();
        };
        let Some(schema) = &s.schema else {
            return Vec::new();
        };
        match old {
            Some(old) => schema.validate_update(obj, old),
            None => schema.validate(obj),
        }
    }

    /// The table of custom resources, with the CRD's printer columns.
    pub fn table(
        &self,
        res: &ResourceInfo,
        objects: &[Value],
        list_meta: Value,
        include_object: &str,
    ) -> Option<Value> {
        let s = self.get(res)?;
        let mut defs = vec![json!({
            "name": "Name", "type": "string", "format": "name",
            "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
            "priority": 0,
        })];
        defs.extend(s.columns.iter().map(|c| {
            json!({
                "name": c.name, "type": c.type_, "format": c.format,
                "description": c.description, "priority": c.priority,
            })
        }));
        let rows = objects
            .iter()
            .map(|o| {
                let name = o
                    .pointer("/metadata/name")
                    .cloned()
                    .unwrap_or(Value::String(String::new()));
                let mut cells = vec![name];
                cells.extend(s.columns.iter().map(|c| apiextensions::cell(o, c)));
                (cells, o)
            })
            .collect();
        Some(printers::table_from(defs, rows, list_meta, include_object))
    }
}

impl crate::rest::Rest {
    /// Converts custom resources to `api_version` through their CRD's conversion webhook;
    /// everything else (and objects already there) passes through.
    pub async fn convert_to(
        &self,
        res: &ResourceInfo,
        objects: Vec<Value>,
        api_version: &str,
    ) -> Result<Vec<Value>, ApiError> {
        if crate::conversion::is_builtin_group(&res.group)
            || !crate::conversion::webhook_converted(res)
            || objects.iter().all(|o| o["apiVersion"] == api_version)
        {
            return Ok(objects);
        }
        let Some(conversion) = self.crds.get(res).and_then(|s| s.conversion.clone()) else {
            return Ok(objects);
        };
        self.webhooks
            .convert(
                &conversion,
                objects,
                api_version,
                &crate::webhooks::StoreResolver(self),
            )
            .await
            .map_err(ApiError::internal)
    }

    /// One object as `res`'s version shows it (what `conversion::to_version` does, plus
    /// the conversion webhook of custom resources that have one).
    pub async fn shown(&self, res: &ResourceInfo, obj: &Value) -> Result<Value, ApiError> {
        self.shown_arc(res, obj).await.map(Arc::unwrap_or_clone)
    }

    /// [`Self::shown`] of an object the store holds: the same object, not a copy, when
    /// it is already at `res`'s version (conversion webhooks skip such objects too).
    pub async fn shown_stored(
        &self,
        res: &ResourceInfo,
        obj: &Arc<Value>,
    ) -> Result<Arc<Value>, ApiError> {
        if let std::borrow::Cow::Borrowed(_) = crate::conversion::to_version_cow(obj, res) {
            return Ok(obj.clone());
        }
        self.shown_arc(res, obj).await
    }

    async fn shown_arc(&self, res: &ResourceInfo, obj: &Value) -> Result<Arc<Value>, ApiError> {
        let obj = crate::conversion::to_version(obj, res);
        let mut out = self.convert_to(res, vec![obj], &res.api_version()).await?;
        out.pop()
            .map(Arc::new)
            .ok_or_else(|| ApiError::internal("the conversion webhook returned no object"))
    }
}

/// The Table of any resource: the printer columns of custom resources, the built-in
/// printers otherwise.
pub fn table(
    crds: &CustomResources,
    res: &ResourceInfo,
    objects: &[Value],
    list_meta: Value,
    include_object: &str,
) -> Value {
    if let Some(t) = crds.table(res, objects, list_meta.clone(), include_object) {
        return t;
    }
    printers::table(
        &res.group,
        &res.plural,
        objects,
        list_meta,
        include_object,
        chrono::Utc::now(),
    )
}

/// The OpenAPI definition name upstream gives a custom resource kind: the group reversed,
/// then version and kind (`com.example.stable.v1.CronTab`).
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// The ResourceInfo of one served version of a CRD (with its accepted names).
pub fn resource_info(crd: &Value, version: &Value) -> ResourceInfo {
    let spec = &crd["spec"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let names = &spec["names"];
    let group = s(&spec["group"]);
    let vname = s(&version["name"]);
    let plural = s(&names["plural"]);
    let kind = s(&names["kind"]);
    let storage_version = spec["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"] == json!(true)))
        .map(|v| s(&v["name"]))
        .unwrap_or_else(|| vname.clone());
    let mut subresources = Vec::new();
    if version.pointer("/subresources/scale").is_some() {
        subresources.push("scale".to_string());
    }
    if version.pointer("/subresources/status").is_some() {
        subresources.push("status".to_string());
    }
    let selectable_fields = version["selectableFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f["jsonPath"].as_str())
                .map(|p| p.trim_start_matches('.').to_string())
                .collect()
        })
        .unwrap_or_default();
    ResourceInfo {
        definition: definition_name(&group, &vname, &kind),
        storage_resource: format!("{group}/{plural}"),
        group,
        version: vname,
        kind,
        singular: s(&names["singular"]),
        short_names: controller::strings(names, "/shortNames"),
        categories: controller::strings(names, "/categories"),
        namespaced: spec["scope"] != json!("Cluster"),
        verbs: machinery::resource::ALL_VERBS
            .iter()
            .map(|v| v.to_string())
            .collect(),
        subresources,
        storage_version,
        plural,
        selectable_fields,
    }
}

/// The OpenAPI definitions of one served version: the object and its list.
pub fn version_definitions(info: &ResourceInfo, version: &Value) -> Vec<(String, Value)> {
    let mut schema = version
        .pointer("/schema/openAPIV3Schema")
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if !schema.is_object() {
        schema = json!({"type": "object"});
    }
    let gvk = json!([{"group": info.group, "kind": info.kind, "version": info.version}]);
    let props = schema
        .as_object_mut()
        .map(|m| {
            m.entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|p| {
                    p.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
                    p.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
                    p.insert("metadata".into(), json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
                })
                .is_some()
        })
        .unwrap_or(false);
    if props && let Some(m) = schema.as_object_mut() {
        m.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
    }
    let list = json!({
        "description": format!("{} is a list of {}", format!("{}List", info.kind), info.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"},
            "items": {
                "type": "array",
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", info.plural),
                "items": {"$ref": format!("#/definitions/{}", info.definition)},
            },
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
            "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"},
        },
        "x-kubernetes-group-version-kind": [{"group": info.group, "kind": format!("{}List", info.kind), "version": info.version}],
    });
    vec![
        (info.definition.clone(), schema),
        (format!("{}List", info.definition), list),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "selectableFields": [{"jsonPath": ".spec.color"}],
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}},
                    {"name": "v1beta1", "served": true, "storage": false},
                ],
            },
        })
    }

    #[test]
    fn resource_info_of_a_version() {
        let c = crd();
        let info = resource_info(&c, &c["spec"]["versions"][1]);
        assert_eq!(info.api_version(), "stable.example.com/v1beta1");
        assert_eq!(info.storage_version, "v1");
        assert_eq!(info.storage_resource, "stable.example.com/crontabs");
        assert_eq!(info.definition, "com.example.stable.v1beta1.CronTab");
        assert!(info.namespaced && info.subresources.is_empty());
        let v1 = resource_info(&c, &c["spec"]["versions"][0]);
        assert_eq!(v1.subresources, vec!["scale", "status"]);
        assert_eq!(v1.selectable_fields, vec!["spec.color"]);
        assert_eq!(v1.short_names, vec!["ct"]);
    }

    #[test]
    fn definitions_carry_type_meta_and_gvk() {
        let c = crd();
        let info = resource_info(&c, &c["spec"]["versions"][0]);
        let defs = version_definitions(&info, &c["spec"]["versions"][0]);
        assert_eq!(defs[0].0, "com.example.stable.v1.CronTab");
        assert_eq!(
            defs[0].1["properties"]["metadata"]["$ref"],
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert_eq!(
            defs[0].1["x-kubernetes-group-version-kind"][0]["kind"],
            "CronTab"
        );
        assert_eq!(defs[1].0, "com.example.stable.v1.CronTabList");
    }
}

//! The registry-independent schema definitions: every schema k8s-openapi generates for the
//! catalogued kinds, fixed up to upstream's shapes, with synthesized `...List` kinds,
//! `x-kubernetes-group-version-kind` on every kind, and the patch metadata of the installed
//! [`ExtensionSource`].
//!
//! This module owns the *canonical* form of a schema, the one [`definitions`] returns and
//! extra (custom resource) definitions are given in: JSON-schema-like objects whose
//! references read `#/definitions/<name>`. OpenAPI 3.0 keywords (`anyOf`, `nullable`,
//! `x-kubernetes-int-or-string`, ...) are allowed; each dialect drops what it cannot carry
//! when a document is rendered. It must not know which resources are served.

use std::fmt;
use std::sync::OnceLock;

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::catalog::{self, CatalogKind};

/// Definition name of `intstr.IntOrString`.
pub const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
/// Definition name of `resource.Quantity`.
pub const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
pub(crate) const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub(crate) const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub(crate) const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub(crate) const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
pub(crate) const VERSION_INFO: &str = "io.k8s.apimachinery.pkg.version.Info";

/// The prefix of references in the canonical form.
pub(crate) const REF_PREFIX: &str = "#/definitions/";

const API_VERSION_DESCRIPTION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DESCRIPTION: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

// ---------------------------------------------------------------------------------------------
// The extension hook.
// ---------------------------------------------------------------------------------------------

/// **Extension hook**: supplies the per-field OpenAPI extensions k8s-openapi's schemas lack
/// (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
/// `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`), which kubectl's client-side apply
/// and server-side apply read.
///
/// `definition` is a definition name (`io.k8s.api.core.v1.PodSpec`), `field` a JSON property
/// name of it (`containers`). Any `Fn(&str, &str) -> Vec<(&'static str, Value)>` is a source,
/// so the server passes the `patch` crate's `openapi_extensions` function as is.
pub trait ExtensionSource: Send + Sync {
    /// The extensions to add to property `field` of `definition`; empty when none.
    fn extensions(&self, definition: &str, field: &str) -> Vec<(&'static str, Value)>;
}

impl<F> ExtensionSource for F
where
    F: Fn(&str, &str) -> Vec<(&'static str, Value)> + Send + Sync,
{
    fn extensions(&self, definition: &str, field: &str) -> Vec<(&'static str, Value)> {
        self(definition, field)
    }
}

/// Returned by [`set_extension_source`] when a source is already installed or the
/// definitions were already generated without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionSourceAlreadySet;

impl fmt::Display for ExtensionSourceAlreadySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the OpenAPI extension source is already set, or definitions were already generated",
        )
    }
}

impl std::error::Error for ExtensionSourceAlreadySet {}

static EXTENSION_SOURCE: OnceLock<Box<dyn ExtensionSource>> = OnceLock::new();
static DEFINITIONS: OnceLock<Map<String, Value>> = OnceLock::new();

/// **The hook**: installs the source of per-field extensions. Call it once at startup,
/// before any document or [`definitions`] is generated (they are cached from then on).
pub fn set_extension_source(
    source: impl ExtensionSource + 'static,
) -> Result<(), ExtensionSourceAlreadySet> {
    if DEFINITIONS.get().is_some() {
        return Err(ExtensionSourceAlreadySet);
    }
    EXTENSION_SOURCE
        .set(Box::new(source))
        .map_err(|_| ExtensionSourceAlreadySet)
}

/// Every built-in schema by definition name (`io.k8s.api.core.v1.Pod`,
/// `io.k8s.api.apps.v1.DeploymentList`, `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`,
/// ...), in canonical form: references read `#/definitions/<name>`, kinds carry
/// `x-kubernetes-group-version-kind`, fields carry the [`ExtensionSource`]'s extensions.
/// Generated once, on first use.
pub fn definitions() -> &'static Map<String, Value> {
    DEFINITIONS.get_or_init(|| {
        build(
            EXTENSION_SOURCE
                .get()
                .map(|source| source.as_ref() as &dyn ExtensionSource),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Building.
// ---------------------------------------------------------------------------------------------

/// Generates the canonical definitions, sorted by name.
pub(crate) fn build(source: Option<&dyn ExtensionSource>) -> Map<String, Value> {
    let mut generator = SchemaSettings::draft07()
        .with(|settings| {
            settings.meta_schema = None;
            settings.transforms.clear();
        })
        .into_generator();
    let kinds = catalog::collect(&mut generator);
    let mut defs = generator.take_definitions(false);

    fix_scalars(&mut defs);
    for kind in &kinds {
        annotate_kind(&mut defs, kind);
    }
    if let Some(source) = source {
        apply_extensions(&mut defs, source);
    }

    let mut sorted: Vec<(String, Value)> = defs.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted.into_iter().collect()
}

/// Rewrites the scalar wrappers k8s-openapi describes with CRD-style extensions into the
/// canonical (Swagger 2) shapes upstream publishes.
fn fix_scalars(defs: &mut Map<String, Value>) {
    if let Some(Value::Object(schema)) = defs.get_mut(INT_OR_STRING) {
        schema.remove("x-kubernetes-int-or-string");
        schema.insert("type".into(), "string".into());
        schema.insert("format".into(), "int-or-string".into());
    }
    if let Some(Value::Object(schema)) = defs.get_mut(QUANTITY) {
        schema.remove("x-kubernetes-int-or-string");
        schema.insert("type".into(), "string".into());
    }
}

/// Adds the GVK to a kind, drops the `metadata` requirement k8s-openapi adds (upstream's
/// kinds do not require it), and adds the kind's list definition.
fn annotate_kind(defs: &mut Map<String, Value>, kind: &CatalogKind) {
    let Some(schema) = defs.get_mut(&kind.definition) else {
        return;
    };
    add_gvk(schema, gvk(kind.group, kind.version, kind.kind));
    if let Some(Value::Array(required)) = schema.get_mut("required") {
        required.retain(|field| field != "metadata");
        if required.is_empty() {
            schema
                .as_object_mut()
                .map(|object| object.remove("required"));
        }
    }
    if let Some(list_kind) = kind.list_kind {
        let name = list_definition_name(&kind.definition, kind.kind);
        let list = list_schema(
            &kind.definition,
            kind.kind,
            gvk(kind.group, kind.version, list_kind),
        );
        defs.entry(name).or_insert(list);
    }
}

fn apply_extensions(defs: &mut Map<String, Value>, source: &dyn ExtensionSource) {
    for (name, schema) in defs.iter_mut() {
        let Some(Value::Object(properties)) = schema.get_mut("properties") else {
            continue;
        };
        for (field, property) in properties.iter_mut() {
            let Value::Object(property) = property else {
                continue;
            };
            for (key, value) in source.extensions(name, field) {
                property.insert(key.to_string(), value);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shapes shared with document assembly.
// ---------------------------------------------------------------------------------------------

/// A `{"group", "kind", "version"}` object, as `x-kubernetes-group-version-kind` holds.
pub(crate) fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

/// Appends `gvk` to the schema's `x-kubernetes-group-version-kind` unless already there.
pub(crate) fn add_gvk(schema: &mut Value, gvk: Value) {
    let Value::Object(object) = schema else {
        return;
    };
    let entry = object
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    if let Value::Array(list) = entry
        && !list.contains(&gvk)
    {
        list.push(gvk);
    }
}

/// The definition name of a kind's list: `io.k8s.api.apps.v1.Deployment` ->
/// `io.k8s.api.apps.v1.DeploymentList`.
pub(crate) fn list_definition_name(definition: &str, kind: &str) -> String {
    match definition.strip_suffix(kind) {
        Some(prefix) => format!("{prefix}{kind}List"),
        None => format!("{definition}List"),
    }
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

fn type_meta_properties() -> Map<String, Value> {
    let mut properties = Map::new();
    properties.insert(
        "apiVersion".into(),
        json!({ "description": API_VERSION_DESCRIPTION, "type": "string" }),
    );
    properties.insert(
        "kind".into(),
        json!({ "description": KIND_DESCRIPTION, "type": "string" }),
    );
    properties
}

/// The schema of a kind's list type, which k8s-openapi models generically as `List<T>`.
pub(crate) fn list_schema(item_definition: &str, kind: &str, list_gvk: Value) -> Value {
    let mut properties = type_meta_properties();
    let items = reference(item_definition);
    properties.insert(
        "items".into(),
        json!({ "description": format!("List of {kind} objects."), "type": "array", "items": items }),
    );
    let mut metadata = reference(LIST_META);
    if let Value::Object(object) = &mut metadata {
        object.insert(
            "description".into(),
            "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds".into(),
        );
    }
    properties.insert("metadata".into(), metadata);
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": properties,
        "required": ["items"],
        "x-kubernetes-group-version-kind": [list_gvk],
    })
}

/// A schema that accepts any object of a kind whose schema is unknown (a custom resource
/// without a published schema): type meta and object meta are described, everything else is
/// preserved.
pub(crate) fn permissive_schema(group: &str, version: &str, kind: &str) -> Value {
    let mut properties = type_meta_properties();
    let mut metadata = reference(OBJECT_META);
    if let Value::Object(object) = &mut metadata {
        object.insert("description".into(), "Standard object's metadata.".into());
    }
    properties.insert("metadata".into(), metadata);
    json!({
        "description": format!("{kind} is served without a published schema; any fields are accepted."),
        "type": "object",
        "properties": properties,
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-group-version-kind": [gvk(group, version, kind)],
    })
}

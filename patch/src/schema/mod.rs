//! The type graph of the built-in API types and their patch metadata.
//!
//! Which field holds which definition is derived at run time from `k8s-openapi`'s JSON
//! schemas (generated once, lazily). Which fields merge by key, are sets, or are atomic is
//! not in those schemas; it comes from `extensions.table`, the crate's one record of the
//! upstream `x-kubernetes-patch-*` / `x-kubernetes-list-*` / `x-kubernetes-map-type` tags.
//! Both are read-only after start-up; nothing here does I/O.

mod roots;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

pub use table::{Extensions, ListType, MapType};

/// The shape of a value at some position of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// A string, number, boolean, or int-or-string.
    Scalar,
    /// Free-form JSON with no schema (`RawExtension`, `JSON`, custom resources).
    Untyped,
    /// An object of a named definition (`io.k8s.api.core.v1.PodSpec`).
    Struct(String),
    /// A JSON array of the inner shape.
    List(Box<Shape>),
    /// A JSON object with arbitrary keys, each value of the inner shape.
    Map(Box<Shape>),
}

/// One field of a definition: its shape and its patch metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// What the field holds.
    pub shape: Shape,
    /// Its patch strategy, merge key, list type and map type.
    pub ext: Extensions,
}

/// One OpenAPI definition of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// The definition name, e.g. `io.k8s.api.apps.v1.DeploymentSpec`.
    pub name: String,
    fields: BTreeMap<String, Field>,
    required: Vec<String>,
    /// Whether server-side apply treats the whole object as one value
    /// (`x-kubernetes-map-type: atomic` on the type, as on `LabelSelector`).
    pub atomic: bool,
}

impl Definition {
    /// The field of this name, if the definition declares it.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.get(name)
    }

    /// Whether the schema lists the field as required.
    pub fn is_required(&self, name: &str) -> bool {
        self.required.iter().any(|r| r == name)
    }

    /// All declared fields, by name.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Field)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }
}

static NO_EXTENSIONS: LazyLock<Extensions> = LazyLock::new(Extensions::default);

static CATALOG: LazyLock<HashMap<String, Definition>> = LazyLock::new(build_catalog);

/// The definition of this name (`io.k8s.api.core.v1.Pod`), if it is a built-in type.
pub fn definition(name: &str) -> Option<&'static Definition> {
    CATALOG.get(name)
}

/// Whether strategic merge patch can be applied to objects of this definition.
pub fn supports_strategic_merge_patch(definition_name: &str) -> bool {
    definition(definition_name).is_some()
}

/// The root shape for patching an object of this definition, or `None` when the
/// definition is unknown (a custom resource).
pub fn patch_meta(definition_name: &str) -> Option<Shape> {
    definition(definition_name).map(|d| Shape::Struct(d.name.clone()))
}

impl Shape {
    /// The definition of a struct shape.
    pub fn definition(&self) -> Option<&'static Definition> {
        match self {
            Shape::Struct(name) => definition(name),
            _ => None,
        }
    }

    /// The shape and metadata of the member `key` of an object of this shape: a declared
    /// field of a struct, or any key of a map. Unknown members are untyped.
    pub fn member(&self, key: &str) -> (&Shape, &Extensions) {
        match self {
            Shape::Struct(_) => match self.definition().and_then(|d| d.field(key)) {
                Some(field) => (&field.shape, &field.ext),
                None => (&UNTYPED, &NO_EXTENSIONS),
            },
            Shape::Map(inner) => (inner, &NO_EXTENSIONS),
            _ => (&UNTYPED, &NO_EXTENSIONS),
        }
    }

    /// Whether `key` is a declared field of this struct shape.
    pub fn declares(&self, key: &str) -> bool {
        self.definition().is_some_and(|d| d.field(key).is_some())
    }

    /// The shape of the items of a list shape (untyped for anything else).
    pub fn item(&self) -> &Shape {
        match self {
            Shape::List(inner) => inner,
            _ => &UNTYPED,
        }
    }
}

static UNTYPED: Shape = Shape::Untyped;

/// The list type server-side apply uses for a list field: the declared
/// `x-kubernetes-list-type`, else what the patch strategy implies (merge with a key is a
/// map keyed by it, merge without one is a set), else atomic.
pub fn effective_list_type(ext: &Extensions) -> ListType {
    if let Some(t) = &ext.list_type {
        return t.clone();
    }
    if ext.has_strategy("merge") {
        return match &ext.merge_key {
            Some(key) => ListType::Map(vec![key.clone()]),
            None => ListType::Set,
        };
    }
    ListType::Atomic
}

/// The `x-kubernetes-*` extensions of `field` of `definition` (or of the definition itself
/// for the field `.`), for annotating the OpenAPI documents kubectl reads.
pub fn openapi_extensions(definition: &str, field: &str) -> Vec<(&'static str, Value)> {
    let Some(ext) = table::TABLE
        .get(definition)
        .and_then(|fields| fields.get(field))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(t) = &ext.list_type {
        match t {
            ListType::Atomic => out.push(("x-kubernetes-list-type", json!("atomic"))),
            ListType::Set => out.push(("x-kubernetes-list-type", json!("set"))),
            ListType::Map(keys) => {
                out.push(("x-kubernetes-list-map-keys", json!(keys)));
                out.push(("x-kubernetes-list-type", json!("map")));
            }
        }
    }
    if let Some(t) = ext.map_type {
        let word = if t == MapType::Atomic {
            "atomic"
        } else {
            "granular"
        };
        out.push(("x-kubernetes-map-type", json!(word)));
    }
    if let Some(key) = &ext.merge_key {
        out.push(("x-kubernetes-patch-merge-key", json!(key)));
    }
    if let Some(strategy) = &ext.patch_strategy {
        out.push(("x-kubernetes-patch-strategy", json!(strategy)));
    }
    out
}

fn build_catalog() -> HashMap<String, Definition> {
    let mut generator = schemars::SchemaGenerator::default();
    roots::add_all(&mut generator);
    let defs = generator.definitions();
    let mut catalog = HashMap::new();
    for (name, schema) in defs {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let table_fields = table::TABLE.get(name);
        let ext_of = |field: &str| {
            table_fields
                .and_then(|t| t.get(field))
                .cloned()
                .unwrap_or_default()
        };
        let fields = props
            .iter()
            .map(|(field, s)| {
                (
                    field.clone(),
                    Field {
                        shape: shape_of(s, defs, 0),
                        ext: ext_of(field),
                    },
                )
            })
            .collect();
        let atomic = ext_of(".").map_type == Some(MapType::Atomic);
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        catalog.insert(
            name.clone(),
            Definition {
                name: name.clone(),
                fields,
                required,
                atomic,
            },
        );
    }
    catalog
}

fn ref_name(schema: &Value) -> Option<&str> {
    let r = schema.get("$ref")?.as_str()?;
    r.strip_prefix("#/$defs/")
        .or_else(|| r.strip_prefix("#/definitions/"))
}

fn type_word(schema: &Value) -> Option<&str> {
    match schema.get("type")? {
        Value::String(s) => Some(s),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null"),
        _ => None,
    }
}

fn shape_of(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Shape {
    if depth > 8 {
        return Shape::Untyped;
    }
    if let Some(name) = ref_name(schema) {
        return match defs.get(name) {
            Some(def) if def.get("properties").is_some() => Shape::Struct(name.to_string()),
            Some(def) => shape_of(def, defs, depth + 1),
            None => Shape::Untyped,
        };
    }
    if schema.get("x-kubernetes-int-or-string").is_some() {
        return Shape::Scalar;
    }
    match type_word(schema) {
        Some("array") => {
            let item = schema
                .get("items")
                .map_or(Shape::Untyped, |i| shape_of(i, defs, depth + 1));
            Shape::List(Box::new(item))
        }
        Some("object") => match schema.get("additionalProperties") {
            Some(ap) if ap.is_object() => Shape::Map(Box::new(shape_of(ap, defs, depth + 1))),
            _ => Shape::Untyped,
        },
        Some("string" | "integer" | "number" | "boolean") => Shape::Scalar,
        _ => Shape::Untyped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_names_known_fields() {
        assert!(
            table::malformed_lines().is_empty(),
            "{:?}",
            table::malformed_lines()
        );
        let mut unknown = Vec::new();
        for (def, fields) in table::TABLE.iter() {
            let Some(d) = definition(def) else {
                continue; // types k8s-openapi does not model (older alphas); harmless
            };
            for field in fields.keys() {
                if field != "." && d.field(field).is_none() {
                    unknown.push(format!("{def}.{field}"));
                }
            }
        }
        assert!(unknown.is_empty(), "{unknown:?}");
    }

    #[test]
    fn type_graph_follows_refs() {
        let spec = definition("io.k8s.api.apps.v1.DeploymentSpec").unwrap();
        let template = spec.field("template").unwrap();
        assert_eq!(
            template.shape,
            Shape::Struct("io.k8s.api.core.v1.PodTemplateSpec".into())
        );
        let pod = definition("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = pod.field("containers").unwrap();
        assert_eq!(
            containers.shape,
            Shape::List(Box::new(Shape::Struct(
                "io.k8s.api.core.v1.Container".into()
            )))
        );
        assert_eq!(containers.ext.merge_key.as_deref(), Some("name"));
        assert!(containers.ext.has_strategy("merge"));
        let res = definition("io.k8s.api.core.v1.ResourceRequirements").unwrap();
        assert_eq!(
            res.field("limits").unwrap().shape,
            Shape::Map(Box::new(Shape::Scalar))
        );
        let meta = definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta").unwrap();
        assert_eq!(
            effective_list_type(&meta.field("finalizers").unwrap().ext),
            ListType::Set
        );
        assert_eq!(
            meta.field("labels").unwrap().shape,
            Shape::Map(Box::new(Shape::Scalar))
        );
        assert!(
            definition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
                .unwrap()
                .atomic
        );
        assert!(definition("io.example.v1.Widget").is_none());
    }

    #[test]
    fn well_known_merge_keys() {
        let key = |def: &str, field: &str| {
            definition(def)
                .and_then(|d| d.field(field))
                .and_then(|f| f.ext.merge_key.clone())
        };
        assert_eq!(
            key("io.k8s.api.core.v1.Container", "ports").as_deref(),
            Some("containerPort")
        );
        assert_eq!(
            key("io.k8s.api.core.v1.Container", "env").as_deref(),
            Some("name")
        );
        assert_eq!(
            key("io.k8s.api.core.v1.Container", "volumeMounts").as_deref(),
            Some("mountPath")
        );
        assert_eq!(
            key("io.k8s.api.core.v1.PodSpec", "volumes").as_deref(),
            Some("name")
        );
        assert_eq!(
            key("io.k8s.api.core.v1.ServiceSpec", "ports").as_deref(),
            Some("port")
        );
        assert_eq!(
            key(
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "ownerReferences"
            )
            .as_deref(),
            Some("uid")
        );
        assert_eq!(key("io.k8s.api.core.v1.PodSpec", "tolerations"), None);
    }

    #[test]
    fn openapi_extensions_for_kubectl() {
        let ext = openapi_extensions("io.k8s.api.core.v1.PodSpec", "containers");
        assert!(ext.contains(&("x-kubernetes-patch-merge-key", json!("name"))));
        assert!(ext.contains(&("x-kubernetes-patch-strategy", json!("merge"))));
        assert!(ext.contains(&("x-kubernetes-list-type", json!("map"))));
        assert!(ext.contains(&("x-kubernetes-list-map-keys", json!(["name"]))));
        let sel = openapi_extensions("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", ".");
        assert_eq!(sel, vec![("x-kubernetes-map-type", json!("atomic"))]);
        assert!(openapi_extensions("io.k8s.api.core.v1.PodSpec", "hostname").is_empty());
    }
}

//! The routes of one resource: collection, item, all-namespaces and watch paths, for the
//! verbs the registry entry serves.

use machinery::resource::ResourceInfo;

use super::params::{self, Param};
use super::{Body, GroupVersion, Gvk, Operation, Payload, Response, Route, subresource};
use crate::definitions::{DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT, list_definition_name};

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const JSON_WATCH: &str = "application/json;stream=watch";
const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// What every operation on one resource shares.
pub(super) struct Ctx<'a> {
    pub gv: &'a GroupVersion,
    pub info: &'a ResourceInfo,
    /// Built-in kinds also speak protobuf and strategic merge patch.
    pub builtin: bool,
    /// `Namespaced` or empty, as operation ids spell the scope.
    pub scope: &'static str,
}

impl Ctx<'_> {
    pub(super) fn gvk(&self) -> Gvk {
        Gvk {
            group: self.info.group.clone(),
            version: self.info.version.clone(),
            kind: self.info.kind.clone(),
        }
    }

    /// `<verb><GroupVersion><Scope><Kind><suffix>`.
    pub(super) fn id(&self, verb: &str, suffix: &str) -> String {
        format!(
            "{verb}{}{}{}{suffix}",
            self.gv.id, self.scope, self.info.kind
        )
    }

    pub(super) fn object_produces(&self) -> Vec<&'static str> {
        if self.builtin {
            vec![JSON, YAML, PROTOBUF]
        } else {
            vec![JSON, YAML]
        }
    }

    fn stream_produces(&self) -> Vec<&'static str> {
        if self.builtin {
            vec![JSON, YAML, PROTOBUF, JSON_WATCH, PROTOBUF_WATCH]
        } else {
            vec![JSON, YAML, JSON_WATCH]
        }
    }

    fn patch_consumes(&self) -> Vec<&'static str> {
        let mut types = vec![
            "application/json-patch+json",
            "application/merge-patch+json",
        ];
        if self.builtin {
            types.push("application/strategic-merge-patch+json");
        }
        types.push("application/apply-patch+yaml");
        types
    }

    /// An operation with this resource's defaults: its own GVK and tag, `*/*` in, objects out.
    pub(super) fn op(
        &self,
        method: &'static str,
        id: String,
        description: String,
        action: &'static str,
    ) -> Operation {
        Operation {
            method,
            id,
            description,
            action: Some(action),
            gvk: Some(self.gvk()),
            tag: self.gv.tag.clone(),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            consumes: vec!["*/*"],
            produces: self.object_produces(),
        }
    }

    fn namespace_segment(&self) -> &'static str {
        if self.info.namespaced {
            "/namespaces/{namespace}"
        } else {
            ""
        }
    }

    fn collection_path(&self) -> String {
        format!(
            "{}{}/{}",
            self.gv.prefix,
            self.namespace_segment(),
            self.info.plural
        )
    }

    pub(super) fn item_path(&self) -> String {
        format!("{}/{{name}}", self.collection_path())
    }

    /// Path parameters (`name`, `namespace`), plus `pretty` unless `streaming`.
    pub(super) fn path_params(&self, item: bool, streaming: bool) -> Vec<Param> {
        let mut out = Vec::new();
        if item {
            out.push(params::path(
                "name",
                format!("name of the {}", self.info.kind),
            ));
        }
        if self.info.namespaced {
            out.push(params::path(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        if !streaming {
            out.extend(params::query(&["pretty"]));
        }
        out
    }

    /// A get of `payload` on the item (or one of its subresources).
    pub(super) fn read(
        &self,
        suffix: &str,
        description: String,
        payload: &str,
        gvk: Gvk,
    ) -> Operation {
        let mut op = self.op("get", self.id("read", suffix), description, "get");
        op.gvk = Some(gvk);
        op.responses = ok(payload, &[200]);
        op
    }

    /// A put of `payload`.
    pub(super) fn replace(
        &self,
        suffix: &str,
        description: String,
        payload: &str,
        gvk: Gvk,
    ) -> Operation {
        let mut op = self.op("put", self.id("replace", suffix), description, "put");
        op.gvk = Some(gvk);
        op.params = params::query(params::WRITE);
        op.body = Some(body(payload, true));
        op.responses = ok(payload, &[200, 201]);
        op
    }

    /// A patch answered with `payload`.
    pub(super) fn patch(
        &self,
        suffix: &str,
        description: String,
        payload: &str,
        gvk: Gvk,
    ) -> Operation {
        let mut op = self.op("patch", self.id("patch", suffix), description, "patch");
        op.gvk = Some(gvk);
        op.params = params::query(params::PATCH);
        op.consumes = self.patch_consumes();
        op.body = Some(body(PATCH, true));
        op.responses = ok(payload, &[200, 201]);
        op
    }

    /// A post of `payload` (create, or a subresource like `binding`).
    pub(super) fn create(
        &self,
        suffix: &str,
        description: String,
        payload: &str,
        gvk: Gvk,
    ) -> Operation {
        let mut op = self.op("post", self.id("create", suffix), description, "post");
        op.gvk = Some(gvk);
        op.params = params::query(params::WRITE);
        op.body = Some(body(payload, true));
        op.responses = ok(payload, &[200, 201, 202]);
        op
    }
}

/// A request body carrying definition `payload`.
pub(super) fn body(payload: &str, required: bool) -> Body {
    Body {
        payload: Payload::Definition(payload.to_string()),
        required,
    }
}

/// `codes` answering with `payload`, then 401.
pub(super) fn ok(payload: &str, codes: &[u16]) -> Vec<Response> {
    let mut out: Vec<Response> = codes
        .iter()
        .map(|code| Response::new(*code, Some(Payload::Definition(payload.to_string()))))
        .collect();
    out.push(Response::new(401, None));
    out
}

/// Every route of one resource.
pub(super) fn routes(gv: &GroupVersion, info: &ResourceInfo, builtin: bool) -> Vec<Route> {
    let ctx = Ctx {
        gv,
        info,
        builtin,
        scope: if info.namespaced { "Namespaced" } else { "" },
    };
    let mut routes = Vec::new();
    routes.extend(collection(&ctx));
    routes.extend(item(&ctx));
    routes.extend(all_namespaces(&ctx));
    routes.extend(watches(&ctx));
    for name in &info.subresources {
        routes.extend(subresource::routes(&ctx, name));
    }
    routes
}

fn collection(ctx: &Ctx) -> Option<Route> {
    let info = ctx.info;
    let kind = &info.kind;
    let mut operations = Vec::new();
    if info.has_verb("list") {
        operations.push(list(
            ctx,
            ctx.id("list", ""),
            format!("list or watch objects of kind {kind}"),
        ));
    }
    if info.has_verb("create") {
        operations.push(ctx.create("", format!("create a {kind}"), &info.definition, ctx.gvk()));
    }
    if info.has_verb("deletecollection") {
        let mut op = ctx.op(
            "delete",
            format!("delete{}Collection{}{kind}", ctx.gv.id, ctx.scope),
            format!("delete collection of {kind}"),
            "deletecollection",
        );
        op.params = params::query(params::DELETE_COLLECTION);
        op.body = Some(body(DELETE_OPTIONS, false));
        op.responses = ok(STATUS, &[200]);
        operations.push(op);
    }
    route(
        ctx.collection_path(),
        ctx.path_params(false, false),
        operations,
    )
}

fn list(ctx: &Ctx, id: String, description: String) -> Operation {
    let mut op = ctx.op("get", id, description, "list");
    op.params = params::query(params::LIST);
    op.produces = ctx.stream_produces();
    op.responses = ok(
        &list_definition_name(&ctx.info.definition, &ctx.info.kind),
        &[200],
    );
    op
}

fn item(ctx: &Ctx) -> Option<Route> {
    let info = ctx.info;
    let kind = &info.kind;
    let definition = &info.definition;
    let mut operations = Vec::new();
    if info.has_verb("get") {
        operations.push(ctx.read(
            "",
            format!("read the specified {kind}"),
            definition,
            ctx.gvk(),
        ));
    }
    if info.has_verb("update") {
        operations.push(ctx.replace(
            "",
            format!("replace the specified {kind}"),
            definition,
            ctx.gvk(),
        ));
    }
    if info.has_verb("patch") {
        operations.push(ctx.patch(
            "",
            format!("partially update the specified {kind}"),
            definition,
            ctx.gvk(),
        ));
    }
    if info.has_verb("delete") {
        let mut op = ctx.op(
            "delete",
            ctx.id("delete", ""),
            format!("delete a {kind}"),
            "delete",
        );
        op.params = params::query(params::DELETE);
        op.body = Some(body(DELETE_OPTIONS, false));
        op.responses = ok(STATUS, &[200, 202]);
        operations.push(op);
    }
    route(ctx.item_path(), ctx.path_params(true, false), operations)
}

fn all_namespaces(ctx: &Ctx) -> Option<Route> {
    let info = ctx.info;
    if !info.namespaced || !info.has_verb("list") {
        return None;
    }
    let id = format!("list{}{}ForAllNamespaces", ctx.gv.id, info.kind);
    let op = list(
        ctx,
        id,
        format!("list or watch objects of kind {}", info.kind),
    );
    let path = format!("{}/{}", ctx.gv.prefix, info.plural);
    route(path, params::query(&["pretty"]), vec![op])
}

/// The deprecated `/watch/` paths, still used by old clients.
fn watches(ctx: &Ctx) -> Vec<Route> {
    let info = ctx.info;
    if !info.has_verb("watch") {
        return Vec::new();
    }
    let kind = &info.kind;
    let gv_id = &ctx.gv.id;
    let base = format!(
        "{}/watch{}/{}",
        ctx.gv.prefix,
        ctx.namespace_segment(),
        info.plural
    );
    let mut routes = Vec::new();
    let list_description = format!(
        "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
    );
    let item_description = format!(
        "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."
    );
    routes.extend(watch(
        ctx,
        base.clone(),
        ctx.id("watch", "List"),
        list_description.clone(),
        "watchlist",
        false,
    ));
    routes.extend(watch(
        ctx,
        format!("{base}/{{name}}"),
        ctx.id("watch", ""),
        item_description,
        "watch",
        true,
    ));
    if info.namespaced {
        let path = format!("{}/watch/{}", ctx.gv.prefix, info.plural);
        let id = format!("watch{gv_id}{kind}ListForAllNamespaces");
        let mut all = watch(ctx, path, id, list_description, "watchlist", false);
        if let Some(route) = &mut all {
            route.params.retain(|param| param.name != "namespace");
        }
        routes.extend(all);
    }
    routes
}

fn watch(
    ctx: &Ctx,
    path: String,
    id: String,
    description: String,
    action: &'static str,
    item: bool,
) -> Option<Route> {
    let mut op = ctx.op("get", id, description, action);
    op.produces = ctx.stream_produces();
    op.responses = ok(WATCH_EVENT, &[200]);
    let mut path_params = ctx.path_params(item, true);
    path_params.extend(params::query(params::LIST));
    path_params.extend(params::query(&["pretty"]));
    route(path, path_params, vec![op])
}

/// A route, unless it has no operations.
pub(super) fn route(path: String, params: Vec<Param>, operations: Vec<Operation>) -> Option<Route> {
    (!operations.is_empty()).then_some(Route {
        path,
        params,
        operations,
    })
}

//! The routes of subresources: what each one reads and writes (`status` the object itself,
//! `scale` an autoscaling/v1 Scale, `eviction` a policy/v1 Eviction, ...) and the streaming
//! `connect` ones (`exec`, `attach`, `portforward`, `proxy`).

use super::params::{self, Param};
use super::resource::{Ctx, route};
use super::{Gvk, Operation, Payload, Response, Route};

const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";
const BINDING: &str = "io.k8s.api.core.v1.Binding";
const EVICTION: &str = "io.k8s.api.policy.v1.Eviction";
const TOKEN_REQUEST: &str = "io.k8s.api.authentication.v1.TokenRequest";

/// The HTTP methods a proxy subresource forwards.
const PROXY_METHODS: &[&str] = &["delete", "get", "head", "options", "patch", "post", "put"];

fn gvk(group: &str, version: &str, kind: &str) -> Gvk {
    Gvk {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
    }
}

/// `Status`, `Ephemeralcontainers`: how operation ids spell a subresource.
fn suffix(name: &str) -> String {
    super::operation_id_part(name, true)
}

/// The routes of subresource `name` of the context's resource.
pub(super) fn routes(ctx: &Ctx, name: &str) -> Vec<Route> {
    let kind = &ctx.info.kind;
    let definition = ctx.info.definition.as_str();
    let path = format!("{}/{name}", ctx.item_path());
    let params = ctx.path_params(true, false);
    let sfx = suffix(name);
    let operations = match name {
        "scale" => read_write(ctx, &sfx, name, SCALE, gvk("autoscaling", "v1", "Scale")),
        "finalize" => vec![ctx.replace(
            &sfx,
            format!("replace finalize of the specified {kind}"),
            definition,
            ctx.gvk(),
        )],
        "binding" => vec![ctx.create(
            &sfx,
            format!("create binding of a {kind}"),
            BINDING,
            gvk("", "v1", "Binding"),
        )],
        "eviction" => {
            vec![ctx.create(
                &sfx,
                format!("create eviction of a {kind}"),
                EVICTION,
                gvk("policy", "v1", "Eviction"),
            )]
        }
        "token" => vec![ctx.create(
            &sfx,
            format!("create token of a {kind}"),
            TOKEN_REQUEST,
            gvk("authentication.k8s.io", "v1", "TokenRequest"),
        )],
        "log" => vec![log(ctx)],
        "exec" => return connect(ctx, name, &["get", "post"], params::EXEC),
        "attach" => return connect(ctx, name, &["get", "post"], params::ATTACH),
        "portforward" => return connect(ctx, name, &["get", "post"], params::PORT_FORWARD),
        "proxy" => return proxy(ctx),
        // status, ephemeralcontainers, resize, approval, and anything a custom resource adds:
        // the object itself, read and written through the subresource.
        _ => read_write(ctx, &sfx, name, definition, ctx.gvk()),
    };
    route(path, params, operations).into_iter().collect()
}

fn read_write(ctx: &Ctx, sfx: &str, name: &str, payload: &str, gvk: Gvk) -> Vec<Operation> {
    let kind = &ctx.info.kind;
    vec![
        ctx.read(
            sfx,
            format!("read {name} of the specified {kind}"),
            payload,
            gvk.clone(),
        ),
        ctx.replace(
            sfx,
            format!("replace {name} of the specified {kind}"),
            payload,
            gvk.clone(),
        ),
        ctx.patch(
            sfx,
            format!("partially update {name} of the specified {kind}"),
            payload,
            gvk,
        ),
    ]
}

fn log(ctx: &Ctx) -> Operation {
    let mut op = ctx.op(
        "get",
        ctx.id("read", "Log"),
        format!("read log of the specified {}", ctx.info.kind),
        "get",
    );
    op.params = params::query(params::LOG);
    op.produces = vec![
        "text/plain",
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ];
    op.responses = vec![
        Response::new(200, Some(Payload::Text)),
        Response::new(401, None),
    ];
    op
}

/// A streaming subresource: one `connect` operation per method, ids
/// `connect<GV><Method><Scope><Kind><Subresource>`.
fn connect(ctx: &Ctx, name: &str, methods: &[&'static str], query: &[&str]) -> Vec<Route> {
    let operations = connect_operations(ctx, name, methods, query, "");
    let params = ctx.path_params(true, true);
    route(format!("{}/{name}", ctx.item_path()), params, operations)
        .into_iter()
        .collect()
}

fn connect_operations(
    ctx: &Ctx,
    name: &str,
    methods: &[&'static str],
    query: &[&str],
    id_tail: &str,
) -> Vec<Operation> {
    let info = ctx.info;
    let options_kind = format!("{}{}Options", info.kind, options_infix(name));
    methods
        .iter()
        .map(|method| {
            let id = format!(
                "connect{}{}{}{}{}{id_tail}",
                ctx.gv.id,
                super::operation_id_part(method, true),
                ctx.scope,
                info.kind,
                suffix(name)
            );
            let description = format!(
                "connect {} requests to {name} of {}",
                method.to_uppercase(),
                info.kind
            );
            let mut op = ctx.op(method, id, description, "connect");
            op.gvk = Some(gvk(&info.group, &info.version, &options_kind));
            op.params = params::query(query);
            op.produces = vec!["*/*"];
            op.responses = vec![
                Response::new(200, Some(Payload::Text)),
                Response::new(401, None),
            ];
            op
        })
        .collect()
}

/// `PodExecOptions`, `PodPortForwardOptions`, `NodeProxyOptions`: upstream's options kinds.
fn options_infix(name: &str) -> &str {
    match name {
        "exec" => "Exec",
        "attach" => "Attach",
        "portforward" => "PortForward",
        "proxy" => "Proxy",
        _ => "",
    }
}

/// `proxy` and `proxy/{path}`, for every forwarded method.
fn proxy(ctx: &Ctx) -> Vec<Route> {
    let mut routes = connect(ctx, "proxy", PROXY_METHODS, params::PROXY);
    let operations = connect_operations(ctx, "proxy", PROXY_METHODS, &[], "WithPath");
    let mut path_params: Vec<Param> = ctx.path_params(true, true);
    path_params.push(params::path("path", "path to the resource"));
    routes.extend(route(
        format!("{}/proxy/{{path}}", ctx.item_path()),
        path_params,
        operations,
    ));
    routes
}

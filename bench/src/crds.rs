//! Custom-resource creates beside ConfigMap creates, and what CEL validation adds to each.
//!
//! Two CRDs in a throwaway group `<prefix>.bench.example.com` share one structural schema
//! (types, bounds, enums, a pattern, required fields): `widgets` has nothing more, and
//! `gadgets` adds the CEL `x-kubernetes-validations` rules of [`rules`] on `spec`. Before
//! anything is timed, both must be Established and accept a create, and one invalid
//! object of each must be refused, so the schema and the rules demonstrably run. Then, at
//! each connection count, as many ConfigMaps, widgets and gadgets are created, with bodies
//! of about the same size: gadgets minus widgets is the price of the rules, and widgets
//! against ConfigMaps the price of the custom-resource path. The CRDs are deleted at the
//! end, which deletes their objects.
//!
//! This module owns the definitions, the object bodies and the phase. The caller keeps the
//! names of the CRDs created so far, so its cleanup can remove them if the phase stops
//! early.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::conn::{Conn, JSON, Op, Pool, describe_failure};
use crate::fixtures::{LABEL, configmap, creates};
use crate::load;
use crate::report::{Row, fmt_bytes, fmt_delta};

/// Where CRDs live.
const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

/// The two custom resources: the same schema, without and with CEL rules.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Widget,
    Gadget,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Widget, Kind::Gadget];

    fn kind(self) -> &'static str {
        match self {
            Kind::Widget => "Widget",
            Kind::Gadget => "Gadget",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Kind::Widget => "widgets",
            Kind::Gadget => "gadgets",
        }
    }
}

/// What the phase needs from the run.
pub struct Spec<'a> {
    /// Namespace the ConfigMaps and custom resources are created in.
    pub ns: &'a str,
    /// The run's `bench-<random>` prefix, which names the CRDs' group.
    pub prefix: &'a str,
    /// Creates per kind at each connection count.
    pub count: usize,
    /// Connection counts, as for the ConfigMap create phase.
    pub conns: &'a [usize],
    /// Upper bound on each step.
    pub limit: Duration,
    /// Leave the CRDs (and so their objects) in place.
    pub keep: bool,
}

/// The CEL rules on the gadgets' `spec`. Every one holds for [`object`]'s bodies; the
/// second one's message is built by a `messageExpression`, which runs only on failure.
fn rules() -> Value {
    json!([
        {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"},
        {"rule": "self.name.startsWith('g')", "messageExpression": "'name ' + self.name + ' must start with g'"},
        {"rule": "self.items.all(i, i.size() < 64)", "message": "every item must be shorter than 64 characters"},
        {"rule": "self.image.contains(':') && !self.image.endsWith(':latest')", "message": "image must be pinned to a tag other than latest"},
    ])
}

/// The schema both kinds share, plus [`rules`] for gadgets. Lists and strings are bounded
/// so that an upstream apiserver's CEL cost estimate accepts the rules.
fn schema(kind: Kind) -> Value {
    let mut spec = json!({
        "type": "object",
        "required": ["name", "image", "replicas", "maxReplicas", "items"],
        "properties": {
            "name": {"type": "string", "maxLength": 63, "pattern": "^[a-z][a-z0-9-]*$"},
            "image": {"type": "string", "minLength": 1, "maxLength": 256},
            "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
            "maxReplicas": {"type": "integer", "minimum": 1, "maximum": 1000},
            "size": {"type": "string", "enum": ["small", "medium", "large"]},
            "logLevel": {"type": "string", "enum": ["debug", "info", "warn", "error"]},
            "items": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 128}},
        },
    });
    if kind == Kind::Gadget {
        spec["x-kubernetes-validations"] = rules();
    }
    json!({"type": "object", "required": ["spec"], "properties": {"spec": spec}})
}

/// The group of this run's CRDs.
fn group(prefix: &str) -> String {
    format!("{prefix}.bench.example.com")
}

/// The CRD's name, `<plural>.<group>`.
fn crd_name(kind: Kind, group: &str) -> String {
    format!("{}.{group}", kind.plural())
}

fn definition(kind: Kind, group: &str) -> Bytes {
    let body = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(kind, group), "labels": {LABEL.0: LABEL.1}},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": kind.plural(),
                "singular": kind.kind().to_lowercase(),
                "kind": kind.kind(),
                "listKind": format!("{}List", kind.kind()),
            },
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": schema(kind)},
            }],
        },
    });
    Bytes::from(body.to_string())
}

/// The collection of `kind` in `ns`.
fn cr_collection(group: &str, ns: &str, kind: Kind) -> String {
    format!("/apis/{group}/v1/namespaces/{ns}/{}", kind.plural())
}

/// A valid object of `kind`, about the size of a bench ConfigMap.
fn object(group: &str, kind: Kind, name: &str) -> Value {
    json!({
        "apiVersion": format!("{group}/v1"),
        "kind": kind.kind(),
        "metadata": {"name": name, "labels": {LABEL.0: LABEL.1, "bench/name": name}},
        "spec": {
            "name": format!("gizmo-{name}"),
            "image": "registry.k8s.io/pause:3.10",
            "replicas": 3,
            "maxReplicas": 10,
            "size": "small",
            "logLevel": "info",
            "items": ["alpha", "beta", "gamma"],
        },
    })
}

fn create(path: String, body: &Value) -> Op {
    Op::with_body(Method::POST, path, JSON, Bytes::from(body.to_string()))
}

/// Runs the phase, returning its rows. Each CRD's name goes into `created` as soon as it
/// exists and leaves it once deleted.
pub async fn run(pool: &Pool, spec: &Spec<'_>, created: &mut Vec<String>) -> Result<Vec<Row>> {
    let group = group(spec.prefix);
    let conn = pool.first();
    eprintln!(
        "+++ crds: creating CRDs widgets and gadgets ({} CEL rules) in group {group}",
        rules_count()
    );
    let start = Instant::now();
    let deadline = start + spec.limit;
    for kind in Kind::ALL {
        let name = crd_name(kind, &group);
        let op = Op::with_body(Method::POST, CRDS, JSON, definition(kind, &group));
        conn.send_ok(&op)
            .await
            .with_context(|| format!("cannot create CRD {name}"))?;
        created.push(name);
    }
    let mut objects = [0; 2];
    for (kind, made) in Kind::ALL.into_iter().zip(&mut objects) {
        wait_established(conn, &crd_name(kind, &group), deadline).await?;
        wait_answering(conn, &group, spec.ns, kind, deadline).await?;
        *made += 1;
    }
    let mut rows = vec![Row {
        name: "establish 2 crds, until a create works".into(),
        conns: 1,
        ops: 2,
        rate: None,
        p50: Some(start.elapsed()),
        p99: None,
        bytes: None,
        note: String::new(),
    }];
    let warning = check_refusals(conn, &group, spec.ns, &mut objects).await?;
    for &conns in spec.conns {
        let (three, made) = timed_creates(pool, spec, &group, conns).await?;
        objects = [objects[0] + made[0], objects[1] + made[1]];
        rows.extend(compare(three, &warning));
    }
    if spec.keep {
        return Ok(rows);
    }
    for (kind, made) in Kind::ALL.into_iter().zip(objects) {
        let name = crd_name(kind, &group);
        eprintln!("+++ crds: deleting {name} and its {made} objects");
        let took = delete(conn, &name, spec.limit).await?;
        created.retain(|n| *n != name);
        rows.push(Row {
            name: format!("delete crd {} + {made} objects", kind.plural()),
            conns: 1,
            ops: 1,
            rate: None,
            p50: Some(took),
            p99: None,
            bytes: None,
            note: "until the CRD is gone (the server deletes its objects first)".into(),
        });
    }
    Ok(rows)
}

/// Polls the CRD until its `Established` condition is `True`.
async fn wait_established(conn: &Conn, name: &str, deadline: Instant) -> Result<()> {
    let op = Op::get(format!("{CRDS}/{name}"), JSON);
    loop {
        let reply = conn.send_ok(&op).await?;
        let crd: Value = serde_json::from_slice(&reply.body)
            .with_context(|| format!("CRD {name} is not JSON"))?;
        let conditions = crd.pointer("/status/conditions").cloned();
        let established = conditions
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Established" && c["status"] == "True")
            });
        if established {
            return Ok(());
        }
        if Instant::now() >= deadline || load::stopping() {
            bail!(
                "CRD {name} is not Established; its conditions: {}",
                conditions.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a valid `probe` object until the server takes it: an Established CRD may
/// still take a moment to be routed.
async fn wait_answering(
    conn: &Conn,
    group: &str,
    ns: &str,
    kind: Kind,
    deadline: Instant,
) -> Result<()> {
    let op = create(
        cr_collection(group, ns, kind),
        &object(group, kind, "probe"),
    );
    loop {
        let reply = conn.send(&op).await?;
        if reply.status == StatusCode::CREATED {
            return Ok(());
        }
        let routed_yet = reply.status != StatusCode::NOT_FOUND;
        if routed_yet || Instant::now() >= deadline || load::stopping() {
            bail!(
                "{} are not served: a valid create got {}",
                kind.plural(),
                describe_failure(&reply)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends one invalid widget (a schema violation) and one invalid gadget (only CEL
/// violations), each of which must get a 422 naming the broken rules. Returns a warning
/// for the table when a server accepted one, which makes the comparison meaningless.
async fn check_refusals(
    conn: &Conn,
    group: &str,
    ns: &str,
    objects: &mut [usize; 2],
) -> Result<String> {
    let mut widget = object(group, Kind::Widget, "invalid");
    widget["spec"]["replicas"] = json!(-1);
    let mut gadget = object(group, Kind::Gadget, "invalid");
    gadget["spec"]["name"] = json!("widget-invalid");
    gadget["spec"]["replicas"] = json!(20);
    let probes = [
        (Kind::Widget, widget, &["spec.replicas"][..]),
        (
            Kind::Gadget,
            gadget,
            &[
                "replicas must not exceed maxReplicas",
                "name widget-invalid must start with g",
            ][..],
        ),
    ];
    let mut warnings = Vec::new();
    for ((kind, body, expected), made) in probes.into_iter().zip(objects.iter_mut()) {
        let reply = conn
            .send(&create(cr_collection(group, ns, kind), &body))
            .await?;
        let message = describe_failure(&reply);
        if reply.status.is_success() {
            *made += 1;
        }
        let missing: Vec<&str> = expected
            .iter()
            .copied()
            .filter(|e| !message.contains(e))
            .collect();
        if reply.status != StatusCode::UNPROCESSABLE_ENTITY || !missing.is_empty() {
            warnings.push(format!(
                "an invalid {} got {} (expected 422 naming {missing:?})",
                kind.kind().to_lowercase(),
                reply.status.as_u16()
            ));
            eprintln!("!!! crds: invalid {} got {message}", kind.plural());
        }
    }
    Ok(warnings.join("; "))
}

/// Creates `spec.count` ConfigMaps, widgets and gadgets over `conns` connections, one
/// kind after the other, returning their rows and how many widgets and gadgets were made.
/// An untimed round of each kind goes first, so that no kind pays for warming up the
/// connections, the server's caches or the storage for the others.
async fn timed_creates(
    pool: &Pool,
    spec: &Spec<'_>,
    group: &str,
    conns: usize,
) -> Result<(Vec<Row>, [usize; 2])> {
    let targets = [
        ("create configmap (CR baseline)".to_string(), None),
        (
            "create widget CR (schema only)".to_string(),
            Some(Kind::Widget),
        ),
        (
            format!("create gadget CR (schema + {} CEL)", rules_count()),
            Some(Kind::Gadget),
        ),
    ];
    let ops = |kind: Option<Kind>, round: &str, n: usize| -> Vec<Op> {
        let names = (0..n).map(|i| format!("{round}{conns}-{i:06}"));
        match kind {
            None => creates(spec.ns, "configmaps", names, configmap),
            Some(kind) => {
                let path = cr_collection(group, spec.ns, kind);
                names
                    .map(|name| create(path.clone(), &object(group, kind, &name)))
                    .collect()
            }
        }
    };
    let mut made = [0; 2];
    let warm_up = (spec.count / 10).max(conns);
    eprintln!("+++ crds: warming up with {warm_up} creates of each kind over {conns} connections");
    for (_, kind) in &targets {
        let outcome = load::run(
            pool.take(conns),
            Arc::new(ops(*kind, "w", warm_up)),
            StatusCode::CREATED,
            spec.limit,
        )
        .await;
        if let Some(kind) = kind {
            made[*kind as usize] += outcome.ok();
        }
    }
    let mut rows = Vec::new();
    for (label, kind) in targets {
        if load::stopping() {
            bail!("interrupted");
        }
        let ops = ops(kind, "c", spec.count);
        let body = ops[0].body.as_ref().map_or(0, |(_, b)| b.len() as u64);
        eprintln!(
            "+++ crds: {} x {label} ({} bodies) over {conns} connections",
            spec.count,
            fmt_bytes(body)
        );
        let outcome = load::run(
            pool.take(conns),
            Arc::new(ops),
            StatusCode::CREATED,
            spec.limit,
        )
        .await;
        if let Some(kind) = kind {
            made[kind as usize] += outcome.ok();
        }
        rows.push(Row::from_outcome(label, conns, &outcome, false));
    }
    Ok((rows, made))
}

fn rules_count() -> usize {
    rules().as_array().map_or(0, Vec::len)
}

/// Adds the derived numbers to the ConfigMap, widget and gadget rows of one connection
/// count: each custom resource's rate against the ConfigMaps', and the CEL overhead per
/// create, gadget p50 minus widget p50 (p99 alongside).
fn compare(mut rows: Vec<Row>, warning: &str) -> Vec<Row> {
    let [configmap, widget, gadget] = rows.as_mut_slice() else {
        return rows;
    };
    let ratio = |row: &Row, base: &Row| match (row.rate, base.rate) {
        (Some(rate), Some(base)) => Some(rate / base),
        _ => None,
    };
    if let Some(r) = ratio(widget, configmap) {
        widget.prepend_note(format!("{r:.2}x configmap creates/s"));
    }
    let mut notes = Vec::new();
    if let (Some(g), Some(w)) = (gadget.p50, widget.p50) {
        let p99 = match (gadget.p99, widget.p99) {
            (Some(g), Some(w)) => format!(" ({} at p99)", fmt_delta(g, w)),
            _ => String::new(),
        };
        notes.push(format!(
            "CEL overhead per create {} at p50{p99}",
            fmt_delta(g, w)
        ));
    }
    if let Some(r) = ratio(gadget, widget) {
        notes.push(format!("{r:.2}x widget creates/s"));
    }
    if let Some(r) = ratio(gadget, configmap) {
        notes.push(format!("{r:.2}x configmap creates/s"));
    }
    if !warning.is_empty() {
        notes.push(format!("CEL NOT CHECKED: {warning}"));
    }
    gadget.prepend_note(notes.join(", "));
    rows
}

/// Deletes CRD `name` and waits until it is gone, which is after the server deleted all
/// of its objects. Returns how long that took.
pub async fn delete(conn: &Conn, name: &str, limit: Duration) -> Result<Duration> {
    let get = Op::get(format!("{CRDS}/{name}"), JSON);
    let start = Instant::now();
    let reply = conn
        .send(&Op {
            method: Method::DELETE,
            ..get.clone()
        })
        .await?;
    if !reply.status.is_success() && reply.status != StatusCode::NOT_FOUND {
        bail!("deleting CRD {name}: {}", describe_failure(&reply));
    }
    loop {
        let reply = conn.send(&get).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= limit {
            return Err(anyhow!(
                "CRD {name} still exists {}s after its deletion: {}",
                limit.as_secs(),
                String::from_utf8_lossy(&reply.body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

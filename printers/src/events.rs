//! Events, in both shapes: core/v1 (`involvedObject`, `message`, `firstTimestamp`, ...)
//! and events.k8s.io/v1 (`regarding`, `note`, `deprecatedFirstTimestamp`, ...). Upstream
//! prints both through one printer, so they share columns and cells here.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::format::{int, or, present, s, since, time};
use crate::{Column, Printer, col, wide};

pub(crate) fn printer(resource: &str) -> Option<&'static Printer> {
    (resource == "events").then_some(&EVENTS)
}

static EVENTS: Printer = Printer {
    columns: EVENT_COLUMNS,
    cells: event_cells,
};
const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "Time since the event was last observed.",
    ),
    col("Type", "string", "Type of the event (Normal, Warning)."),
    col(
        "Reason",
        "string",
        "Short machine-readable reason of the event.",
    ),
    col(
        "Object",
        "string",
        "Kind/name of the object the event is about.",
    ),
    wide(
        "Subobject",
        "string",
        "Part of the object the event is about, e.g. a container.",
    ),
    wide(
        "Source",
        "string",
        "Component (and host) that reported the event.",
    ),
    col(
        "Message",
        "string",
        "Human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "Time since the event was first observed.",
    ),
    wide("Count", "string", "Number of times the event occurred."),
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name of the event object.",
        priority: 1,
    },
];

/// A field under its core/v1 name, else its events.k8s.io/v1 name.
fn field<'a>(event: &'a Value, core: &str, new: &str) -> &'a Value {
    match &event[core] {
        Value::Null => &event[new],
        v => v,
    }
}

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = match time(field(event, "firstTimestamp", "deprecatedFirstTimestamp")) {
        Some(t) => since(Some(t), now),
        None => since(time(&event["eventTime"]), now),
    };
    let mut last = match time(field(event, "lastTimestamp", "deprecatedLastTimestamp")) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let series = &event["series"];
    let count = if present(series) {
        last = since(time(&series["lastObservedTime"]), now);
        int(&series["count"])
    } else {
        match int(field(event, "count", "deprecatedCount")) {
            0 => 1, // singleton events of the new API carry no count
            n => n,
        }
    };
    let regarding = field(event, "involvedObject", "regarding");
    let kind = s(&regarding["kind"]).to_lowercase();
    let target = match s(&regarding["name"]) {
        "" => kind,
        name => format!("{kind}/{name}"),
    };
    let source = field(event, "source", "deprecatedSource");
    let component = or(
        s(&source["component"]),
        s(field(event, "reportingComponent", "reportingController")),
    );
    let instance = or(s(&source["host"]), s(&event["reportingInstance"]));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        Value::from(last),
        Value::from(s(&event["type"])),
        Value::from(s(&event["reason"])),
        Value::from(target),
        Value::from(s(&regarding["fieldPath"])),
        Value::from(source),
        Value::from(s(field(event, "message", "note")).trim()),
        Value::from(first),
        Value::from(count),
        Value::from(s(&event["metadata"]["name"])),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{NOW, ago};
    use serde_json::json;

    #[test]
    fn core_event() {
        let e = json!({
            "metadata": {"name": "web-1.17a", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "type": "Normal", "message": "Container image \"nginx\" already present\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 4
        });
        assert_eq!(
            event_cells(&e, NOW),
            vec![
                json!("30s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/web-1"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Container image \"nginx\" already present"),
                json!("10m"),
                json!(4),
                json!("web-1.17a")
            ]
        );
    }

    #[test]
    fn new_api_event_with_series_and_micro_time() {
        let e = json!({
            "metadata": {"name": "n.1"},
            "regarding": {"kind": "Node", "name": "node-1"},
            "reason": "Starting", "type": "Normal", "note": "Starting kubelet.",
            "reportingController": "kubelet", "reportingInstance": "node-1",
            "eventTime": "2023-11-14T22:12:19.500000Z",
            "series": {"count": 3, "lastObservedTime": "2023-11-14T22:13:09.900000Z"}
        });
        let c = event_cells(&e, NOW);
        assert_eq!(c[0], json!("10s"));
        assert_eq!(c[3], json!("node/node-1"));
        assert_eq!(c[5], json!("kubelet, node-1"));
        assert_eq!(c[6], json!("Starting kubelet."));
        assert_eq!(c[7], json!("60s"));
        assert_eq!(c[8], json!(3));
    }

    #[test]
    fn singleton_event_without_timestamps() {
        let e = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Namespace"}, "source": {"component": "ctl"}});
        let c = event_cells(&e, NOW);
        assert_eq!(c[0], json!("<unknown>"));
        assert_eq!(c[3], json!("namespace"));
        assert_eq!(c[5], json!("ctl"));
        assert_eq!(c[8], json!(1));
    }
}

//! Volumes and autoscaling as a kubectl user meets them on a cluster with the
//! controller-manager: a claim binds to a pre-provisioned volume, a deleted claim
//! releases it, and `kubectl autoscale` gets an HPA that reports it has no metrics API.

use std::time::Duration;

use conformance::*;

#[test]
fn a_claim_binds_to_a_preprovisioned_volume() {
    let mut ns = Namespace::new("storage");
    let class = unique_name("manual");
    let pv = unique_name("pv");
    ns.cleanup_cluster_object(&format!("pv/{pv}"));
    let manifest = ns.write(
        "volume.yaml",
        &format!(
            "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: {pv}\nspec:\n  storageClassName: {class}\n  capacity:\n    storage: 2Gi\n  accessModes: [ReadWriteOnce]\n  persistentVolumeReclaimPolicy: Retain\n  hostPath:\n    path: /tmp/{pv}\n---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\nspec:\n  storageClassName: {class}\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
        ),
    );
    ns.k(&["apply", "-f", &manifest]).ok();
    ns.eventually("the claim to bind", Duration::from_secs(60), || {
        ns.k(&["get", "pvc", "data", "-o", "jsonpath={.status.phase}"])
            .stdout
            == "Bound"
    });
    ns.k(&[
        "get",
        "pvc",
        "data",
        "-o",
        "jsonpath={.spec.volumeName} {.status.capacity.storage}",
    ])
    .ok_exactly(&format!("{pv} 2Gi"));
    ns.k(&[
        "get",
        "pv",
        &pv,
        "-o",
        "jsonpath={.status.phase} {.spec.claimRef.name}",
    ])
    .ok_exactly("Bound data");
    // kubectl's columns come from the server's table
    let table = ns.k(&["get", "pvc", "data"]).ok().to_string();
    let header = table.lines().next().unwrap_or("");
    assert!(
        header.starts_with("NAME") && header.contains("STATUS") && header.contains("VOLUME"),
        "{table}"
    );
    assert!(table.contains(&format!("Bound    {pv}")), "{table}");

    // deleting the claim releases the volume, which Retain keeps
    ns.k(&["delete", "pvc", "data"]).ok();
    ns.eventually("the volume to be released", Duration::from_secs(60), || {
        ns.k(&["get", "pv", &pv, "-o", "jsonpath={.status.phase}"])
            .stdout
            == "Released"
    });
}

#[test]
fn autoscale_without_a_metrics_api_says_so() {
    let ns = Namespace::new("hpa");
    ns.k(&["create", "deployment", "web", "--image=busybox"])
        .ok_exactly("deployment.apps/web created");
    ns.k(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=1",
        "--max=3",
    ])
    .ok_exactly("horizontalpodautoscaler.autoscaling/web autoscaled");
    let reason = "jsonpath={.status.conditions[?(@.type==\"ScalingActive\")].reason}";
    ns.eventually(
        "the HPA's ScalingActive condition",
        Duration::from_secs(60),
        || ns.k(&["get", "hpa", "web", "-o", reason]).stdout == "FailedGetResourceMetric",
    );
    ns.k(&[
        "get",
        "hpa",
        "web",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"AbleToScale\")].reason}",
    ])
    .ok_exactly("SucceededGetScale");
}

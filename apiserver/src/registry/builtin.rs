//! The built-in resources, with upstream's names, short names, categories, scope, verbs and
//! subresources. Order is discovery order (groups as upstream lists them under `/apis`).

use super::{ALL_VERBS, ResourceInfo};

/// Scope of a resource.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Namespaced,
    Cluster,
}
use Scope::{Cluster, Namespaced};

/// Compact description of one built-in resource; expanded into a [`ResourceInfo`].
struct Def {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
    short: &'static [&'static str],
    categories: &'static [&'static str],
    sub: &'static [&'static str],
    verbs: &'static [&'static str],
    /// Overrides `plural` as the storage key segment (upstream's etcd layout).
    storage: Option<&'static str>,
    storage_version: Option<&'static str>,
    fields: &'static [&'static str],
}

const fn def(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
) -> Def {
    Def {
        group,
        version,
        kind,
        plural,
        scope,
        short: &[],
        categories: &[],
        sub: &[],
        verbs: ALL_VERBS,
        storage: None,
        storage_version: None,
        fields: &[],
    }
}

impl Def {
    const fn short(mut self, s: &'static [&'static str]) -> Self {
        self.short = s;
        self
    }
    const fn all(mut self) -> Self {
        self.categories = &["all"];
        self
    }
    const fn sub(mut self, s: &'static [&'static str]) -> Self {
        self.sub = s;
        self
    }
    const fn verbs(mut self, v: &'static [&'static str]) -> Self {
        self.verbs = v;
        self
    }
    const fn storage(mut self, s: &'static str) -> Self {
        self.storage = Some(s);
        self
    }
    const fn stored_as(mut self, v: &'static str) -> Self {
        self.storage_version = Some(v);
        self
    }
    const fn fields(mut self, f: &'static [&'static str]) -> Self {
        self.fields = f;
        self
    }
}

const READ_ONLY: &[&str] = &["get", "list"];
const CREATE_ONLY: &[&str] = &["create"];
const NO_COLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// The OpenAPI definition package of a group, as upstream names it.
fn definition_package(group: &str) -> String {
    match group {
        "" => "io.k8s.api.core".into(),
        "apiextensions.k8s.io" => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".into(),
        "apiregistration.k8s.io" => "io.k8s.kube-aggregator.pkg.apis.apiregistration".into(),
        g => {
            let short = g.strip_suffix(".k8s.io").unwrap_or(g);
            let short = match short {
                "rbac.authorization" => "rbac",
                "flowcontrol.apiserver" => "flowcontrol",
                other => other,
            };
            format!("io.k8s.api.{short}")
        }
    }
}

fn defs() -> Vec<Def> {
    vec![
        // core/v1, in upstream's discovery order.
        def("", "v1", "Binding", "bindings", Namespaced).verbs(CREATE_ONLY),
        def("", "v1", "ComponentStatus", "componentstatuses", Cluster)
            .short(&["cs"])
            .verbs(READ_ONLY),
        def("", "v1", "ConfigMap", "configmaps", Namespaced).short(&["cm"]),
        def("", "v1", "Endpoints", "endpoints", Namespaced)
            .short(&["ep"])
            .storage("services/endpoints"),
        def("", "v1", "Event", "events", Namespaced)
            .short(&["ev"])
            .fields(&[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
            ]),
        def("", "v1", "LimitRange", "limitranges", Namespaced).short(&["limits"]),
        def("", "v1", "Namespace", "namespaces", Cluster)
            .short(&["ns"])
            .sub(&["finalize", "status"])
            .verbs(NO_COLLECTION)
            .fields(&["status.phase"]),
        def("", "v1", "Node", "nodes", Cluster)
            .short(&["no"])
            .sub(&["proxy", "status"])
            .storage("minions")
            .fields(&["spec.unschedulable"]),
        def(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            Namespaced,
        )
        .short(&["pvc"])
        .sub(&["status"]),
        def("", "v1", "PersistentVolume", "persistentvolumes", Cluster)
            .short(&["pv"])
            .sub(&["status"]),
        def("", "v1", "Pod", "pods", Namespaced)
            .short(&["po"])
            .all()
            .sub(&[
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "resize",
                "status",
            ])
            .fields(&[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ]),
        def("", "v1", "PodTemplate", "podtemplates", Namespaced),
        def(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            Namespaced,
        )
        .short(&["rc"])
        .all()
        .sub(&["scale", "status"])
        .storage("controllers")
        .fields(&["status.replicas"]),
        def("", "v1", "ResourceQuota", "resourcequotas", Namespaced)
            .short(&["quota"])
            .sub(&["status"]),
        def("", "v1", "Secret", "secrets", Namespaced).fields(&["type"]),
        def("", "v1", "ServiceAccount", "serviceaccounts", Namespaced)
            .short(&["sa"])
            .sub(&["token"]),
        def("", "v1", "Service", "services", Namespaced)
            .short(&["svc"])
            .all()
            .sub(&["proxy", "status"])
            .storage("services/specs")
            .fields(&["spec.clusterIP", "spec.type"]),
        // apiregistration.k8s.io
        def(
            "apiregistration.k8s.io",
            "v1",
            "APIService",
            "apiservices",
            Cluster,
        )
        .sub(&["status"]),
        // apps
        def(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            Namespaced,
        ),
        def("apps", "v1", "DaemonSet", "daemonsets", Namespaced)
            .short(&["ds"])
            .all()
            .sub(&["status"]),
        def("apps", "v1", "Deployment", "deployments", Namespaced)
            .short(&["deploy"])
            .all()
            .sub(&["scale", "status"]),
        def("apps", "v1", "ReplicaSet", "replicasets", Namespaced)
            .short(&["rs"])
            .all()
            .sub(&["scale", "status"])
            .fields(&["status.replicas"]),
        def("apps", "v1", "StatefulSet", "statefulsets", Namespaced)
            .short(&["sts"])
            .all()
            .sub(&["scale", "status"]),
        // events.k8s.io
        def("events.k8s.io", "v1", "Event", "events", Namespaced)
            .short(&["ev"])
            .stored_as("v1"),
        // authentication.k8s.io and authorization.k8s.io: reviews, answered and never stored
        def(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            Cluster,
        )
        .verbs(CREATE_ONLY),
        def(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            Cluster,
        )
        .verbs(CREATE_ONLY),
        def(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            Namespaced,
        )
        .verbs(CREATE_ONLY),
        def(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            Cluster,
        )
        .verbs(CREATE_ONLY),
        def(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            Cluster,
        )
        .verbs(CREATE_ONLY),
        def(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            Cluster,
        )
        .verbs(CREATE_ONLY),
        // autoscaling: v2 preferred, v1 converted.
        def(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            Namespaced,
        )
        .short(&["hpa"])
        .all()
        .sub(&["status"])
        .stored_as("v2"),
        def(
            "autoscaling",
            "v1",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            Namespaced,
        )
        .short(&["hpa"])
        .all()
        .sub(&["status"])
        .stored_as("v2"),
        // batch
        def("batch", "v1", "CronJob", "cronjobs", Namespaced)
            .short(&["cj"])
            .all()
            .sub(&["status"]),
        def("batch", "v1", "Job", "jobs", Namespaced)
            .all()
            .sub(&["status"])
            .fields(&["status.successful"]),
        // certificates.k8s.io
        def(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            Cluster,
        )
        .short(&["csr"])
        .sub(&["approval", "status"])
        .fields(&["spec.signerName"]),
        // networking.k8s.io
        def(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            Cluster,
        ),
        def(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            Namespaced,
        )
        .short(&["ing"])
        .sub(&["status"]),
        def(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            Namespaced,
        )
        .short(&["netpol"]),
        // policy
        def(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            Namespaced,
        )
        .short(&["pdb"])
        .sub(&["status"]),
        // rbac.authorization.k8s.io
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            Cluster,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            Cluster,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            Namespaced,
        ),
        def(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            Namespaced,
        ),
        // storage.k8s.io
        def("storage.k8s.io", "v1", "CSIDriver", "csidrivers", Cluster),
        def("storage.k8s.io", "v1", "CSINode", "csinodes", Cluster),
        def(
            "storage.k8s.io",
            "v1",
            "CSIStorageCapacity",
            "csistoragecapacities",
            Namespaced,
        ),
        def(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            Cluster,
        )
        .short(&["sc"]),
        def(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            Cluster,
        )
        .sub(&["status"]),
        // admissionregistration.k8s.io
        def(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            Cluster,
        )
        .categories(&["api-extensions"]),
        def(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            Cluster,
        )
        .categories(&["api-extensions"])
        .sub(&["status"]),
        def(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            Cluster,
        )
        .categories(&["api-extensions"]),
        def(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            Cluster,
        )
        .categories(&["api-extensions"]),
        // apiextensions.k8s.io
        def(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            Cluster,
        )
        .short(&["crd", "crds"])
        .categories(&["api-extensions"])
        .sub(&["status"]),
        // scheduling.k8s.io
        def(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            Cluster,
        )
        .short(&["pc"]),
        // coordination.k8s.io
        def("coordination.k8s.io", "v1", "Lease", "leases", Namespaced),
        // node.k8s.io
        def(
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "runtimeclasses",
            Cluster,
        ),
        // discovery.k8s.io
        def(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            Namespaced,
        ),
        // flowcontrol.apiserver.k8s.io
        def(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
            "flowschemas",
            Cluster,
        )
        .sub(&["status"]),
        def(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
            "prioritylevelconfigurations",
            Cluster,
        )
        .sub(&["status"]),
    ]
}

impl Def {
    const fn categories(mut self, c: &'static [&'static str]) -> Self {
        self.categories = c;
        self
    }
}

/// Every built-in resource, expanded, in discovery order.
pub fn builtin_resources() -> Vec<ResourceInfo> {
    defs()
        .into_iter()
        .map(|d| {
            let strings = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
            let storage_resource = match (d.group, d.plural) {
                // upstream stores both event APIs under one key
                ("events.k8s.io", "events") => "events".to_string(),
                _ => d.storage.unwrap_or(d.plural).to_string(),
            };
            ResourceInfo {
                group: d.group.into(),
                version: d.version.into(),
                kind: d.kind.into(),
                plural: d.plural.into(),
                singular: d.kind.to_lowercase(),
                short_names: strings(d.short),
                categories: strings(d.categories),
                namespaced: d.scope == Namespaced,
                verbs: strings(d.verbs),
                subresources: strings(d.sub),
                storage_resource,
                storage_version: d.storage_version.unwrap_or(d.version).into(),
                definition: format!("{}.{}.{}", definition_package(d.group), d.version, d.kind),
                selectable_fields: strings(d.fields),
            }
        })
        .collect()
}

//! The catalog of k8s-openapi types whose schemas are published.
//!
//! Rust has no reflection, so this is the one place that names the k8s-openapi types: every
//! top-level kind k8s-openapi generates (each `impl Resource`), plus the meta types that
//! operations reference by name. Kinds carry their group/version/kind from k8s-openapi's
//! `Resource` constants, so nothing here restates a GVK. Which of these kinds are *served* is
//! decided by the resource registry, never here.

use k8s_openapi::{ListableResource, Resource};
use k8s_openapi::{api, apiextensions_apiserver, apimachinery, kube_aggregator};
use schemars::{JsonSchema, SchemaGenerator};

/// One top-level kind found in k8s-openapi.
#[derive(Debug, Clone)]
pub(crate) struct CatalogKind {
    /// Definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub definition: String,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The kind of the list type (`DeploymentList`), when the kind is listable.
    pub list_kind: Option<&'static str>,
}

fn listable<T: ListableResource + JsonSchema>(generator: &mut SchemaGenerator) -> CatalogKind {
    generator.subschema_for::<T>();
    CatalogKind {
        definition: T::schema_name().into_owned(),
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        list_kind: Some(T::LIST_KIND),
    }
}

fn single<T: Resource + JsonSchema>(generator: &mut SchemaGenerator) -> CatalogKind {
    generator.subschema_for::<T>();
    CatalogKind {
        definition: T::schema_name().into_owned(),
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        list_kind: None,
    }
}

macro_rules! catalog {
    (listable: [$($l:ty),* $(,)?], single: [$($s:ty),* $(,)?], schemas: [$($t:ty),* $(,)?] $(,)?) => {
        /// Adds every catalogued schema (and all it references) to `generator`, returning the
        /// top-level kinds.
        pub(crate) fn collect(generator: &mut SchemaGenerator) -> Vec<CatalogKind> {
            let kinds = vec![
                $( listable::<$l>(generator), )*
                $( single::<$s>(generator), )*
            ];
            $( generator.subschema_for::<$t>(); )*
            kinds
        }
    };
}

catalog! {
    listable: [
        api::admissionregistration::v1::MutatingWebhookConfiguration,
        api::admissionregistration::v1::ValidatingAdmissionPolicy,
        api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        api::admissionregistration::v1alpha1::MutatingAdmissionPolicy,
        api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding,
        api::admissionregistration::v1beta1::MutatingAdmissionPolicy,
        api::admissionregistration::v1beta1::MutatingAdmissionPolicyBinding,
        api::apiserverinternal::v1alpha1::StorageVersion,
        api::apps::v1::ControllerRevision,
        api::apps::v1::DaemonSet,
        api::apps::v1::Deployment,
        api::apps::v1::ReplicaSet,
        api::apps::v1::StatefulSet,
        api::autoscaling::v1::HorizontalPodAutoscaler,
        api::autoscaling::v2::HorizontalPodAutoscaler,
        api::batch::v1::CronJob,
        api::batch::v1::Job,
        api::certificates::v1::CertificateSigningRequest,
        api::certificates::v1alpha1::ClusterTrustBundle,
        api::certificates::v1beta1::ClusterTrustBundle,
        api::certificates::v1beta1::PodCertificateRequest,
        api::coordination::v1::Lease,
        api::coordination::v1alpha2::LeaseCandidate,
        api::coordination::v1beta1::LeaseCandidate,
        api::core::v1::ComponentStatus,
        api::core::v1::ConfigMap,
        api::core::v1::Endpoints,
        api::core::v1::Event,
        api::core::v1::LimitRange,
        api::core::v1::Namespace,
        api::core::v1::Node,
        api::core::v1::PersistentVolume,
        api::core::v1::PersistentVolumeClaim,
        api::core::v1::Pod,
        api::core::v1::PodTemplate,
        api::core::v1::ReplicationController,
        api::core::v1::ResourceQuota,
        api::core::v1::Secret,
        api::core::v1::Service,
        api::core::v1::ServiceAccount,
        api::discovery::v1::EndpointSlice,
        api::events::v1::Event,
        api::flowcontrol::v1::FlowSchema,
        api::flowcontrol::v1::PriorityLevelConfiguration,
        api::networking::v1::IPAddress,
        api::networking::v1::Ingress,
        api::networking::v1::IngressClass,
        api::networking::v1::NetworkPolicy,
        api::networking::v1::ServiceCIDR,
        api::networking::v1beta1::IPAddress,
        api::networking::v1beta1::ServiceCIDR,
        api::node::v1::RuntimeClass,
        api::policy::v1::PodDisruptionBudget,
        api::rbac::v1::ClusterRole,
        api::rbac::v1::ClusterRoleBinding,
        api::rbac::v1::Role,
        api::rbac::v1::RoleBinding,
        api::resource::v1::DeviceClass,
        api::resource::v1::ResourceClaim,
        api::resource::v1::ResourceClaimTemplate,
        api::resource::v1::ResourceSlice,
        api::resource::v1alpha3::DeviceTaintRule,
        api::resource::v1beta1::DeviceClass,
        api::resource::v1beta1::ResourceClaim,
        api::resource::v1beta1::ResourceClaimTemplate,
        api::resource::v1beta1::ResourceSlice,
        api::resource::v1beta2::DeviceClass,
        api::resource::v1beta2::ResourceClaim,
        api::resource::v1beta2::ResourceClaimTemplate,
        api::resource::v1beta2::ResourceSlice,
        api::scheduling::v1::PriorityClass,
        api::scheduling::v1alpha1::Workload,
        api::storage::v1::CSIDriver,
        api::storage::v1::CSINode,
        api::storage::v1::CSIStorageCapacity,
        api::storage::v1::StorageClass,
        api::storage::v1::VolumeAttachment,
        api::storage::v1::VolumeAttributesClass,
        api::storage::v1beta1::VolumeAttributesClass,
        api::storagemigration::v1beta1::StorageVersionMigration,
        apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    ],
    single: [
        api::authentication::v1::SelfSubjectReview,
        api::authentication::v1::TokenRequest,
        api::authentication::v1::TokenReview,
        api::authorization::v1::LocalSubjectAccessReview,
        api::authorization::v1::SelfSubjectAccessReview,
        api::authorization::v1::SelfSubjectRulesReview,
        api::authorization::v1::SubjectAccessReview,
        api::autoscaling::v1::Scale,
        api::core::v1::Binding,
        api::policy::v1::Eviction,
        apimachinery::pkg::apis::meta::v1::APIGroup,
        apimachinery::pkg::apis::meta::v1::APIGroupList,
        apimachinery::pkg::apis::meta::v1::APIResourceList,
        apimachinery::pkg::apis::meta::v1::APIVersions,
        apimachinery::pkg::apis::meta::v1::Status,
    ],
    schemas: [
        apimachinery::pkg::apis::meta::v1::DeleteOptions,
        apimachinery::pkg::apis::meta::v1::Patch,
        apimachinery::pkg::apis::meta::v1::WatchEvent<apimachinery::pkg::runtime::RawExtension>,
        apimachinery::pkg::util::intstr::IntOrString,
        apimachinery::pkg::api::resource::Quantity,
        apimachinery::pkg::version::Info,
    ],
}

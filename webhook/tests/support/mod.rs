//! Test support for the webhook crate: the HTTPS server comes from `testenv`, and a
//! resolver that knows the test Service and a few namespaces.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use testenv::webhook_server::*;

/// Resolves the test Service to the test server and knows a few namespaces.
pub struct TestResolver {
    pub service: SocketAddr,
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

impl TestResolver {
    pub fn new(service: SocketAddr) -> Self {
        let mut namespaces = BTreeMap::new();
        namespaces.insert(
            "prod".to_string(),
            BTreeMap::from([("env".to_string(), "prod".to_string())]),
        );
        namespaces.insert("dev".to_string(), BTreeMap::new());
        Self {
            service,
            namespaces,
        }
    }
}

impl webhook::Resolver for TestResolver {
    async fn service_address(
        &self,
        namespace: &str,
        name: &str,
        _port: i32,
    ) -> Result<SocketAddr, String> {
        if format!("{name}.{namespace}.svc") == SERVICE_HOST {
            Ok(self.service)
        } else {
            Err(format!("service \"{name}\" not found"))
        }
    }

    fn namespace_labels(&self, namespace: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(namespace).cloned()
    }
}

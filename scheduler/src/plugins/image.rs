//! ImageLocality: prefers nodes that already hold the pod's images, weighted by image size
//! and scaled down for images present on many nodes (so it does not pile pods up).

use crate::cache::{NodeInfo, normalize_image};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Snapshot, Status};
use crate::podinfo::PodInfo;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

struct State {
    total_nodes: usize,
    /// (normalized image, nodes that have it) for every container of the pod.
    images: Vec<(String, usize)>,
}

pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn pre_score(
        &self,
        s: &mut CycleState,
        pod: &PodInfo,
        _n: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let Some(spec) = pod.pod.spec.as_ref() else {
            return Status::skip();
        };
        let images = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .map(|c| {
                let name = normalize_image(c.image.as_deref().unwrap_or_default());
                let count = snap.cache.image_nodes.get(&name).copied().unwrap_or(0);
                (name, count)
            })
            .collect();
        s.write(
            "ImageLocality",
            State {
                total_nodes: snap.num_nodes().max(1),
                images,
            },
        );
        Status::success()
    }
    fn score(&self, s: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(st) = s.read::<State>("ImageLocality") else {
            return 0;
        };
        let mut sum = 0i64;
        for (name, count) in &st.images {
            if let Some(size) = node.images.get(name) {
                let spread = *count as f64 / st.total_nodes as f64;
                sum += (*size as f64 * spread) as i64;
            }
        }
        let max = MAX_CONTAINER_THRESHOLD * st.images.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::plugins::testutil::pod;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn prefers_node_with_big_image() {
        let mut cache = Cache::new();
        for (name, imgs) in [
            ("a", json!([{"names": ["big:1"], "sizeBytes": 500 * MB}])),
            ("b", json!([])),
        ] {
            cache.upsert_node(Arc::new(
                serde_json::from_value(
                    json!({"metadata": {"name": name}, "status": {"images": imgs}}),
                )
                .expect("node"),
            ));
        }
        let p = pod(json!({"containers": [{"name": "c", "image": "big:1"}]}));
        let snap = Snapshot::new(&cache);
        let mut s = CycleState::default();
        ImageLocality.pre_score(&mut s, &p, &[], &snap);
        let a = cache.node("a").expect("a");
        let b = cache.node("b").expect("b");
        // 500MB * 1/2 spread = 250MB; (250-23)*100/(1000-23) = 23
        assert_eq!(ImageLocality.score(&s, &p, a), 23);
        assert_eq!(ImageLocality.score(&s, &p, b), 0);
    }
}

//! `/healthz`, `/livez`, `/readyz` (with `?verbose` and `?exclude=`), and their named checks.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::response::Response;
use http::StatusCode;

use super::{Query, raw_response};
use crate::server::AppState;

/// The named checks of each endpoint and whether they pass.
fn checks(state: &AppState, endpoint: &str) -> Vec<(&'static str, bool)> {
    let mut c = vec![("ping", true), ("log", true), ("etcd", true)];
    c.push(("poststarthook/start-apiextensions-controllers", true));
    c.push((
        "poststarthook/bootstrap-controller",
        state.bootstrapped.load(Ordering::Acquire),
    ));
    if endpoint == "/readyz" {
        c.push(("shutdown", true));
    }
    c
}

pub fn check(state: &Arc<AppState>, endpoint: &str, query: &Query) -> Response {
    let excluded: Vec<&str> = query
        .get("exclude")
        .map(|e| e.split(',').collect())
        .unwrap_or_default();
    let results: Vec<(&str, bool)> = checks(state, endpoint)
        .into_iter()
        .filter(|(n, _)| !excluded.contains(n))
        .collect();
    let ok = results.iter().all(|(_, pass)| *pass);
    let verbose = query.get("verbose").is_some() || !ok;
    let name = endpoint.trim_start_matches('/');
    let body = if verbose {
        let mut s = String::new();
        for (n, pass) in &results {
            if *pass {
                s.push_str(&format!("[+]{n} ok\n"));
            } else {
                s.push_str(&format!("[-]{n} failed: reason withheld\n"));
            }
        }
        if ok {
            s.push_str(&format!("{name} check passed\n"));
        } else {
            s.push_str(&format!("{name} check failed\n"));
        }
        s
    } else {
        "ok".to_string()
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    raw_response(code, "text/plain; charset=utf-8", body.into_bytes())
}

/// One named check, e.g. `/readyz/ping`.
pub fn single(state: &Arc<AppState>, path: &str) -> Response {
    let (endpoint, name) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let endpoint = format!("/{endpoint}");
    match checks(state, &endpoint)
        .into_iter()
        .find(|(n, _)| *n == name)
    {
        Some((_, true)) => {
            raw_response(StatusCode::OK, "text/plain; charset=utf-8", b"ok".to_vec())
        }
        Some((_, false)) => raw_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("internal server error: {name} check failed\n").into_bytes(),
        ),
        None => raw_response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"404 page not found\n".to_vec(),
        ),
    }
}

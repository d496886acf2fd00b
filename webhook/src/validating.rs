//! The validating dispatcher (upstream's `ValidatingAdmissionWebhook`): every matching
//! webhook is called at once; the first refusal, in webhook order, is returned and the
//! others are logged.

use futures::future::join_all;
use machinery::ApiError;
use serde_json::Value;

use crate::call;
use crate::config;
use crate::{Dispatcher, Outcome, Rejected, Request, Resolver, matching};

pub(crate) async fn dispatch(
    dispatcher: &Dispatcher,
    configs: &[Value],
    req: &Request,
    resolver: &impl Resolver,
) -> Result<Outcome, Rejected> {
    let mut outcome = Outcome::default();
    if matching::is_exempt(req) {
        return Ok(outcome);
    }
    let mut relevant = Vec::new();
    for hook in config::hooks(configs) {
        match call::should_call(&hook, req, resolver) {
            Ok(true) => relevant.push(hook),
            Ok(false) => {}
            Err(error) => return Err(Rejected { error, outcome }),
        }
    }
    let calls = relevant.iter().enumerate().map(|(index, hook)| async move {
        let mut own = Outcome::default();
        let result = match call::call(dispatcher, hook, req, false, resolver, &mut own).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let key = format!(
                    "failed-open.validating.webhook.admission.k8s.io/round_0_index_{index}"
                );
                call::settle(hook, e, key, &mut own)
            }
        };
        (own, result)
    });
    let mut errors: Vec<ApiError> = Vec::new();
    for (own, result) in join_all(calls).await {
        outcome.extend(own);
        if let Err(e) = result {
            errors.push(e);
        }
    }
    let mut errors = errors.into_iter();
    match errors.next() {
        None => Ok(outcome),
        Some(error) => {
            for other in errors {
                tracing::warn!(error = %other.message, "additional webhook rejection");
            }
            Err(Rejected { error, outcome })
        }
    }
}

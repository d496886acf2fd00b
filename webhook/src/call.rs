//! One admission webhook call, shared by the mutating and validating dispatchers: the
//! dry-run guard, the round trip, the answer checks, and the split between failures to
//! call (subject to `failurePolicy`) and refusals (always final).

use machinery::ApiError;

use crate::client::{self, CallError};
use crate::conditions::{self, Decision};
use crate::config::Hook;
use crate::matching;
use crate::review::{self, Answer, AnswerError};
use crate::{Dispatcher, Outcome, Request, Resolver};

/// How a webhook call went wrong.
#[derive(Debug)]
pub(crate) enum HookError {
    /// Upstream's `ErrCallingWebhook`: the full `failed calling webhook "<name>": ...`
    /// text. `failurePolicy: Ignore` skips the webhook; `Fail` turns it into a 500.
    Calling(String),
    /// A refusal or an error that no failure policy excuses.
    Status(ApiError),
}

impl HookError {
    fn calling(hook: &Hook, why: impl std::fmt::Display) -> Self {
        Self::Calling(format!(
            "failed calling webhook {}: {why}",
            client::go_quote(&hook.name)
        ))
    }
}

/// Whether `hook` applies to `req`: selectors, rules, then CEL `matchConditions`.
pub(crate) fn should_call(
    hook: &Hook,
    req: &Request,
    resolver: &impl Resolver,
) -> Result<bool, ApiError> {
    if !matching::selects(hook, req, resolver)? {
        return Ok(false);
    }
    match conditions::decide(hook, req) {
        Decision::Call => Ok(true),
        Decision::Skip => Ok(false),
        Decision::Fail(why) => {
            tracing::warn!(webhook = %hook.name, error = %why, "failed evaluating match conditions, failing closed");
            Err(ApiError::forbidden(
                &req.resource.group,
                &req.resource.resource,
                &req.name,
                &why,
            ))
        }
    }
}

/// Calls `hook` and checks its answer. Warnings and audit annotations are recorded in
/// `outcome` whether or not the webhook allowed the request.
pub(crate) async fn call(
    dispatcher: &Dispatcher,
    hook: &Hook,
    req: &Request,
    mutating: bool,
    resolver: &impl Resolver,
    outcome: &mut Outcome,
) -> Result<Answer, HookError> {
    if req.dry_run {
        match hook.side_effects.as_deref() {
            None => return Err(HookError::calling(hook, "Webhook SideEffects is nil")),
            Some("None" | "NoneOnDryRun") => {}
            Some(_) => {
                return Err(HookError::Status(ApiError::bad_request(format!(
                    "admission webhook {} does not support dry run",
                    client::go_quote(&hook.name)
                ))));
            }
        }
    }
    let sent = review::create(&hook.review_versions, req).map_err(|e| {
        HookError::calling(hook, format!("could not create admission objects: {e}"))
    })?;
    let body = client::post(
        &dispatcher.tls,
        &hook.client,
        &hook.name,
        sent.body.clone(),
        hook.timeout,
        true,
        resolver,
    )
    .await
    .map_err(|e| match e {
        CallError::Client(e) => HookError::calling(hook, format!("could not get REST client: {e}")),
        CallError::Request(e) => HookError::calling(hook, format!("failed to call webhook: {e}")),
    })?;
    let answer = review::verify(&sent, &body, mutating).map_err(|e| match e {
        AnswerError::Decode(e) => HookError::calling(hook, format!("failed to call webhook: {e}")),
        AnswerError::Invalid(e) => {
            HookError::calling(hook, format!("received invalid webhook response: {e}"))
        }
    })?;
    for (k, v) in &answer.audit_annotations {
        outcome.annotate(format!("{}/{k}", hook.name), v.clone());
    }
    for w in &answer.warnings {
        outcome.warn(w.clone());
    }
    if !answer.allowed {
        return Err(HookError::Status(review::denial(
            &hook.name,
            answer.result.as_ref(),
        )));
    }
    Ok(answer)
}

/// Applies `failurePolicy` to a failed call. `failed_open_key` names the audit annotation
/// upstream records when it fails open.
pub(crate) fn settle(
    hook: &Hook,
    err: HookError,
    failed_open_key: String,
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    match err {
        HookError::Calling(msg) if hook.ignore_failures => {
            tracing::warn!(webhook = %hook.name, error = %msg, "failed calling webhook, failing open");
            outcome.annotate(failed_open_key, hook.name.clone());
            Ok(())
        }
        HookError::Calling(msg) => {
            tracing::warn!(webhook = %hook.name, error = %msg, "failed calling webhook, failing closed");
            Err(ApiError::internal(msg))
        }
        HookError::Status(e) => Err(e),
    }
}

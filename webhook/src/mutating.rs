//! The mutating dispatcher (upstream's `MutatingAdmissionWebhook`): webhooks run one after
//! another, each seeing the previous one's patched object. When a webhook changes the
//! object, the earlier webhooks that asked for `reinvocationPolicy: IfNeeded` run once
//! more, in a second round.

use std::collections::HashSet;

use machinery::ApiError;
use serde_json::{Value, json};

use crate::call::{self, HookError};
use crate::config::{self, Hook};
use crate::{Dispatcher, Outcome, Rejected, Request, Resolver, matching};

/// Which webhooks run again, as upstream's `webhookReinvokeContext`.
#[derive(Default)]
struct Reinvocation {
    /// Invoked `IfNeeded` webhooks not yet scheduled to run again.
    previously_invoked: HashSet<String>,
    /// Webhooks to run in the second round.
    reinvoke: HashSet<String>,
    /// A webhook changed the object, so a second round is due.
    needed: bool,
}

impl Reinvocation {
    fn object_changed(&mut self) {
        self.reinvoke.extend(self.previously_invoked.drain());
        self.needed = true;
    }
}

pub(crate) async fn dispatch(
    dispatcher: &Dispatcher,
    configs: &[Value],
    req: &mut Request,
    resolver: &impl Resolver,
) -> Result<Outcome, Rejected> {
    let mut outcome = Outcome::default();
    if matching::is_exempt(req) {
        return Ok(outcome);
    }
    let hooks = config::hooks(configs);
    let mut state = Reinvocation::default();
    let result = async {
        run_round(
            dispatcher,
            &hooks,
            req,
            resolver,
            0,
            &mut state,
            &mut outcome,
        )
        .await?;
        if state.needed && !state.reinvoke.is_empty() {
            run_round(
                dispatcher,
                &hooks,
                req,
                resolver,
                1,
                &mut state,
                &mut outcome,
            )
            .await?;
        }
        Ok::<(), ApiError>(())
    }
    .await;
    match result {
        Ok(()) => Ok(outcome),
        Err(error) => Err(Rejected { error, outcome }),
    }
}

async fn run_round(
    dispatcher: &Dispatcher,
    hooks: &[Hook],
    req: &mut Request,
    resolver: &impl Resolver,
    round: usize,
    state: &mut Reinvocation,
    outcome: &mut Outcome,
) -> Result<(), ApiError> {
    for (index, hook) in hooks.iter().enumerate() {
        if !call::should_call(hook, req, resolver)? {
            continue;
        }
        // A webhook skipped in the first round is never called for the first time here.
        if round == 1 && !state.reinvoke.contains(&hook.uid) {
            continue;
        }
        let result = call_hook(dispatcher, hook, req, resolver, round, index, outcome).await;
        if matches!(result, Ok(true)) {
            state.object_changed();
        }
        if hook.reinvoke_if_needed {
            state.previously_invoked.insert(hook.uid.clone());
        }
        if let Err(e) = result {
            let key = format!(
                "failed-open.mutation.webhook.admission.k8s.io/round_{round}_index_{index}"
            );
            call::settle(hook, e, key, outcome)?;
        }
    }
    Ok(())
}

/// Calls one webhook and applies its patch; returns whether the object changed.
async fn call_hook(
    dispatcher: &Dispatcher,
    hook: &Hook,
    req: &mut Request,
    resolver: &impl Resolver,
    round: usize,
    index: usize,
    outcome: &mut Outcome,
) -> Result<bool, HookError> {
    let suffix = format!("round_{round}_index_{index}");
    let result = patch_with(dispatcher, hook, req, resolver, outcome).await;
    let mutated = match &result {
        Ok(Some(_)) => true,
        Ok(None) | Err(_) => false,
    };
    outcome.annotate(
        format!("mutation.webhook.admission.k8s.io/{suffix}"),
        json!({"configuration": hook.configuration, "webhook": hook.name, "mutated": mutated})
            .to_string(),
    );
    let Some(patch) = result? else {
        return Ok(false);
    };
    outcome.annotate(
        format!("patch.webhook.admission.k8s.io/{suffix}"),
        json!({
            "configuration": hook.configuration,
            "webhook": hook.name,
            "patch": patch,
            "patchType": "JSONPatch",
        })
        .to_string(),
    );
    Ok(true)
}

/// Calls `hook` and applies its JSONPatch to `req.object`. Returns the patch when it
/// changed the object.
async fn patch_with(
    dispatcher: &Dispatcher,
    hook: &Hook,
    req: &mut Request,
    resolver: &impl Resolver,
    outcome: &mut Outcome,
) -> Result<Option<Value>, HookError> {
    let answer = call::call(dispatcher, hook, req, true, resolver, outcome).await?;
    if answer.patch.is_empty() {
        return Ok(None);
    }
    let patch: json_patch::Patch = serde_json::from_slice(&answer.patch).map_err(|e| {
        HookError::Calling(format!(
            "failed calling webhook {:?}: received undecodable patch in webhook response: {e}",
            hook.name
        ))
    })?;
    if patch.0.is_empty() {
        return Ok(None);
    }
    let Some(object) = req.object.as_ref() else {
        return Err(HookError::Status(ApiError::internal(format!(
            "admission webhook {:?} attempted to modify the object, which is not supported for this operation",
            hook.name
        ))));
    };
    if answer.patch_type != "JSONPatch" {
        return Err(HookError::Calling(format!(
            "failed calling webhook {:?}: unsupported patch type {:?}",
            hook.name, answer.patch_type
        )));
    }
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch.0)
        .map_err(|e| HookError::Status(ApiError::internal(e.to_string())))?;
    if patched == *object {
        return Ok(None);
    }
    req.object = Some(patched);
    Ok(Some(serde_json::to_value(&patch).unwrap_or(Value::Null)))
}

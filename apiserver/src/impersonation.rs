//! Impersonation (`Impersonate-User`, `-Group`, `-Uid`, `-Extra-*`; `kubectl --as`): the
//! requester must be authorized to `impersonate` each requested user, group, uid and
//! extra, as upstream checks it; the request then proceeds as the impersonated user.

use http::HeaderMap;
use machinery::ApiError;

use crate::authn::User;
use crate::authz::Authorizer;
use crate::request_info::RequestInfo;

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// The user the request runs as: `requester` itself, or whom it impersonates.
pub fn impersonate(
    authz: &Authorizer,
    requester: User,
    headers: &HeaderMap,
) -> Result<User, ApiError> {
    let user = header_values(headers, "impersonate-user")
        .first()
        .map(|s| s.to_string());
    let groups: Vec<String> = header_values(headers, "impersonate-group")
        .iter()
        .map(|s| s.to_string())
        .collect();
    let uid = header_values(headers, "impersonate-uid")
        .first()
        .map(|s| s.to_string());
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("impersonate-extra-")?;
            Some((key.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect();
    let Some(name) = user else {
        if !groups.is_empty() || uid.is_some() || !extras.is_empty() {
            return Err(ApiError::internal(
                "requested impersonation of groups, a uid or extras without impersonating a user",
            ));
        }
        return Ok(requester);
    };
    let check = |group: &str, resource: &str, subresource: &str, namespace: &str, obj: &str| {
        let info = RequestInfo {
            is_resource_request: true,
            verb: "impersonate".into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: obj.into(),
            ..Default::default()
        };
        authz.authorize(&requester, &info)
    };
    let mut out_groups = groups.clone();
    match name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => {
            check("", "serviceaccounts", "", ns, sa)?;
            if groups.is_empty() {
                out_groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        None => check("", "users", "", "", &name)?,
    }
    for g in &groups {
        check("", "groups", "", "", g)?;
    }
    if let Some(u) = &uid {
        check("authentication.k8s.io", "uids", "", "", u)?;
    }
    for (key, value) in &extras {
        check("authentication.k8s.io", "userextras", key, "", value)?;
    }
    if name != "system:anonymous" && !out_groups.iter().any(|g| g == "system:authenticated") {
        out_groups.push("system:authenticated".into());
    }
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (key, value) in extras {
        extra.entry(key).or_default().push(value);
    }
    Ok(User {
        name,
        groups: out_groups,
        uid: uid.unwrap_or_default(),
        extra,
    })
}

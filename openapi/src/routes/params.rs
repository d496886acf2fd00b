//! The parameters operations take: one table of query parameters, looked up by name, so
//! every operation describes a parameter the same way.

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Location {
    Path,
    Query,
}

impl Location {
    /// The OpenAPI `in` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
        }
    }
}

/// One operation or path parameter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: Location,
    /// OpenAPI primitive type: `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: String,
    pub required: bool,
}

/// A required path parameter.
pub(crate) fn path(name: &'static str, description: impl Into<String>) -> Param {
    Param {
        name,
        location: Location::Path,
        ty: "string",
        description: description.into(),
        required: true,
    }
}

/// The query parameters named, in the order given. Unknown names are skipped.
pub(crate) fn query(names: &[&str]) -> Vec<Param> {
    names
        .iter()
        .filter_map(|name| QUERY.iter().find(|(known, _, _)| known == name))
        .map(|(name, ty, description)| Param {
            name,
            location: Location::Query,
            ty,
            description: (*description).to_string(),
            required: false,
        })
        .collect()
}

/// Every query parameter: name, type, description.
const QUERY: &[(&str, &str, &str)] = &[
    (
        "pretty",
        "string",
        "If 'true', the output is indented for humans.",
    ),
    (
        "allowWatchBookmarks",
        "boolean",
        "Requests BOOKMARK watch events; servers may ignore it. Ignored unless watch is true.",
    ),
    (
        "continue",
        "string",
        "The continue token returned by a previous list call, to fetch the next page.",
    ),
    (
        "fieldSelector",
        "string",
        "Restricts the returned objects by their fields. Defaults to everything.",
    ),
    (
        "labelSelector",
        "string",
        "Restricts the returned objects by their labels. Defaults to everything.",
    ),
    (
        "limit",
        "integer",
        "The maximum number of objects to return; when more exist, metadata.continue is set to fetch the rest.",
    ),
    (
        "resourceVersion",
        "string",
        "Constrains which resource versions the request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "How resourceVersion applies to list calls: Exact or NotOlderThan.",
    ),
    (
        "sendInitialEvents",
        "boolean",
        "With watch=true, starts the watch with synthetic ADDED events for the current state, then a bookmark.",
    ),
    (
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call, regardless of activity.",
    ),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of events.",
    ),
    (
        "dryRun",
        "string",
        "When present, changes are not persisted. Valid values: All (every dry-run stage is processed).",
    ),
    (
        "fieldManager",
        "string",
        "The name of the actor making these changes; at most 128 printable characters. Required for apply patches.",
    ),
    (
        "fieldValidation",
        "string",
        "How to treat unknown or duplicate fields in the request object: Ignore, Warn (the default) or Strict.",
    ),
    (
        "force",
        "boolean",
        "Makes an apply request take ownership of fields owned by other managers. Must be unset for other patches.",
    ),
    (
        "gracePeriodSeconds",
        "integer",
        "Seconds before the object is deleted; zero deletes immediately. Defaults to the kind's own default.",
    ),
    (
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "boolean",
        "Deletes an object that cannot be read from storage (corrupt or undecryptable). Dangerous.",
    ),
    (
        "orphanDependents",
        "boolean",
        "Deprecated: use propagationPolicy. Whether dependents are orphaned rather than garbage collected.",
    ),
    (
        "propagationPolicy",
        "string",
        "Whether and how dependents are garbage collected: Orphan, Background or Foreground.",
    ),
    (
        "container",
        "string",
        "The container to use. Defaults to the only container when there is one.",
    ),
    (
        "follow",
        "boolean",
        "Follow the log stream of the container.",
    ),
    (
        "insecureSkipTLSVerifyBackend",
        "boolean",
        "Skip verifying the serving certificate of the kubelet the log is read from.",
    ),
    (
        "limitBytes",
        "integer",
        "The number of bytes after which the log is cut off.",
    ),
    (
        "previous",
        "boolean",
        "Return the log of the previous, terminated container instance.",
    ),
    (
        "sinceSeconds",
        "integer",
        "Only return log lines newer than this many seconds.",
    ),
    (
        "stream",
        "string",
        "Which stream to return: All (default), Stdout or Stderr.",
    ),
    (
        "tailLines",
        "integer",
        "The number of lines to show from the end of the log.",
    ),
    (
        "timestamps",
        "boolean",
        "Prefix every log line with an RFC3339 timestamp.",
    ),
    (
        "command",
        "string",
        "The command to execute; repeat the parameter for each argument.",
    ),
    (
        "stderr",
        "boolean",
        "Redirect the standard error stream of the container.",
    ),
    (
        "stdin",
        "boolean",
        "Redirect the standard input stream of the container.",
    ),
    (
        "stdout",
        "boolean",
        "Redirect the standard output stream of the container.",
    ),
    ("tty", "boolean", "Allocate a terminal for the session."),
    (
        "ports",
        "integer",
        "The port to forward to; repeat the parameter for several.",
    ),
    ("path", "string", "The path to proxy the request to."),
];

/// Parameters of list and watch operations.
pub(crate) const LIST: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
/// Parameters of create and replace operations.
pub(crate) const WRITE: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
/// Parameters of patch operations.
pub(crate) const PATCH: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
/// Parameters of delete operations.
pub(crate) const DELETE: &[&str] = &[
    "dryRun",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "orphanDependents",
    "propagationPolicy",
];
/// Parameters of deletecollection operations.
pub(crate) const DELETE_COLLECTION: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "ignoreStoreReadErrorWithClusterBreakingPotential",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];
/// Parameters of the `log` subresource.
pub(crate) const LOG: &[&str] = &[
    "container",
    "follow",
    "insecureSkipTLSVerifyBackend",
    "limitBytes",
    "previous",
    "sinceSeconds",
    "stream",
    "tailLines",
    "timestamps",
];
/// Parameters of the `exec` subresource.
pub(crate) const EXEC: &[&str] = &["command", "container", "stderr", "stdin", "stdout", "tty"];
/// Parameters of the `attach` subresource.
pub(crate) const ATTACH: &[&str] = &["container", "stderr", "stdin", "stdout", "tty"];
/// Parameters of the `portforward` subresource.
pub(crate) const PORT_FORWARD: &[&str] = &["ports"];
/// Parameters of the `proxy` subresource without a path segment.
pub(crate) const PROXY: &[&str] = &["path"];

#!/usr/bin/env python3
"""Generate protobuf/src/descriptors.rs: the Kubernetes protobuf descriptor table.

Run by hand after bumping k8s-pb or k8s-openapi; the output is committed, like upstream's
generated.pb.go files. Usage: python3 hack/gen-protobuf.py [--check]

Inputs (read from the cargo registry sources, nothing is copied verbatim):
  * k8s-pb: every message, its field numbers, wire types and labels (`#[prost(..)]`).
  * k8s-openapi (v1_35): the JSON field names (its Deserialize impls), which fields are
    required, and the group of each API package (its `Resource` impls).
prost's snake_case field names are lossy (`volume_id` is JSON `volumeID`), so fields are
matched by comparing names lowercased with `_`, `-` and `$` removed.
"""

import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "protobuf", "src", "descriptors.rs")


def registry_dir(crate):
    hits = sorted(glob.glob(os.path.expanduser(f"~/.cargo/registry/src/*/{crate}")))
    if not hits:
        sys.exit(f"gen-protobuf: {crate} not found in ~/.cargo/registry/src (run cargo fetch)")
    return hits[-1]


PB = os.path.join(registry_dir("k8s-pb-0.9.0"), "src")
OA = os.path.join(registry_dir("k8s-openapi-0.29.0"), "src", "v1_35")

# k8s-pb module trees we describe (metrics and the apimachinery test group are not served).
PB_ROOTS = ["api", "apimachinery", "apiextensions_apiserver", "kube_aggregator"]
SKIP_MODULES = ["apimachinery/pkg/apis/testapigroup"]

# Group names for API packages that k8s-openapi 1.35 no longer carries.
FALLBACK_GROUPS = {
    "extensions": "extensions",
    "imagepolicy": "imagepolicy.k8s.io",
    "admission": "admission.k8s.io",
    "apidiscovery": "apidiscovery.k8s.io",
}

# meta.k8s.io kinds. Upstream registers the options and WatchEvent in every group version
# and Status/discovery types as unversioned "v1"; the runtime accepts them under any
# built-in apiVersion (see META_KINDS in the output).
META_KINDS = [
    "Status", "APIVersions", "APIGroupList", "APIGroup", "APIResourceList", "WatchEvent",
    "DeleteOptions", "CreateOptions", "GetOptions", "ListOptions", "PatchOptions",
    "UpdateOptions", "PartialObjectMetadata", "PartialObjectMetadataList",
]

# Messages whose JSON form is not a plain object. Keys are upstream full names.
SPECIAL = {
    "k8s.io.apimachinery.pkg.apis.meta.v1.Time": "Time",
    "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime": "MicroTime",
    "k8s.io.apimachinery.pkg.apis.meta.v1.Duration": "Duration",
    "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1": "RawJson",
    "k8s.io.apimachinery.pkg.api.resource.Quantity": "Quantity",
    "k8s.io.apimachinery.pkg.api.resource.QuantityValue": "Quantity",
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": "IntOrString",
    "k8s.io.apimachinery.pkg.runtime.RawExtension": "RawExtension",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON": "RawJson",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSON": "RawJson",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrArray": "SchemaOrArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrBool": "SchemaOrBool",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
    "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JSONSchemaPropsOrStringArray": "SchemaOrStringArray",
}

# Fields whose JSON name cannot be recovered by the normalised comparison. Keyed by
# (upstream message full name, prost field name). Empty today; kept for the next bump.
JSON_NAME_EXCEPTIONS = {}


def norm(name):
    return re.sub(r"[_\-$]", "", name).lower()


def lower_camel(snake):
    parts = snake.split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def split_type(text, start):
    """Return the Rust type starting at text[start], ended by a comma at generic depth 0."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "," and depth == 0:
            return text[start:i].strip(), i
        i += 1
    raise ValueError("unterminated type")


def generic_args(ty):
    """Top-level generic arguments of `Outer<A, B>`."""
    inner = ty[ty.index("<") + 1: ty.rindex(">")]
    args, depth, cur = [], 0, ""
    for c in inner:
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        if c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
    args.append(cur.strip())
    return args


def unwrap(ty):
    for wrapper in ("::core::option::Option<", "::prost::alloc::vec::Vec<", "::prost::alloc::boxed::Box<"):
        if ty.startswith(wrapper):
            return unwrap(generic_args(ty)[0])
    return ty


def resolve(module, path):
    """Resolve a prost type path relative to `module` (a list of path segments)."""
    parts = path.split("::")
    mod = list(module)
    while parts and parts[0] == "super":
        mod.pop()
        parts.pop(0)
    return "/".join(mod + parts[:-1]), parts[-1]


PROST_ATTR = re.compile(r"#\[prost\(([^\]]*)\)\]\s*pub (?:r#)?(\w+):")


def parse_pb():
    """module path -> {prost message name: [field dicts]}"""
    modules = {}
    for root in PB_ROOTS:
        for path in sorted(glob.glob(os.path.join(PB, root, "**", "mod.rs"), recursive=True)):
            module = os.path.relpath(os.path.dirname(path), PB)
            if any(module.startswith(s) for s in SKIP_MODULES):
                continue
            text = open(path).read()
            msgs = {}
            for m in re.finditer(r"\npub struct (\w+) \{(?:\}|(.*?)\n\})", text, re.S):
                body = m.group(2) or ""
                fields = []
                for f in PROST_ATTR.finditer(body):
                    attr, name = f.group(1), f.group(2)
                    ty, _ = split_type(body, f.end())
                    fields.append(parse_field(module.split("/"), attr, name, ty))
                msgs[m.group(1)] = fields
            if msgs:
                modules[module] = msgs
    return modules


def parse_field(module, attr, name, ty):
    tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
    kind = attr.split(",")[0].strip()
    field = {"prost": name, "tag": tag, "repeated": " repeated" in attr or ", repeated" in attr}
    if kind.startswith("btree_map"):
        key, value = re.search(r'btree_map = "(\w+), (\w+)"', attr).groups()
        if key != "string":
            raise ValueError(f"unexpected map key {key}")
        field["ty"] = "map"
        field["value"] = value
        if value == "message":
            field["msg"] = resolve(module, generic_args(ty)[1])
        field["repeated"] = False
    elif kind.startswith("bytes"):
        field["ty"] = "bytes"
    elif kind == "message":
        field["ty"] = "message"
        field["msg"] = resolve(module, unwrap(ty))
    elif kind in ("string", "int32", "int64", "bool", "double", "float"):
        field["ty"] = kind
    else:
        raise ValueError(f"unexpected prost kind {kind}")
    return field


def parse_openapi():
    """definition name -> {"fields": {rust: json}, "required": set(rust), "group", "kind"}"""
    defs = {}
    for path in glob.glob(os.path.join(OA, "**", "*.rs"), recursive=True):
        text = open(path).read()
        m = re.match(r"// Generated from definition (\S+)", text)
        if not m:
            continue
        d = {"fields": {}, "required": set(), "group": None, "kind": None}
        s = re.search(r"\npub struct \w+ \{(.*?)\n\}", text, re.S)
        if s:
            for f in re.finditer(r"\n    pub (?:r#)?(\w+): (.+?),\n", s.group(1)):
                if not f.group(2).startswith("Option<"):
                    d["required"].add(f.group(1))
        for f in re.finditer(r'"([^"]+)" => Field::Key_(\w+),', text):
            d["fields"][f.group(2)] = f.group(1)
        g = re.search(r'const GROUP: &\'static str = "([^"]*)";', text)
        k = re.search(r'const KIND: &\'static str = "([^"]*)";', text)
        if g and k:
            d["group"], d["kind"] = g.group(1), k.group(1)
        defs[m.group(1)] = d
    return defs


def is_inlined(pb, msg, definition):
    """Whether every field of message `msg` appears among the JSON fields of `definition`,
    looking through fields that are themselves inlined (Rule in RuleWithOperations)."""
    names = {norm(j) for j in definition["fields"].values()}

    def covers(msg, depth):
        module, pname = msg
        fields = pb[module][pname]
        return bool(fields) and all(
            norm(f["prost"]) in names or (f["ty"] == "message" and depth < 3 and covers(f["msg"], depth + 1))
            for f in fields)

    return covers(msg, 0)


def proto_package(module):
    """k8s-pb module path -> upstream proto package."""
    return "k8s.io." + module.replace("/", ".")


def openapi_prefix(module):
    return "io.k8s." + module.replace("/", ".").replace("apiextensions_apiserver", "apiextensions-apiserver").replace(
        "kube_aggregator", "kube-aggregator") + "."


def main():
    check = "--check" in sys.argv
    pb = parse_pb()
    oa = parse_openapi()
    oa_lower = {k.lower(): k for k in oa}
    global_names = {}
    for d in oa.values():
        for rust, json in d["fields"].items():
            global_names.setdefault(norm(json), set()).add(json)

    # Assign upstream names and indices.
    msgs = []  # (full name, module, prost name)
    for module in sorted(pb):
        for pname in sorted(pb[module]):
            definition = oa_lower.get((openapi_prefix(module) + pname).lower())
            # prost folds acronyms (AWSElasticBlockStore -> AwsElasticBlockStore); the
            # k8s-openapi definition keeps upstream's spelling.
            name = definition.rsplit(".", 1)[1] if definition else pname
            msgs.append((proto_package(module) + "." + name, module, pname, definition))
    # Names like `JsonSchemaProps` have no openapi definition under that spelling in
    # every package; fix up a few acronyms so SPECIAL keys match.
    fixed = []
    for full, module, pname, definition in msgs:
        if not definition:
            pkg, name = full.rsplit(".", 1)
            name = re.sub(r"^Json", "JSON", name)
            full = pkg + "." + name
        fixed.append((full, module, pname, definition))
    msgs = sorted(fixed)
    index = {(module, pname): i for i, (_, module, pname, _) in enumerate(msgs)}

    groups = {}
    for d_name, d in oa.items():
        if d["group"] is not None and d_name.startswith("io.k8s.api."):
            groups[d_name.split(".")[3]] = d["group"]
    groups.update({k: v for k, v in FALLBACK_GROUPS.items() if k not in groups})
    groups["apiextensions"] = "apiextensions.k8s.io"
    groups["apiregistration"] = "apiregistration.k8s.io"

    resource_kinds = {(d["group"], d["kind"]) for d in oa.values() if d["kind"]}
    warnings = []
    inlines = []
    out_msgs = []
    kinds = []
    by_name = {}
    for d_name in oa:
        by_name.setdefault(d_name.rsplit(".", 1)[1].lower(), []).append(d_name)
    for i, (full, module, pname, definition) in enumerate(msgs):
        if not definition:
            # A version k8s-openapi 1.35 no longer carries: borrow the JSON names of the
            # same type in a sibling version of the group (apps/v1beta2 -> apps/v1).
            same = by_name.get(pname.lower(), [])
            group_dir = openapi_prefix(module).rsplit(".", 2)[0] + "."
            sibling = [n for n in same if n.startswith(group_dir)]
            definition = (sibling or same or [None])[0]
        d = oa.get(definition) if definition else None
        fields = []
        seen = set()
        for f in sorted(pb[module][pname], key=lambda f: f["tag"]):
            json = JSON_NAME_EXCEPTIONS.get((full, f["prost"]))
            required = False
            inline = False
            if json is None and d:
                cands = [(r, j) for r, j in d["fields"].items() if norm(j) == norm(f["prost"])]
                if len(cands) == 1:
                    json = cands[0][1]
                    required = cands[0][0] in d["required"]
                elif len(cands) > 1:
                    sys.exit(f"gen-protobuf: ambiguous JSON name for {full}.{f['prost']}: {cands}")
            if json is None and d and f["ty"] == "message" and is_inlined(pb, f["msg"], d):
                # Go embeds this struct with `json:",inline"`: its fields live in the parent.
                inline = True
                json = lower_camel(f["prost"])
            if json is None:
                cands = global_names.get(norm(f["prost"]), set())
                if lower_camel(f["prost"]) in cands:
                    json = lower_camel(f["prost"])
                elif len(cands) == 1:
                    json = next(iter(cands))
                else:
                    json = lower_camel(f["prost"])
                    if (d or len(cands) > 1) and full not in SPECIAL:
                        warnings.append(f"{full}.{f['prost']} -> {json} (guessed; candidates {sorted(cands)})")
            if pname.endswith("List") and f["prost"] == "items":
                required = True
            if json in seen:
                sys.exit(f"gen-protobuf: duplicate JSON name {json} in {full}")
            seen.add(json)
            f = dict(f, json=json, required=required, inline=inline)
            if inline:
                inlines.append(f"{full}.{json}")
            if "msg" in f:
                f["idx"] = index[f["msg"]]
            fields.append(f)
        special = SPECIAL.get(full)
        if special is None and len(fields) == 1 and fields[0]["prost"] == "items" and fields[0]["ty"] == "string" \
                and fields[0]["repeated"] and not d:
            special = "StringList"  # metav1.Verbs, the ExtraValue types: a JSON array of strings
        out_msgs.append((full, special or "None", fields))

        # Kinds.
        parts = module.split("/")
        meta = {f.get("msg") for f in fields}
        has_meta = ("apimachinery/pkg/apis/meta/v1", "ObjectMeta") in meta or \
            ("apimachinery/pkg/apis/meta/v1", "ListMeta") in meta
        name = full.rsplit(".", 1)[1]
        if parts[0] == "api" or parts[0] in ("apiextensions_apiserver", "kube_aggregator"):
            group = groups.get(parts[-2])
            if group is None:
                sys.exit(f"gen-protobuf: no group for package {module}")
            api_version = f"{group}/{parts[-1]}" if group else parts[-1]
            is_kind = bool(d and d["kind"] == name) or (group, name) in resource_kinds \
                or (name.endswith("List") and (group, name[:-4]) in resource_kinds) or name.endswith("Review") \
                or (has_meta and not name.endswith(("Spec", "Template")))
            if is_kind:
                kinds.append((api_version, name, i))
        elif module == "apimachinery/pkg/apis/meta/v1" and name in META_KINDS:
            kinds.append(("meta.k8s.io/v1", name, i))
        elif module == "apimachinery/pkg/apis/meta/v1beta1" and name in META_KINDS:
            kinds.append(("meta.k8s.io/v1beta1", name, i))

    text = render(out_msgs, sorted(kinds), msgs)
    if check:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        if current != text:
            sys.exit("gen-protobuf: protobuf/src/descriptors.rs is stale; run python3 hack/gen-protobuf.py")
        return
    with open(OUT, "w") as fh:
        fh.write(text)
    for w in inlines:
        print("inline:", w, file=sys.stderr)
    for w in warnings:
        print("warning:", w, file=sys.stderr)
    print(f"gen-protobuf: wrote {OUT}: {len(out_msgs)} messages, {len(kinds)} kinds, {len(warnings)} guessed names")


TY = {"string": "Ty::String", "int32": "Ty::Int32", "int64": "Ty::Int64", "bool": "Ty::Bool",
      "bytes": "Ty::Bytes", "double": "Ty::Double", "float": "Ty::Float"}


def render(out_msgs, kinds, msgs):
    lines = [
        "// @generated by hack/gen-protobuf.py from the k8s-pb and k8s-openapi crates. DO NOT EDIT.",
        "//! The descriptor table: every Kubernetes protobuf message with its fields, and the",
        "//! (apiVersion, kind) pairs that have a protobuf message. Generated; see `hack/gen-protobuf.py`.",
        "",
        "use crate::table::{Field, Label, MapValue, Message, Special, Ty};",
        "",
        "/// Every message, sorted by full name; `Ty::Message(i)` indexes this table.",
        "pub(crate) static MESSAGES: &[Message] = &[",
    ]
    for full, special, fields in out_msgs:
        lines.append(f"    Message {{ name: \"{full}\", special: Special::{special}, fields: &[")
        for f in fields:
            if f["ty"] == "map":
                value = {"string": "MapValue::String", "bytes": "MapValue::Bytes"}.get(f["value"]) or \
                    f"MapValue::Message({f['idx']})"
                ty = f"Ty::Map({value})"
            elif f["ty"] == "message":
                ty = f"Ty::Message({f['idx']})"
            else:
                ty = TY[f["ty"]]
            label = "Label::Repeated" if f["repeated"] else "Label::Optional"
            lines.append(
                f"        Field {{ json: \"{f['json']}\", tag: {f['tag']}, ty: {ty}, label: {label}, required: {'true' if f['required'] else 'false'}, "
                f"inline: {'true' if f['inline'] else 'false'} }},")
        lines.append("    ] },")
    lines.append("];")
    lines.append("")
    lines.append("/// (apiVersion, kind, message index), sorted for binary search.")
    lines.append("pub(crate) static KINDS: &[(&str, &str, u16)] = &[")
    for av, kind, i in kinds:
        lines.append(f"    (\"{av}\", \"{kind}\", {i}),")
    lines.append("];")
    lines.append("")
    lines.append("/// meta.k8s.io kinds, accepted under any built-in apiVersion (sorted by kind).")
    lines.append("pub(crate) static META_KINDS: &[(&str, u16)] = &[")
    meta_index = {full.rsplit(".", 1)[1]: i for i, (full, _, _) in enumerate(out_msgs)
                  if full.startswith("k8s.io.apimachinery.pkg.apis.meta.v1.")}
    for kind in sorted(META_KINDS):
        lines.append(f"    (\"{kind}\", {meta_index[kind]}),")
    lines.append("];")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

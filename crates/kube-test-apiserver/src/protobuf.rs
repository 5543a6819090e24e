//! Reading Kubernetes protobuf request bodies into JSON. kubectl's typed clients (`auth can-i`,
//! `auth whoami`, `create rolebinding`, `certificate approve`, ...) send `application/vnd.kubernetes.protobuf`
//! and do not retry with JSON, so the test server reads the few types they send. Answers stay JSON, which
//! those clients also accept. Field numbers are those of the types' generated.proto files.

use base64::Engine;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::object;

const MAGIC: &[u8] = b"k8s\0";

enum Ty {
    Str,
    /// `bytes`, which JSON carries as base64.
    Bytes,
    Int,
    /// metav1.Time: {seconds, nanos}, RFC 3339 in JSON.
    Time,
    Msg(&'static [Field]),
    /// map<string, string>
    StrMap,
    /// map<string, ExtraValue>: ExtraValue is `repeated string items = 1`, a list in JSON.
    ExtraMap,
}

struct Field(u64, &'static str, Ty, bool);

const fn f(number: u64, name: &'static str, ty: Ty) -> Field {
    Field(number, name, ty, false)
}
const fn list(number: u64, name: &'static str, ty: Ty) -> Field {
    Field(number, name, ty, true)
}

static OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(11, "labels", Ty::StrMap),
    f(12, "annotations", Ty::StrMap),
    list(14, "finalizers", Ty::Str),
];
static POLICY_RULE: &[Field] = &[
    list(1, "verbs", Ty::Str),
    list(2, "apiGroups", Ty::Str),
    list(3, "resources", Ty::Str),
    list(4, "resourceNames", Ty::Str),
    list(5, "nonResourceURLs", Ty::Str),
];
static SUBJECT: &[Field] = &[f(1, "kind", Ty::Str), f(2, "apiGroup", Ty::Str), f(3, "name", Ty::Str), f(4, "namespace", Ty::Str)];
static ROLE_REF: &[Field] = &[f(1, "apiGroup", Ty::Str), f(2, "kind", Ty::Str), f(3, "name", Ty::Str)];
static BINDING: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), list(2, "subjects", Ty::Msg(SUBJECT)), f(3, "roleRef", Ty::Msg(ROLE_REF))];
static ROLE: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), list(2, "rules", Ty::Msg(POLICY_RULE))];
static NAMESPACE: &[Field] =
    &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(&[list(1, "finalizers", Ty::Str)])), f(3, "status", Ty::Msg(&[f(1, "phase", Ty::Str)]))];
static RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
static NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
static ACCESS_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    f(3, "user", Ty::Str),
    list(4, "groups", Ty::Str),
    f(5, "extra", Ty::ExtraMap),
    f(6, "uid", Ty::Str),
];
static ACCESS_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(ACCESS_SPEC))];
static RULES_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META)), f(2, "spec", Ty::Msg(&[f(1, "namespace", Ty::Str)]))];
static SELF_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META))];
static CSR_CONDITION: &[Field] = &[
    f(1, "type", Ty::Str),
    f(6, "status", Ty::Str),
    f(2, "reason", Ty::Str),
    f(3, "message", Ty::Str),
    f(4, "lastUpdateTime", Ty::Time),
    f(5, "lastTransitionTime", Ty::Time),
];
static CSR: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "request", Ty::Bytes),
            f(7, "signerName", Ty::Str),
            f(8, "expirationSeconds", Ty::Int),
            list(5, "usages", Ty::Str),
            f(2, "username", Ty::Str),
            f(3, "uid", Ty::Str),
            list(4, "groups", Ty::Str),
            f(6, "extra", Ty::ExtraMap),
        ]),
    ),
    f(3, "status", Ty::Msg(&[list(1, "conditions", Ty::Msg(CSR_CONDITION)), f(2, "certificate", Ty::Bytes)])),
];
static DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::Int),
    f(2, "preconditions", Ty::Msg(&[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)])),
    f(4, "propagationPolicy", Ty::Str),
    list(5, "dryRun", Ty::Str),
];

static TIME: &[Field] = &[f(1, "seconds", Ty::Int)];
static STR_ENTRY: &[Field] = &[f(1, "key", Ty::Str), f(2, "value", Ty::Str)];
static EXTRA_ENTRY: &[Field] = &[f(1, "key", Ty::Str), f(2, "value", Ty::Msg(&[list(1, "items", Ty::Str)]))];
static UNKNOWN: &[Field] = &[f(1, "typeMeta", Ty::Msg(&[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)])), f(2, "raw", Ty::Bytes)];

fn schema(kind: &str) -> Option<&'static [Field]> {
    Some(match kind {
        "RoleBinding" | "ClusterRoleBinding" => BINDING,
        "Role" | "ClusterRole" => ROLE,
        "Namespace" => NAMESPACE,
        "SelfSubjectAccessReview" | "SubjectAccessReview" => ACCESS_REVIEW,
        "SelfSubjectRulesReview" => RULES_REVIEW,
        "SelfSubjectReview" => SELF_REVIEW,
        "CertificateSigningRequest" => CSR,
        "DeleteOptions" => DELETE_OPTIONS,
        _ => return None,
    })
}

/// Decodes a `k8s\0`-prefixed runtime.Unknown envelope holding one of the types above.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body.strip_prefix(MAGIC).ok_or("a protobuf body must start with the k8s magic number")?;
    let unknown = message(envelope, UNKNOWN)?;
    let kind = unknown.pointer("/typeMeta/kind").and_then(Value::as_str).unwrap_or("").to_string();
    let schema = schema(&kind).ok_or_else(|| format!("this test double cannot read {kind:?} in protobuf; send JSON"))?;
    let raw = unknown.get("raw").and_then(Value::as_str).unwrap_or("");
    let raw = base64::engine::general_purpose::STANDARD.decode(raw).map_err(|e| e.to_string())?;
    let mut obj = message(&raw, schema)?;
    obj["kind"] = kind.into();
    obj["apiVersion"] = unknown.pointer("/typeMeta/apiVersion").cloned().unwrap_or(Value::Null);
    Ok(obj)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("truncated varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.0.len() {
            return Err("truncated field".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "field too long")?;
        self.take(n)
    }
}

fn message(bytes: &[u8], schema: &[Field]) -> Result<Value, String> {
    let mut out = Map::new();
    let mut r = Reader(bytes);
    while !r.0.is_empty() {
        let key = r.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let Some(Field(_, name, ty, repeated)) = schema.iter().find(|fl| fl.0 == number) else {
            match wire {
                0 => drop(r.varint()?),
                1 => drop(r.take(8)?),
                2 => drop(r.bytes()?),
                5 => drop(r.take(4)?),
                _ => return Err(format!("unsupported wire type {wire}")),
            }
            continue;
        };
        let value = match ty {
            Ty::Int => json!(r.varint()? as i64),
            Ty::Str => json!(String::from_utf8_lossy(r.bytes()?)),
            Ty::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
            Ty::Time => {
                let t = message(r.bytes()?, TIME)?;
                // Go always writes the zero time, which JSON spells null.
                match t.get("seconds").and_then(Value::as_i64) {
                    Some(s) if s != 0 => OffsetDateTime::from_unix_timestamp(s).map(|t| json!(object::timestamp(t))).unwrap_or(Value::Null),
                    _ => Value::Null,
                }
            }
            Ty::Msg(inner) => message(r.bytes()?, inner)?,
            Ty::StrMap | Ty::ExtraMap => {
                let entry = message(r.bytes()?, if matches!(ty, Ty::StrMap) { STR_ENTRY } else { EXTRA_ENTRY })?;
                let key = entry.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let value = match entry.get("value") {
                    Some(Value::Object(m)) => m.get("items").cloned().unwrap_or_else(|| json!([])),
                    Some(v) => v.clone(),
                    None if matches!(ty, Ty::StrMap) => json!(""),
                    None => json!([]),
                };
                let map = out.entry(*name).or_insert_with(|| json!({}));
                if let Some(m) = map.as_object_mut() {
                    m.insert(key, value);
                }
                continue;
            }
        };
        if *repeated {
            let items = out.entry(*name).or_insert_with(|| json!([]));
            if let Some(items) = items.as_array_mut() {
                items.push(value);
            }
        } else if !is_default(&value) {
            // Go writes every non-pointer field; JSON (omitempty) leaves defaults out, and so does this.
            out.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

fn is_default(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

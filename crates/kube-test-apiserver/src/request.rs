//! Request attributes as Kubernetes derives them from a URL (the apiserver's RequestInfoFactory): the verb,
//! and for resource requests the group, resource, subresource, namespace and name that RBAC checks.

use http::Method;

/// The query string as pairs, keeping repeated keys (`command=echo&command=hello`).
#[derive(Debug, Default, Clone)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn parse(uri: &http::Uri) -> Query {
        Query(axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri).map(|q| q.0).unwrap_or_default())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Go's strconv.ParseBool, which Kubernetes uses for `watch`, `follow` and friends.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "t" | "T" | "true" | "TRUE" | "True"))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceAttrs {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
}

/// What authorization looks at: a verb and either resource attributes or a non-resource path.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub verb: String,
    pub path: String,
    pub resource: Option<ResourceAttrs>,
}

/// Subresources of a namespace, which must not be taken for resources inside it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

pub fn parse(method: &Method, path: &str, query: &Query) -> RequestInfo {
    let non_resource = || RequestInfo { verb: method.as_str().to_ascii_lowercase(), path: path.to_string(), resource: None };
    let decoded: Vec<String> = path.trim_matches('/').split('/').map(percent_decode).collect();
    let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
    if parts.len() < 3 || !(parts[0] == "api" || parts[0] == "apis") {
        return non_resource();
    }
    let mut rest = &parts[1..];
    let mut attrs = ResourceAttrs::default();
    if parts[0] == "apis" {
        if rest.len() < 3 {
            return non_resource();
        }
        attrs.group = rest[0].to_string();
        rest = &rest[1..];
    }
    attrs.version = rest[0].to_string();
    rest = &rest[1..];

    let mut verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    // The deprecated /watch/ path prefix.
    if rest.first() == Some(&"watch") {
        verb = "watch".into();
        rest = &rest[1..];
    }
    if rest.first() == Some(&"namespaces")
        && let Some(ns) = rest.get(1)
    {
        attrs.namespace = ns.to_string();
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    if rest.is_empty() {
        return non_resource();
    }
    attrs.resource = rest[0].to_string();
    attrs.name = rest.get(1).map(|s| s.to_string()).unwrap_or_default();
    attrs.subresource = rest.get(2).map(|s| s.to_string()).unwrap_or_default();

    if attrs.name.is_empty() && verb == "get" {
        verb = if query.flag("watch") { "watch" } else { "list" }.into();
    }
    // A list or watch of one object by field selector is authorized against that name (resourceNames).
    if matches!(verb.as_str(), "list" | "watch")
        && attrs.name.is_empty()
        && let Some(name) = query.get("fieldSelector").and_then(single_name)
    {
        attrs.name = name;
    }
    if attrs.name.is_empty() && verb == "delete" {
        verb = "deletecollection".into();
    }
    RequestInfo { verb, path: path.to_string(), resource: Some(attrs) }
}

fn single_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let value = term.strip_prefix("metadata.name==").or_else(|| term.strip_prefix("metadata.name="))?;
        Some(value.to_string())
    })
}

/// Clients escape some characters in names (`system%3Adiscovery`); compare names unescaped.
fn percent_decode(segment: &str) -> String {
    if !segment.contains('%') {
        return segment.to_string();
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

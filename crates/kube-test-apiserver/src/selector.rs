//! Label selectors (`a=b,c!=d,e in (f,g),h notin (i),j,!k`) and field selectors (`metadata.name=x`).

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
}

#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<(String, Op)>);

impl LabelSelector {
    pub fn parse(raw: &str) -> Result<LabelSelector, String> {
        let mut out = Vec::new();
        for term in split_top_level(raw) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            out.push(parse_term(term).ok_or_else(|| format!("unable to parse requirement: {term:?}"))?);
        }
        Ok(LabelSelector(out))
    }

    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        self.0.iter().all(|(key, op)| {
            let value = labels.and_then(|l| l.get(key)).and_then(Value::as_str);
            match (op, value) {
                (Op::Eq(v), Some(x)) => v == x,
                (Op::Eq(_), None) => false,
                (Op::NotEq(v), x) => x != Some(v.as_str()),
                (Op::In(vs), Some(x)) => vs.iter().any(|v| v == x),
                (Op::In(_), None) => false,
                (Op::NotIn(vs), x) => x.is_none_or(|x| !vs.iter().any(|v| v == x)),
                (Op::Exists, x) => x.is_some(),
                (Op::NotExists, x) => x.is_none(),
            }
        })
    }
}

/// Commas separate requirements except inside `in (...)` value lists.
fn split_top_level(raw: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in raw.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&raw[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&raw[start..]);
    parts
}

fn parse_term(term: &str) -> Option<(String, Op)> {
    let key_ok = |k: &str| !k.is_empty() && !k.contains(char::is_whitespace);
    if let Some(key) = term.strip_prefix('!') {
        let key = key.trim();
        return key_ok(key).then(|| (key.to_string(), Op::NotExists));
    }
    if let Some(open) = term.find('(') {
        let values = term[open + 1..].strip_suffix(')')?;
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        let mut words = term[..open].split_whitespace();
        let (key, op, extra) = (words.next()?, words.next()?, words.next());
        if extra.is_some() || !key_ok(key) {
            return None;
        }
        let op = match op {
            "in" => Op::In(values),
            "notin" => Op::NotIn(values),
            _ => return None,
        };
        return Some((key.to_string(), op));
    }
    let (key, op) = if let Some((k, v)) = term.split_once("!=") {
        (k, Op::NotEq(v.trim().to_string()))
    } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        (k, Op::Eq(v.trim().to_string()))
    } else {
        (term, Op::Exists)
    };
    let key = key.trim();
    key_ok(key).then(|| (key.to_string(), op))
}

/// `field=value`, `field==value`, `field!=value` on dotted paths into the object.
#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(raw: &str) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        for term in raw.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (f, true, v)
            } else {
                return Err(format!("invalid selector: '{term}'; can't understand '{term}'"));
            };
            out.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(FieldSelector(out))
    }

    /// Adds `field=value` (a watch of one object by name, from the old `/watch/.../NAME` paths).
    pub fn and_equal(mut self, field: &str, value: &str) -> Self {
        self.0.push((field.to_string(), true, value.to_string()));
        self
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, equal, value)| {
            let actual = field.split('.').try_fold(object, |v, k| v.get(k)).and_then(Value::as_str).unwrap_or("");
            (actual == value) == *equal
        })
    }
}

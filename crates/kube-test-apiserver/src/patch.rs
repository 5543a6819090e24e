//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902). Strategic merge patches are applied as merge
//! patches: lists are replaced instead of merged by key, which is enough for the objects served here.

use serde_json::Value;

pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let Value::Object(map) = target {
        for (key, value) in patch {
            if value.is_null() {
                map.remove(key);
            } else {
                merge(map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array of operations")?;
    for op in ops {
        let field = |name: &str| op.get(name).and_then(Value::as_str).ok_or(format!("operation lacks {name:?}"));
        let path = pointer(field("path")?)?;
        let value = || op.get("value").cloned().ok_or("operation lacks \"value\"".to_string());
        match field("op")? {
            "add" => add(target, &path, value()?)?,
            "remove" => drop(remove(target, &path)?),
            "replace" => {
                remove(target, &path)?;
                add(target, &path, value()?)?;
            }
            "move" => {
                let moved = remove(target, &pointer(field("from")?)?)?;
                add(target, &path, moved)?;
            }
            "copy" => {
                let copied = get(target, &pointer(field("from")?)?)?.clone();
                add(target, &path, copied)?;
            }
            "test" => {
                if *get(target, &path)? != value()? {
                    return Err(format!("test operation failed at {:?}", field("path")?));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

fn pointer(raw: &str) -> Result<Vec<String>, String> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let rest = raw.strip_prefix('/').ok_or(format!("invalid JSON pointer {raw:?}"))?;
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

fn get<'a>(target: &'a Value, path: &[String]) -> Result<&'a Value, String> {
    path.iter()
        .try_fold(target, |v, token| match v {
            Value::Object(m) => m.get(token),
            Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
        .ok_or_else(|| format!("path /{} does not exist", path.join("/")))
}

fn parent<'a>(target: &'a mut Value, path: &[String]) -> Result<(&'a mut Value, String), String> {
    let (last, init) = path.split_last().ok_or("the whole document cannot be the target")?;
    let mut node = target;
    for token in init {
        node = match node {
            Value::Object(m) => m.get_mut(token),
            Value::Array(a) => token.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path /{} does not exist", path.join("/")))?;
    }
    Ok((node, last.clone()))
}

fn add(target: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    match parent(target, path)? {
        (Value::Object(m), key) => {
            m.insert(key, value);
            Ok(())
        }
        (Value::Array(a), key) => {
            let index = if key == "-" { a.len() } else { key.parse().map_err(|_| format!("bad index {key:?}"))? };
            if index > a.len() {
                return Err(format!("index {index} out of bounds"));
            }
            a.insert(index, value);
            Ok(())
        }
        _ => Err(format!("cannot add at /{}", path.join("/"))),
    }
}

fn remove(target: &mut Value, path: &[String]) -> Result<Value, String> {
    let missing = || format!("path /{} does not exist", path.join("/"));
    match parent(target, path)? {
        (Value::Object(m), key) => m.remove(&key).ok_or_else(missing),
        (Value::Array(a), key) => match key.parse::<usize>() {
            Ok(i) if i < a.len() => Ok(a.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

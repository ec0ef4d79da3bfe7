//! Reading the generic parse tree (`serde_json::Value` with node names as
//! keys, as produced by `parse`).

use serde_json::Value;

static NULL: Value = Value::Null;

/// `{"node": {"Kind": {…}}}` or `{"Kind": {…}}` → `("Kind", {…})`.
pub fn node(v: &Value) -> Option<(&str, &Value)> {
    let v = v.get("node").unwrap_or(v);
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    let (k, inner) = obj.iter().next()?;
    k.starts_with(|c: char| c.is_ascii_uppercase())
        .then_some((k.as_str(), inner))
}

pub fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or(&NULL)
}

pub fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub fn int(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

pub fn boolean(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

pub fn is_null(v: &Value) -> bool {
    v.is_null()
}

pub fn location(v: &Value) -> Option<usize> {
    v.get("location")
        .and_then(Value::as_i64)
        .and_then(|l| usize::try_from(l).ok())
}

/// The smallest `location` anywhere in the subtree.
pub fn min_location(v: &Value) -> Option<usize> {
    match v {
        Value::Object(map) => {
            let own = location(v);
            map.iter()
                .filter(|(k, _)| k.as_str() != "location")
                .filter_map(|(_, c)| min_location(c))
                .chain(own)
                .min()
        }
        Value::Array(items) => items.iter().filter_map(min_location).min(),
        _ => None,
    }
}

/// The largest `location` anywhere in the subtree.
pub fn max_location(v: &Value) -> Option<usize> {
    match v {
        Value::Object(map) => {
            let own = location(v);
            map.iter()
                .filter(|(k, _)| k.as_str() != "location")
                .filter_map(|(_, c)| max_location(c))
                .chain(own)
                .max()
        }
        Value::Array(items) => items.iter().filter_map(max_location).max(),
        _ => None,
    }
}

/// `String` nodes of a list (ColumnRef fields, qualified names); `*` for `A_Star`.
pub fn names(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| match node(i) {
            Some(("String", s)) => text(s, "sval"),
            Some(("AStar", _)) => "*",
            _ => "",
        })
        .collect()
}

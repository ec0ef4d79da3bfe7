//! Reading pg_query's typed parse tree: node references, locations over a
//! subtree, and the names of `String` lists. The children of each node kind
//! come from the generated [`super::walk`] (exhaustive over node kinds).

use pg_query::NodeRef;
use pg_query::protobuf::Node;

pub use super::walk::{children, location};

/// The node inside a `Node` wrapper.
pub fn node(n: &Node) -> Option<NodeRef<'_>> {
    n.node.as_ref().map(|e| e.to_ref())
}

/// The node inside an optional boxed `Node` field.
pub fn opt(n: &Option<Box<Node>>) -> Option<NodeRef<'_>> {
    n.as_deref().and_then(node)
}

/// The nodes of a list field.
pub fn nodes(items: &[Node]) -> impl Iterator<Item = NodeRef<'_>> {
    items.iter().filter_map(node)
}

/// The direct children of `n` as a vector.
pub fn child_list(n: NodeRef<'_>) -> Vec<NodeRef<'_>> {
    let mut out = Vec::new();
    children(n, &mut out);
    out
}

/// The smallest `location` anywhere in the subtree.
pub fn min_location(n: NodeRef<'_>) -> Option<usize> {
    location_span(n).map(|(min, _)| min)
}

/// The largest `location` anywhere in the subtree.
pub fn max_location(n: NodeRef<'_>) -> Option<usize> {
    location_span(n).map(|(_, max)| max)
}

/// The smallest and the largest `location` in the subtree, in one walk.
pub fn location_span(n: NodeRef<'_>) -> Option<(usize, usize)> {
    let mut span: Option<(usize, usize)> = None;
    let mut stack = vec![n];
    while let Some(c) = stack.pop() {
        if let Some(l) = location(c) {
            span = Some(span.map_or((l, l), |(lo, hi)| (lo.min(l), hi.max(l))));
        }
        children(c, &mut stack);
    }
    span
}

/// The smallest location over several subtrees.
pub fn min_location_of<'a>(items: impl IntoIterator<Item = NodeRef<'a>>) -> Option<usize> {
    items.into_iter().filter_map(min_location).min()
}

/// The largest location over several subtrees.
pub fn max_location_of<'a>(items: impl IntoIterator<Item = NodeRef<'a>>) -> Option<usize> {
    items.into_iter().filter_map(max_location).max()
}

/// `String` nodes of a list (ColumnRef fields, qualified names); `*` for
/// `A_Star`, empty for anything else.
pub fn names(items: &[Node]) -> Vec<&str> {
    items
        .iter()
        .map(|i| match node(i) {
            Some(NodeRef::String(s)) => s.sval.as_str(),
            Some(NodeRef::AStar(_)) => "*",
            _ => "",
        })
        .collect()
}

/// The `sval` of every `String` node of a list, skipping other kinds.
pub fn strings(items: &[Node]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|i| match node(i) {
            Some(NodeRef::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every node object pg_query's serialization shows is reached by
    /// [`children`]: counted by kind over a corpus of statements, the walk
    /// and the serialization agree. A field the generated walk does not
    /// visit (a pg_query upgrade) fails here.
    #[test]
    fn walk_reaches_every_node() {
        for sql in super::super::tests::corpus::corpus() {
            let Ok(parsed) = pg_query::parse(sql, 0) else {
                continue;
            };
            for raw in &parsed.protobuf.stmts {
                let Some(root) = raw.stmt.as_deref().and_then(node) else {
                    continue;
                };
                let mut walked = std::collections::BTreeMap::<String, usize>::new();
                let mut stack = vec![root];
                while let Some(n) = stack.pop() {
                    *walked
                        .entry(super::super::walk::kind(n).to_string())
                        .or_default() += 1;
                    children(n, &mut stack);
                }
                let json = serde_json::to_value(raw.stmt.as_deref()).unwrap_or_default();
                let mut serialized = std::collections::BTreeMap::<String, usize>::new();
                count_json(&json, &mut serialized);
                // Serialized counts are of wrapped nodes ({"Kind": …});
                // directly typed fields (a RangeVar, a WithClause) appear
                // as plain objects, so the walk may count more, never less.
                for (kind, n) in &serialized {
                    let w = walked.get(kind).copied().unwrap_or(0);
                    assert!(w >= *n, "{sql}: {kind}: walked {w}, serialized {n}");
                }
                let rangevars_json = count_keys(&json, "relpersistence");
                assert_eq!(
                    walked.get("RangeVar").copied().unwrap_or(0),
                    rangevars_json,
                    "{sql}: RangeVars"
                );
                let locations_json = count_keys(&json, "location");
                let mut locations = 0;
                let mut stack = vec![root];
                while let Some(n) = stack.pop() {
                    if matches!(n, NodeRef::RawStmt(_)) {
                        continue;
                    }
                    if has_location_field(n) {
                        locations += 1;
                    }
                    children(n, &mut stack);
                }
                assert_eq!(locations, locations_json, "{sql}: locations");
            }
        }
    }

    fn has_location_field(n: NodeRef<'_>) -> bool {
        let v = serde_json::to_value(n.to_enum()).unwrap_or_default();
        v.as_object()
            .and_then(|o| o.values().next())
            .and_then(|inner| inner.as_object())
            .is_some_and(|o| o.contains_key("location"))
    }

    fn count_json(v: &serde_json::Value, out: &mut std::collections::BTreeMap<String, usize>) {
        match v {
            serde_json::Value::Array(items) => items.iter().for_each(|i| count_json(i, out)),
            serde_json::Value::Object(map) => {
                if map.len() == 1
                    && let Some((k, inner)) = map.iter().next()
                    && k.starts_with(|c: char| c.is_ascii_uppercase())
                    && inner.is_object()
                    && !matches!(k.as_str(), "Ival" | "Fval" | "Boolval" | "Sval" | "Bsval")
                {
                    *out.entry(k.clone()).or_default() += 1;
                }
                map.values().for_each(|c| count_json(c, out));
            }
            _ => {}
        }
    }

    fn count_keys(v: &serde_json::Value, key: &str) -> usize {
        match v {
            serde_json::Value::Array(items) => items.iter().map(|i| count_keys(i, key)).sum(),
            serde_json::Value::Object(map) => {
                usize::from(map.contains_key(key))
                    + map.values().map(|c| count_keys(c, key)).sum::<usize>()
            }
            _ => 0,
        }
    }
}

//! Edits: replacements of exact byte ranges of the client's text. Everything
//! not covered by an edit is copied unchanged.

/// Replace `start..end` (empty for an insertion) with `text`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Clone, Debug, Default)]
pub struct Edits {
    edits: Vec<Edit>,
}

impl Edits {
    pub fn insert(&mut self, at: usize, text: impl Into<String>) {
        self.edits.push(Edit {
            start: at,
            end: at,
            text: text.into(),
        });
    }

    pub fn replace(&mut self, start: usize, end: usize, text: impl Into<String>) {
        self.edits.push(Edit {
            start,
            end,
            text: text.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.edits.is_empty()
    }

    /// Some edit lies inside `start..end`.
    pub fn any_within(&self, start: usize, end: usize) -> bool {
        self.edits.iter().any(|e| e.start >= start && e.end <= end)
    }

    /// Drop every edit inside `start..end` (the region is being replaced whole).
    pub fn clear_within(&mut self, start: usize, end: usize) {
        self.edits.retain(|e| !(e.start >= start && e.end <= end));
    }

    /// `sql[start..end]` with the edits that lie inside it applied. `None`
    /// when edits overlap (a rewriter bug, reported as an error by callers).
    pub fn render(&self, sql: &str, start: usize, end: usize) -> Option<String> {
        let mut inside: Vec<(usize, &Edit)> = self
            .edits
            .iter()
            .enumerate()
            .filter(|(_, e)| {
                e.start >= start && e.end <= end && (e.start < end || e.start == e.end)
            })
            .collect();
        inside.sort_by_key(|(seq, e)| (e.start, e.end, *seq));
        let mut out = String::with_capacity(end.saturating_sub(start) + 64);
        let mut pos = start;
        for (_, e) in inside {
            if e.start < pos {
                return None;
            }
            out.push_str(sql.get(pos..e.start)?);
            out.push_str(&e.text);
            pos = e.end;
        }
        out.push_str(sql.get(pos..end)?);
        Some(out)
    }
}

/// Quote an identifier if PostgreSQL would need it.
pub fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !is_reserved(name);
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "all"
            | "analyse"
            | "analyze"
            | "and"
            | "any"
            | "array"
            | "as"
            | "asc"
            | "asymmetric"
            | "both"
            | "case"
            | "cast"
            | "check"
            | "collate"
            | "column"
            | "constraint"
            | "create"
            | "current_catalog"
            | "current_date"
            | "current_role"
            | "current_time"
            | "current_timestamp"
            | "current_user"
            | "default"
            | "deferrable"
            | "desc"
            | "distinct"
            | "do"
            | "else"
            | "end"
            | "except"
            | "false"
            | "fetch"
            | "for"
            | "foreign"
            | "from"
            | "grant"
            | "group"
            | "having"
            | "in"
            | "initially"
            | "intersect"
            | "into"
            | "lateral"
            | "leading"
            | "limit"
            | "localtime"
            | "localtimestamp"
            | "not"
            | "null"
            | "offset"
            | "on"
            | "only"
            | "or"
            | "order"
            | "placing"
            | "primary"
            | "references"
            | "returning"
            | "select"
            | "session_user"
            | "some"
            | "symmetric"
            | "system_user"
            | "table"
            | "then"
            | "to"
            | "trailing"
            | "true"
            | "union"
            | "unique"
            | "user"
            | "using"
            | "variadic"
            | "when"
            | "where"
            | "window"
            | "with"
            | "authorization"
            | "binary"
            | "collation"
            | "concurrently"
            | "cross"
            | "current_schema"
            | "freeze"
            | "full"
            | "ilike"
            | "inner"
            | "is"
            | "isnull"
            | "join"
            | "left"
            | "like"
            | "natural"
            | "notnull"
            | "outer"
            | "overlaps"
            | "right"
            | "similar"
            | "tablesample"
            | "verbose"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_applies_in_order() {
        let mut e = Edits::default();
        e.insert(3, "X");
        e.replace(5, 6, "YY");
        e.insert(3, "Z");
        assert_eq!(e.render("abcdefg", 0, 7).as_deref(), Some("abcXZdeYYg"));
        assert_eq!(e.render("abcdefg", 4, 7).as_deref(), Some("eYYg"));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("tasks"), "tasks");
        assert_eq!(quote_ident("Tasks"), "\"Tasks\"");
        assert_eq!(quote_ident("user"), "\"user\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}

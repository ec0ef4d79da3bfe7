//! Finding clause boundaries in scanner tokens. The parser's node locations
//! say where a clause's content starts (its first located node) and how far
//! it reaches at least (its last located node); the tokens say the rest:
//! the keyword before the start, and the end, which is the first token
//! *after the last located node* that cannot continue the content (a
//! closing parenthesis of an enclosing level, `;`, or the keyword of a
//! clause that may follow, at the same nesting depth). Keywords inside the
//! content — `IS DISTINCT FROM`, `SIMILAR TO … ESCAPE`, `CASE … WHEN`,
//! `FROM` in `EXTRACT`/`SUBSTRING`/`TRIM`/`OVERLAY`, `WHERE` in `FILTER`,
//! `ORDER BY` in a window or `WITHIN GROUP` — lie before that node (the
//! operand after them has a location), so they are never taken for the
//! end of the clause.

use super::parse::{Tok, TokKind};

/// Which clause is being scanned, i.e. which tokens end it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clause {
    /// A `WHERE` (or `HAVING`) condition.
    Where,
    /// A `FROM` / `USING` list.
    From,
    /// A join's `ON` condition (also `MERGE … ON`).
    On,
    /// `UPDATE … SET` list (also a `VALUES` list).
    Set,
}

pub struct Tokens<'a> {
    pub toks: &'a [Tok],
    pub sql: &'a str,
}

impl<'a> Tokens<'a> {
    pub fn new(toks: &'a [Tok], sql: &'a str) -> Self {
        Tokens { toks, sql }
    }

    /// Index of the first token starting at or after `pos`.
    pub fn at(&self, pos: usize) -> Option<usize> {
        let i = self.toks.partition_point(|t| t.start < pos);
        (i < self.toks.len()).then_some(i)
    }

    pub fn kw(&self, i: usize) -> Option<&'static str> {
        match self.toks.get(i)?.kind {
            TokKind::Keyword(k) => Some(k),
            _ => None,
        }
    }

    pub fn is_kw(&self, i: usize, k: &str) -> bool {
        self.kw(i) == Some(k)
    }

    pub fn is_char(&self, i: usize, c: u8) -> bool {
        matches!(self.toks.get(i), Some(Tok { kind: TokKind::Char(x), .. }) if *x == c)
    }

    /// Next non-comment token after `i`.
    pub fn next(&self, i: usize) -> Option<usize> {
        (i + 1..self.toks.len()).find(|&j| self.toks[j].kind != TokKind::Comment)
    }

    /// Previous non-comment token before `i`.
    pub fn prev(&self, i: usize) -> Option<usize> {
        (0..i)
            .rev()
            .find(|&j| self.toks[j].kind != TokKind::Comment)
    }

    /// Walk back from token `i` (exclusive) over `(`, comments and the
    /// `skip` keywords to a keyword in `want`; its index.
    pub fn keyword_before(&self, i: usize, want: &[&str], skip: &[&str]) -> Option<usize> {
        let mut j = i;
        loop {
            j = self.prev(j)?;
            if self.is_char(j, b'(') {
                continue;
            }
            match self.kw(j) {
                Some(k) if want.contains(&k) => return Some(j),
                Some(k) if skip.contains(&k) => continue,
                _ => return None,
            }
        }
    }

    /// Index of the `)` matching the `(` at `open`.
    pub fn matching_paren(&self, open: usize) -> Option<usize> {
        let mut depth = 0i32;
        for j in open..self.toks.len() {
            if self.is_char(j, b'(') || self.is_char(j, b'[') {
                depth += 1;
            } else if self.is_char(j, b')') || self.is_char(j, b']') {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
        }
        None
    }

    /// The last token of the clause introduced by token `from` (its keyword,
    /// or any token at the clause's top level) whose content's last located
    /// node is at byte `reach`: the clause ends before the first token after
    /// `reach` at the same depth that starts another clause, or at a closing
    /// parenthesis of an enclosing level.
    pub fn clause_end(&self, from: usize, reach: usize, clause: Clause) -> usize {
        let mut depth = 0i32;
        let mut last = from;
        let mut j = from;
        while let Some(i) = self.next(j) {
            j = i;
            if depth == 0 && self.toks[i].start > reach && self.ends(i, clause) {
                break;
            }
            if self.is_char(i, b'(') || self.is_char(i, b'[') {
                depth += 1;
            } else if self.is_char(i, b')') || self.is_char(i, b']') {
                depth -= 1;
                if depth < 0 {
                    break;
                }
            }
            last = i;
        }
        last
    }

    /// `WHEN [NOT] MATCHED` of MERGE (not `CASE WHEN`).
    fn merge_when(&self, i: usize) -> bool {
        let Some(n) = self.next(i) else { return false };
        self.is_kw(n, "MATCHED") || (self.is_kw(n, "NOT") && self.next_is_kw(n, &["MATCHED"]))
    }

    fn next_is_kw(&self, i: usize, k: &[&str]) -> bool {
        self.next(i)
            .and_then(|n| self.kw(n))
            .is_some_and(|x| k.contains(&x))
    }

    fn next_is_char(&self, i: usize, c: u8) -> bool {
        self.next(i).is_some_and(|n| self.is_char(n, c))
    }

    fn ends(&self, i: usize, clause: Clause) -> bool {
        if self.is_char(i, b';') {
            return true;
        }
        let Some(k) = self.kw(i) else {
            return clause == Clause::On && self.is_char(i, b',');
        };
        // `t.do`, `… AS limit`: a keyword used as a name.
        if self
            .prev(i)
            .is_some_and(|p| self.is_char(p, b'.') || self.is_kw(p, "AS"))
        {
            return false;
        }
        let common = match k {
            "GROUP" | "ORDER" => self.next_is_kw(i, &["BY"]),
            "FOR" => self.next_is_kw(i, &["UPDATE", "SHARE", "NO", "KEY"]),
            "ON" => self.next_is_kw(i, &["CONFLICT"]),
            "HAVING" | "WINDOW" | "LIMIT" | "OFFSET" | "FETCH" | "UNION" | "INTERSECT"
            | "EXCEPT" | "RETURNING" => true,
            _ => false,
        };
        match clause {
            Clause::Where => common || k == "DO",
            Clause::From => common || k == "WHERE",
            Clause::On => {
                common
                    || matches!(
                        k,
                        "WHERE" | "JOIN" | "INNER" | "CROSS" | "NATURAL" | "ON" | "USING"
                    )
                    || (k == "WHEN" && self.merge_when(i))
                    || (matches!(k, "LEFT" | "RIGHT" | "FULL") && !self.next_is_char(i, b'('))
            }
            Clause::Set => matches!(k, "FROM" | "WHERE" | "RETURNING"),
        }
    }

    /// Byte offset just after token `i`.
    pub fn end_of(&self, i: usize) -> usize {
        self.toks[i].end
    }

    pub fn start_of(&self, i: usize) -> usize {
        self.toks[i].start
    }

    /// The tokens of a (possibly qualified) name starting at token `i`:
    /// index of its last token.
    pub fn name_end(&self, i: usize) -> usize {
        let mut last = i;
        loop {
            match (self.next(last), self.next(last).and_then(|d| self.next(d))) {
                (Some(dot), Some(part)) if self.is_char(dot, b'.') && !self.is_char(part, b'*') => {
                    match self.toks[part].kind {
                        TokKind::Ident | TokKind::Keyword(_) => last = part,
                        _ => return last,
                    }
                }
                _ => return last,
            }
        }
    }
}

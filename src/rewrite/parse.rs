//! Parsing with `pg_query` (libpg_query, PostgreSQL's own grammar): SQL
//! text becomes statements as pg_query's typed tree (`NodeEnum`, walked
//! through `NodeRef` with exhaustive matches, see `tree` and the generated
//! `walk`) plus scanner tokens with exact byte offsets.

use pg_query::NodeEnum;

/// One scanner token with its byte range in the SQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub kind: TokKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokKind {
    /// A keyword, upper case, without the grammar's `_P` suffix.
    Keyword(&'static str),
    /// A single character token such as `(`, `)`, `,`, `;`, `.`.
    Char(u8),
    Ident,
    Comment,
    Other,
}

/// One top-level statement: its tree and byte range (including leading
/// whitespace/comments after the previous `;`).
#[derive(Clone, Debug)]
pub struct RawStatement {
    /// `None` for an empty statement.
    pub tree: Option<NodeEnum>,
    pub start: usize,
    pub end: usize,
}

#[derive(Clone, Debug)]
pub struct Parsed {
    pub statements: Vec<RawStatement>,
    pub tokens: Vec<Tok>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The grammar rejected the text; PostgreSQL's message.
    Syntax(String),
    /// Nesting too deep for the parser or its tree encoding.
    TooComplex(String),
}

/// Parse and scan `sql`. Deep recursion inside: call on a big stack
/// ([`on_big_stack`]).
pub fn parse(sql: &str) -> Result<Parsed, ParseError> {
    let result = pg_query::parse(sql, 0).map_err(classify)?;
    let scanned = pg_query::scan(sql).map_err(classify)?;
    let tokens = scanned
        .tokens
        .iter()
        .map(|t| Tok {
            start: usize::try_from(t.start).unwrap_or(0),
            end: usize::try_from(t.end).unwrap_or(0),
            kind: token_kind(t.token, t.keyword_kind),
        })
        .collect();
    let mut statements = Vec::with_capacity(result.protobuf.stmts.len());
    for raw in result.protobuf.stmts {
        let start = usize::try_from(raw.stmt_location).unwrap_or(0);
        let end = match usize::try_from(raw.stmt_len).unwrap_or(0) {
            0 => sql.len(),
            len => start + len,
        };
        let tree = raw.stmt.and_then(|node| node.node);
        statements.push(RawStatement { tree, start, end });
    }
    Ok(Parsed { statements, tokens })
}

/// Scanner tokens only (for fragments such as a DO body check).
pub fn scan(sql: &str) -> Result<Vec<Tok>, ParseError> {
    let scanned = pg_query::scan(sql).map_err(classify)?;
    Ok(scanned
        .tokens
        .iter()
        .map(|t| Tok {
            start: usize::try_from(t.start).unwrap_or(0),
            end: usize::try_from(t.end).unwrap_or(0),
            kind: token_kind(t.token, t.keyword_kind),
        })
        .collect())
}

fn classify(e: pg_query::Error) -> ParseError {
    match e {
        pg_query::Error::Decode(d) => ParseError::TooComplex(d.to_string()),
        other => {
            let msg = match other {
                pg_query::Error::Parse(m) | pg_query::Error::Scan(m) => m,
                o => o.to_string(),
            };
            if msg.contains("stack depth") || msg.contains("too deep") {
                ParseError::TooComplex(msg)
            } else {
                ParseError::Syntax(msg)
            }
        }
    }
}

fn token_kind(token: i32, keyword_kind: i32) -> TokKind {
    use pg_query::protobuf::Token;
    if keyword_kind != 0 {
        if let Ok(t) = Token::try_from(token) {
            let name = t.as_str_name();
            return TokKind::Keyword(name.strip_suffix("_P").unwrap_or(name));
        }
        return TokKind::Other;
    }
    if (0..256).contains(&token) {
        return TokKind::Char(token as u8);
    }
    match Token::try_from(token) {
        Ok(Token::Ident) => TokKind::Ident,
        Ok(Token::SqlComment) | Ok(Token::CComment) => TokKind::Comment,
        _ => TokKind::Other,
    }
}

/// Stack a parse and rewrite runs with: libpg_query and the tree walks
/// recurse once per nesting level.
pub const PARSER_STACK: usize = 64 << 20;

/// Run `f` with at least [`PARSER_STACK`] of stack left, on the calling
/// thread. A thread that has that much (the parser pool's) runs `f` right
/// away; on any other `stacker` maps a fresh stack segment of that size,
/// switches to it for the call and unmaps it after: no thread is started.
/// `None` if `f` panicked (or the segment could not be mapped).
pub fn on_big_stack<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stacker::maybe_grow(PARSER_STACK, PARSER_STACK, f)
    }))
    .ok()
}

/// Where the constants and parameters of a statement are, for the rewrite
/// cache's literal normalization.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Constants {
    /// Byte ranges of literal constants: strings (all forms), numbers, bit
    /// strings.
    pub literals: Vec<(usize, usize)>,
    /// `$n` parameters: byte range and number.
    pub params: Vec<(usize, usize, u32)>,
}

/// Scans `sql` for its constants and parameters with PostgreSQL's own
/// scanner, so that a literal is exactly what PostgreSQL would take for one.
pub fn constants(sql: &str) -> Result<Constants, ParseError> {
    use pg_query::protobuf::Token;
    let scanned = pg_query::scan(sql).map_err(classify)?;
    let mut out = Constants::default();
    for t in &scanned.tokens {
        let (Ok(start), Ok(end)) = (usize::try_from(t.start), usize::try_from(t.end)) else {
            continue;
        };
        match Token::try_from(t.token) {
            Ok(
                Token::Sconst
                | Token::Usconst
                | Token::Bconst
                | Token::Xconst
                | Token::Iconst
                | Token::Fconst,
            ) => out.literals.push((start, end)),
            Ok(Token::Param) => {
                let number = sql
                    .get(start + 1..end)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                out.params.push((start, end, number));
            }
            _ => {}
        }
    }
    Ok(out)
}

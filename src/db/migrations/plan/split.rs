//! Splits a migration's SQL into its statements, the way PostgreSQL reads
//! them: a `;` ends a statement unless it is inside a quoted string, a
//! quoted name, a dollar-quoted body or a comment.

/// The statements of `sql`, each trimmed, without the empty ones and
/// those made only of comments.
pub fn statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find_from(sql, i, "\n").map_or(bytes.len(), |end| end + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = find_from(sql, i + 2, "*/").map_or(bytes.len(), |end| end + 2);
            }
            quote @ (b'\'' | b'"') => i = skip_quoted(bytes, i, quote),
            b'$' => match dollar_tag(sql, i) {
                Some(tag) => {
                    i = find_from(sql, i + tag.len(), tag)
                        .map_or(bytes.len(), |end| end + tag.len());
                }
                None => i += 1,
            },
            b';' => {
                push(&mut out, &sql[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    push(&mut out, &sql[start..]);
    out
}

fn push(out: &mut Vec<String>, statement: &str) {
    let statement = statement.trim();
    if !without_comments(statement).trim().is_empty() {
        out.push(statement.to_owned());
    }
}

fn find_from(sql: &str, from: usize, needle: &str) -> Option<usize> {
    sql.get(from..)?.find(needle).map(|at| at + from)
}

/// Past the closing quote; a doubled quote is part of the text.
fn skip_quoted(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// `$tag$` (or `$$`) starting at `at`, if one does.
fn dollar_tag(sql: &str, at: usize) -> Option<&str> {
    let rest = &sql[at + 1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    valid.then(|| &sql[at..at + end + 2])
}

/// The statement with its comments taken out, for reading its words.
pub fn without_comments(statement: &str) -> String {
    statement
        .lines()
        .map(|line| match line.find("--") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The statement's words, lowercased, comments left out: what the
/// documented lock levels and the safe alternatives are chosen by.
pub fn words(statement: &str) -> Vec<String> {
    without_comments(statement)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::statements;

    #[test]
    fn semicolons_in_strings_bodies_and_comments_do_not_split() {
        let sql = "-- a comment; still a comment\n\
                   CREATE TABLE t (a text DEFAULT ';');\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   /* block ; */ ALTER TABLE \"we;ird\" ADD COLUMN b int;\n\
                   -- trailing comment only\n";
        let got = statements(sql);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].ends_with("DEFAULT ';')"));
        assert!(got[1].contains("SELECT 1; $body$"));
        assert!(got[2].contains("\"we;ird\""));
    }
}

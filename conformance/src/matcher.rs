//! Comparing kubectl output with upstream's, where some parts vary from run to run.
//!
//! A pattern is literal text with holes: `{age}` (`5s`, `2m3s`), `{int}`, `{uid}`,
//! `{ts}` (RFC 3339, `2024-01-02T03:04:05Z`), `{ip}` (IPv4), `{nodeport}`
//! (30000-32767), `{b64}` and `{any}` (anything on one line, possibly empty).
//! Tables are compared cell by cell: kubectl aligns columns itself, so the server can
//! only get the cells wrong, never the spacing.

/// Whether `text` matches `pattern` in full.
pub fn matches(pattern: &str, text: &str) -> bool {
    let tokens = tokenize(pattern);
    match_from(&tokens, text)
}

enum Token<'a> {
    Literal(&'a str),
    Hole(&'a str),
}

const HOLES: &[&str] = &["age", "int", "uid", "ts", "ip", "nodeport", "b64", "any"];

fn tokenize(pattern: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = pattern;
    while !rest.is_empty() {
        let hole = rest.find('{').and_then(|start| {
            let end = start + rest[start..].find('}')?;
            HOLES
                .contains(&&rest[start + 1..end])
                .then_some((start, end))
        });
        match hole {
            Some((start, end)) => {
                if start > 0 {
                    tokens.push(Token::Literal(&rest[..start]));
                }
                tokens.push(Token::Hole(&rest[start + 1..end]));
                rest = &rest[end + 1..];
            }
            None => {
                // A '{' that opens no hole is literal (JSON, jsonpath): skip past it.
                let next = rest[1..].find('{').map_or(rest.len(), |i| i + 1);
                tokens.push(Token::Literal(&rest[..next]));
                rest = &rest[next..];
            }
        }
    }
    tokens
}

fn match_from(tokens: &[Token<'_>], text: &str) -> bool {
    match tokens.first() {
        None => text.is_empty(),
        Some(Token::Literal(lit)) => text
            .strip_prefix(lit)
            .is_some_and(|rest| match_from(&tokens[1..], rest)),
        Some(Token::Hole(kind)) => {
            let ends = text
                .char_indices()
                .map(|(i, _)| i)
                .skip(1)
                .chain([text.len()]);
            let empty_ok = *kind == "any";
            (empty_ok && match_from(&tokens[1..], text))
                || ends.into_iter().any(|end| {
                    hole_fits(kind, &text[..end]) && match_from(&tokens[1..], &text[end..])
                })
        }
    }
}

fn hole_fits(kind: &str, s: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match kind {
        "any" => !s.contains('\n'),
        "int" => digits(s),
        "age" => is_age(s),
        "uid" => {
            s.len() == 36
                && s.char_indices().all(|(i, c)| {
                    if [8, 13, 18, 23].contains(&i) {
                        c == '-'
                    } else {
                        c.is_ascii_hexdigit()
                    }
                })
        }
        "ts" => {
            let b = s.as_bytes();
            s.len() == 20
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T'
                && b[13] == b':'
                && b[16] == b':'
                && b[19] == b'Z'
                && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
                    .into_iter()
                    .all(|r| digits(&s[r]))
        }
        "ip" => {
            let parts: Vec<&str> = s.split('.').collect();
            parts.len() == 4
                && parts
                    .iter()
                    .all(|p| digits(p) && p.len() <= 3 && p.parse::<u16>().is_ok_and(|n| n < 256))
        }
        "nodeport" => digits(s) && s.parse::<u32>().is_ok_and(|p| (30000..=32767).contains(&p)),
        "b64" => {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        }
        _ => false,
    }
}

/// kubectl's human durations: `0s`, `59s`, `2m3s`, `10m`, `3h4m`, `2d3h`, `5y`.
fn is_age(s: &str) -> bool {
    let mut saw_unit = false;
    let mut digits = 0;
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits += 1;
        } else if "smhdy".contains(c) && digits > 0 {
            digits = 0;
            saw_unit = true;
        } else {
            return false;
        }
    }
    saw_unit && digits == 0
}

/// Each line trimmed, with every run of blanks (spaces, tabs) made one space.
pub fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `text` has exactly as many lines as `patterns` and each matches,
/// after [`normalize`] on both sides.
#[track_caller]
pub fn assert_lines(text: &str, patterns: &[&str]) {
    let got = normalize(text);
    let got: Vec<&str> = got.lines().collect();
    let want: Vec<String> = patterns.iter().map(|p| normalize(p)).collect();
    let ok = got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| matches(w, g));
    assert!(
        ok,
        "output does not match\n--- want\n{}\n--- got\n{}\n---",
        want.join("\n"),
        text
    );
}

/// Splits a kubectl table into cells. Columns are separated by at least two spaces
/// (kubectl pads with three); single spaces stay inside a cell (`*/5 * * * *`).
pub fn table(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim_end()
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// The header cells of a kubectl table.
pub fn header(text: &str) -> Vec<String> {
    table(text).into_iter().next().unwrap_or_default()
}

/// Asserts that `text` is a table with exactly `header` and `rows`, in order;
/// row cells are patterns.
#[track_caller]
pub fn assert_table(text: &str, header: &[&str], rows: &[&[&str]]) {
    let got = table(text);
    let fail = |why: &str| -> ! {
        let want: Vec<String> = std::iter::once(header.join("   "))
            .chain(rows.iter().map(|r| r.join("   ")))
            .collect();
        panic!(
            "table {why}\n--- want\n{}\n--- got\n{text}---",
            want.join("\n")
        )
    };
    let Some((got_header, got_rows)) = got.split_first() else {
        fail("is empty")
    };
    if got_header != header {
        fail("header differs");
    }
    if got_rows.len() != rows.len() {
        fail("has a different number of rows");
    }
    for (g, w) in got_rows.iter().zip(rows) {
        if g.len() != w.len() || !g.iter().zip(w.iter()).all(|(g, w)| matches(w, g)) {
            fail(&format!("row {g:?} does not match {w:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes() {
        assert!(matches("x   {age}", "x   0s"));
        assert!(matches("{age}", "2m3s"));
        assert!(!matches("{age}", "2m3"));
        assert!(!matches("{age}", "<invalid>"));
        assert!(matches(
            "uid: {uid}",
            "uid: 0f8fad5b-d9cb-469f-a165-70867728950e"
        ));
        assert!(matches("{ts}", "2024-01-02T03:04:05Z"));
        assert!(matches("10.0.0.{int}", "10.0.0.17"));
        assert!(matches("{ip}", "10.0.0.17"));
        assert!(!matches("{ip}", "10.0.0.256"));
        assert!(matches("80:{nodeport}/TCP", "80:30123/TCP"));
        assert!(!matches("80:{nodeport}/TCP", "80:8080/TCP"));
        assert!(matches("a{any}b", "ab"));
        assert!(matches("{\"a\":{int}}", "{\"a\":12}"));
        assert!(matches(
            "resourceVersion: \"{int}\"",
            "resourceVersion: \"42\""
        ));
    }

    #[test]
    fn tables() {
        let out = "NAME   SCHEDULE      SUSPEND\ncj     */5 * * * *   False\n";
        assert_eq!(table(out)[1], vec!["cj", "*/5 * * * *", "False"]);
        assert_table(
            out,
            &["NAME", "SCHEDULE", "SUSPEND"],
            &[&["cj", "*/5 * * * *", "False"]],
        );
    }

    #[test]
    fn lines() {
        assert_lines(
            "Name:         x\nLabels:\t<none>\n",
            &["Name: x", "Labels: <none>"],
        );
    }
}

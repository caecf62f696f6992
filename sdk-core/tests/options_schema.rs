//! The options schema is generated from `edrlink_core::options::OPTIONS` into
//! `tests/options-schema.json` (read by every binding's suite to check its
//! option names and defaults) and `docs/OPTIONS.md` (the one place a default
//! is documented). Regenerate with `EDRLINK_REGEN_VECTORS=1`.

use edrlink_core::options::{schema_json, Scope, OPTIONS};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for ch in s.chars() {
        if ch == '_' {
            up = true;
        } else if up {
            out.extend(ch.to_uppercase());
            up = false;
        } else {
            out.push(ch);
        }
    }
    out
}

fn markdown() -> String {
    let mut t = String::from(
        "# Client options\n\n\
         <!-- generated from sdk-core/src/options.rs by sdk-core/tests/options_schema.rs: \
         EDRLINK_REGEN_VECTORS=1 cargo test -p edrlink-core --test options_schema -->\n\n\
         One schema for every language: the names below are the Rust, C and Python \
         names; Kotlin, Swift and JS use the camelCase form. Defaults and limits are \
         defined once, in the core; a binding passes values through and reports the \
         core's `invalid_argument` naming the option. The machine-readable form is \
         `tests/options-schema.json`.\n\n\
         | option | camelCase | type | default | limits | read by | meaning |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for s in OPTIONS {
        let limits = match (s.min, s.max) {
            (Some(a), Some(b)) => format!("{a}..={b}"),
            _ => String::new(),
        };
        let scope = match s.scope {
            Scope::Client => "client (all platforms)",
            Scope::Driver => "driver (agent, JS client)",
            Scope::Native => "native agent (C, Python, Kotlin, Swift, Rust)",
            Scope::Transport => "built-in native transport",
        };
        t.push_str(&format!(
            "| `{}` | `{}` | {} | `{}` | {} | {} | {} |\n",
            s.name,
            camel(s.name),
            s.kind,
            s.default,
            limits,
            scope,
            s.doc.replace('|', "\\|")
        ));
    }
    t
}

#[test]
fn options_schema_and_doc_are_generated_from_the_core() {
    let regen = std::env::var("EDRLINK_REGEN_VECTORS").is_ok_and(|v| v == "1");
    for (path, fresh) in [
        (
            root().join("tests/options-schema.json"),
            schema_json() + "\n",
        ),
        (root().join("docs/OPTIONS.md"), markdown()),
    ] {
        if regen {
            std::fs::write(&path, &fresh).unwrap();
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("{}: {e} (run with EDRLINK_REGEN_VECTORS=1)", path.display())
        });
        assert_eq!(
            stored,
            fresh,
            "{} is stale: regenerate with EDRLINK_REGEN_VECTORS=1",
            path.display()
        );
    }
}

/// The prose docs that talk about limits. Client defaults are documented once,
/// in the generated docs/OPTIONS.md; these may name an option and point there,
/// and a number they give for it must be the schema's default.
const PROSE_DOCS: &[&str] = &["README.md", "docs/RELIABILITY.md", "docs/PROTOCOL.md"];

/// Reads an integer with optional digit grouping (`100 000`, `100,000`,
/// `100_000`) at the start of `s`; returns it and the rest of `s`.
fn leading_number(s: &str) -> Option<(u64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut digits: String = s[..i].to_owned();
    // A group separator followed by exactly three digits continues the number.
    loop {
        let rest = &s[i..];
        let sep = [" ", ",", "_", "\u{202f}", "\u{a0}"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        let Some(sep) = sep else { break };
        let after = &rest[sep.len()..];
        let n = after.bytes().take_while(u8::is_ascii_digit).count();
        if n != 3 {
            break;
        }
        digits.push_str(&after[..3]);
        i += sep.len() + 3;
    }
    Some((digits.parse().ok()?, &s[i..]))
}

/// The multiplier of a unit word at the start of `s` (seconds, bytes), 1 if none.
fn unit(s: &str) -> u64 {
    let w: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect();
    match w.as_str() {
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        "KiB" => 1024,
        "MiB" => 1024 * 1024,
        "GiB" => 1024 * 1024 * 1024,
        _ => 1,
    }
}

/// Every place in `text` where an integer option (by its name, or its name
/// without `_secs`) is followed, in the same clause, by a default — "(default
/// N unit)", "default N", "(N unit)" or "= N" — that differs from the
/// schema's. Returns `(option, line, stated value, schema default)`.
fn default_drift(text: &str) -> Vec<(&'static str, usize, u64, u64)> {
    let mut found = Vec::new();
    for spec in OPTIONS.iter().filter(|s| s.kind == "integer") {
        let want: u64 = spec.default.parse().expect("integer default");
        let mut names = vec![spec.name];
        if let Some(short) = spec.name.strip_suffix("_secs") {
            names.push(short);
        }
        for name in names {
            for (at, _) in text.match_indices(name) {
                let before = text[..at].chars().next_back();
                let tail = &text[at + name.len()..];
                let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
                if before.is_some_and(is_word) || tail.chars().next().is_some_and(is_word) {
                    continue; // part of a longer name
                }
                // The clause after the name: up to a sentence, cell or line
                // end; in a table whose cell holds only the name, the next cell.
                let clause = clause_after(tail);
                let clause = if clause.trim_matches(['`', ' ']).is_empty()
                    && tail[clause.len()..].starts_with('|')
                {
                    clause_after(&tail[clause.len() + 1..])
                } else {
                    clause
                };
                let stated = if let Some(p) = clause.find("default") {
                    let rest =
                        clause[p + "default".len()..].trim_start_matches([' ', ':', '=', '*']);
                    leading_number(rest)
                } else {
                    let rest = clause.trim_start_matches(['`', ' ', ',']);
                    rest.strip_prefix('(')
                        .or_else(|| rest.strip_prefix("= "))
                        .and_then(|r| leading_number(r.trim_start()))
                };
                if let Some((n, rest)) = stated {
                    let value = n.saturating_mul(unit(rest));
                    if value != want {
                        let line = text[..at].matches('\n').count() + 1;
                        found.push((spec.name, line, value, want));
                    }
                }
            }
        }
    }
    found
}

/// The text up to the next sentence, table cell or line end (at most 80 bytes).
fn clause_after(tail: &str) -> &str {
    let end = tail
        .find(['.', '|', ';', '\n'])
        .unwrap_or(tail.len())
        .min(80);
    &tail[..tail.floor_char_boundary_compat(end)]
}

/// `str::floor_char_boundary` for stable Rust.
trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}
impl FloorBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[test]
fn prose_docs_state_no_default_that_differs_from_the_schema() {
    let mut drift = Vec::new();
    for doc in PROSE_DOCS {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for (name, line, stated, want) in default_drift(&text) {
            drift.push(format!(
                "{doc}:{line}: `{name}` stated as {stated}, the schema's default is {want}"
            ));
        }
    }
    assert!(
        drift.is_empty(),
        "defaults drifted from sdk-core/src/options.rs (point at docs/OPTIONS.md instead):\n{}",
        drift.join("\n")
    );
}

#[test]
fn the_drift_scan_catches_a_wrong_default_and_accepts_the_right_one() {
    // Wrong: the queue bound, the op timeout and the backoff cap, in the
    // phrasings the docs use.
    let bad = "Bounds: `max_queue_events` (default 1 000 000).\n\
               | `op_timeout_secs` | default 15 s |\n\
               capped at `max_backoff`, default 10 min;\n\
               re-handshakes every `blocked_recheck` (60 s).";
    let found: Vec<_> = default_drift(bad).into_iter().map(|f| f.0).collect();
    assert_eq!(
        found,
        [
            "max_queue_events",
            "blocked_recheck_secs",
            "max_backoff_secs",
            "op_timeout_secs"
        ]
    );
    // Right (units converted), a limit range and a longer name are not defaults.
    let good = "`max_queue_events` (default 100 000); `max_backoff`, default 5 min;\n\
                `max_queue_age_secs` (default 7 days); `max_queue_bytes` = 104857600;\n\
                `max_batch_delay_secs` 0..=86400; `max_batch_events` (default 1000).";
    assert_eq!(default_drift(good), vec![]);
}

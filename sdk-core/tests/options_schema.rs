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

//! `parse` never panics: random text and mutated copies of the shipped models either load or
//! give a located, one-line error.

use proptest::prelude::*;
use tcpsim::scenario::parse;

const MODELS: &[&str] = &[
    include_str!("../models/default.toml"),
    include_str!("../models/lossy-partition.toml"),
    include_str!("../models/peer-resets.toml"),
    include_str!("../models/nat-idle-keepalive.toml"),
    include_str!("../models/listen-backlog-overflow-reset.toml"),
    include_str!("../models/listen-backlog-overflow.toml"),
];

/// Fragments that are likely to hit the loader's edge cases.
const TOKENS: &[&str] = &[
    "\"5xs\"",
    "\"-1ms\"",
    "-1",
    "nan",
    "inf",
    "1e400",
    "18446744073709551616",
    "\"\"",
    "[[script]]\n",
    "[[app]]\n",
    "[[host]]\n",
    "[host.sysctl]\n",
    "op = \"send\"\n",
    "kind = \"client\"\n",
    "sock = \"x\"\n",
    "= ",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "#",
    "é",
    "\u{0}",
    "\"10.0.0.999\"",
    "[1, 0]",
    "{ a = 1 }",
    "\"h:0\"",
    "true",
    "1979-05-27T07:32:00Z",
    "'''",
    "\\",
];

/// Checks what `parse` returned for `text`: an error must name the file and a place inside it.
fn check(text: &str) -> Result<(), TestCaseError> {
    if let Err(e) = parse(text, "fuzz.toml") {
        prop_assert_eq!(e.file(), "fuzz.toml");
        let line = e.line().expect("a parse error has a position");
        prop_assert!(
            line >= 1 && line <= text.lines().count() + 1,
            "line {} of {}",
            line,
            text.lines().count()
        );
        prop_assert!(e.column().unwrap() >= 1);
        prop_assert!(!e.message().is_empty());
        prop_assert!(!e.to_string().contains('\n'), "one line: {:?}", e.to_string());
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Edit {
    Delete { at: f64, len: usize },
    Insert { at: f64, token: usize },
    DuplicateLine { at: f64 },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, 1usize..20).prop_map(|(at, len)| Edit::Delete { at, len }),
        (0.0..1.0f64, 0..TOKENS.len()).prop_map(|(at, token)| Edit::Insert { at, token }),
        (0.0..1.0f64).prop_map(|at| Edit::DuplicateLine { at }),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let pos = |at: f64, n: usize| ((at * n as f64) as usize).min(n);
        match e {
            Edit::Delete { at, len } => {
                let start = pos(*at, chars.len());
                let end = (start + len).min(chars.len());
                chars.drain(start..end);
            }
            Edit::Insert { at, token } => {
                let p = pos(*at, chars.len());
                chars.splice(p..p, TOKENS[*token].chars());
            }
            Edit::DuplicateLine { at } => {
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = pos(*at, lines.len() - 1);
                let mut out: Vec<&str> = lines[..=i].to_vec();
                out.extend(&lines[i..]);
                chars = out.join("\n").chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    // A fixed seed keeps the run repeatable; raise PROPTEST_CASES to explore further.
    #![proptest_config(ProptestConfig {
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7c9_5ce7),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_text_never_panics(text in "[\\[\\]a-z_=\" 0-9.\n{},#:-]{0,300}") {
        check(&text)?;
    }

    #[test]
    fn mutated_models_never_panic(model in 0..MODELS.len(), edits in prop::collection::vec(edit(), 1..6)) {
        let text = apply(MODELS[model], &edits);
        check(&text)?;
    }
}

#[test]
fn the_unmutated_models_parse() {
    for text in MODELS {
        parse(text, "model.toml").unwrap_or_else(|e| panic!("{e}"));
    }
}

//! Reading a scenario file: TOML syntax, then the types, then [`validate`], each error located
//! by file, line, column and field path.
//!
//! The document is parsed once into toml's spanned tree ([`DeTable`]), which both feeds serde and
//! maps field paths to positions and back:
//! - a type error carries a byte span; `Doc::path_at` finds the field there;
//! - a semantic error carries a field path; `Doc::span_of` finds its position.
//!
//! One wrinkle: script steps and apps are internally tagged enums (`op = "send"`), which serde
//! buffers before choosing the variant, so an error inside one carries only the span of the
//! whole `[[script]]` array. `Doc::refine` narrows it to the step and then the field by
//! re-deserializing one element, then one field, at a time and seeing which reproduces the error.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};
use toml::Spanned;

use super::error::{ErrorKind, FieldPath, Invalid, Part, ScenarioError, Seg};
use super::types::Scenario;
use super::validate::validate;

/// Reads, parses and validates the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioError::new(ErrorKind::Io, &file, None, None, format!("cannot read scenario: {e}"))
    })?;
    parse(&text, &file)
}

/// Parses and validates scenario `text`; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Scenario, ScenarioError> {
    let root = DeTable::parse(text).map_err(|e| {
        let pos = e.span().map(|s| position(text, s.start));
        ScenarioError::new(ErrorKind::Syntax, file, pos, None, e.message())
    })?;
    let doc = Doc { text, file, root };
    let scenario =
        Scenario::deserialize(Deserializer::from(doc.root.clone())).map_err(|e| doc.type_error(&e))?;
    validate(&scenario).map_err(|inv| doc.invalid(&inv))?;
    Ok(scenario)
}

/// Where the default scenario lives in the repository (and how its errors name it).
pub const DEFAULT_SCENARIO_PATH: &str = "models/default.toml";

/// The default scenario (`models/default.toml`), compiled in so that `tcpsim run` works from
/// any directory.
pub fn default_scenario() -> Result<Scenario, ScenarioError> {
    parse(include_str!("../../models/default.toml"), DEFAULT_SCENARIO_PATH)
}

/// Keys that select the variant of a tagged enum: kept in every probe so the variant is known.
const TAG_KEYS: [&str; 2] = ["op", "kind"];

/// A parsed document and where it came from.
struct Doc<'i> {
    text: &'i str,
    file: &'i str,
    root: Spanned<DeTable<'i>>,
}

impl<'i> Doc<'i> {
    fn error(&self, kind: ErrorKind, span: Range<usize>, path: &FieldPath, message: &str) -> ScenarioError {
        let field = (!path.is_root()).then(|| path.to_string());
        ScenarioError::new(kind, self.file, Some(position(self.text, span.start)), field, message)
    }

    /// A semantic error: its field found in the text.
    fn invalid(&self, inv: &Invalid) -> ScenarioError {
        self.error(ErrorKind::Invalid, self.span_of(&inv.path, inv.part), &inv.path, &inv.message)
    }

    /// A deserialization error: the field found from the error's span, narrowed where serde lost it.
    fn type_error(&self, e: &toml::de::Error) -> ScenarioError {
        let message = e.message();
        let span = e.span().unwrap_or(0..0);
        let located = self.path_at(&span);
        let mut path = self.refine(located.clone(), message);
        if let Some(name) = missing_field(message) {
            path = path.key(name);
        }
        let part = part_of(message, &path);
        let span = if path == located { span } else { self.span_of(&path, part) };
        self.error(ErrorKind::Type, span, &path, &reword(message))
    }

    /// The position of the key or value at `path`, or of the nearest enclosing value that
    /// exists (a missing field is reported at its table). Every located error goes through here.
    fn span_of(&self, path: &FieldPath, part: Part) -> Range<usize> {
        let mut span = self.root.span();
        let mut node: Option<&DeValue<'i>> = None;
        let mut table = Some(self.root.get_ref());
        for seg in &path.0 {
            let (key_span, child) = match (seg, table, node) {
                (Seg::Key(k), Some(t), _) => match t.get_key_value(k.as_str()) {
                    Some((key, value)) => (Some(key.span()), value),
                    None => break,
                },
                (Seg::Index(i), _, Some(DeValue::Array(a))) => match a.get(*i) {
                    Some(value) => (None, value),
                    None => break,
                },
                _ => break,
            };
            span = match (part, key_span) {
                (Part::Key, Some(k)) => k,
                _ => child.span(),
            };
            node = Some(child.get_ref());
            table = child.get_ref().as_table();
        }
        span
    }

    /// The field whose key or value is the smallest that contains `span` (the deepest on a tie:
    /// an array-of-tables element shares its header's span with the array).
    fn path_at(&self, span: &Range<usize>) -> FieldPath {
        let mut best: Option<(usize, FieldPath)> = None;
        let mut consider = |path: &FieldPath, s: Range<usize>| {
            if s.start <= span.start && span.end <= s.end {
                let len = s.end - s.start;
                if best.as_ref().is_none_or(|(l, _)| len <= *l) {
                    best = Some((len, path.clone()));
                }
            }
        };
        walk_table(self.root.get_ref(), &FieldPath::root(), &mut consider);
        best.map(|(_, p)| p).unwrap_or_default()
    }

    /// Narrows `path`, which serde reported as a whole, to the part of it that reproduces
    /// `message` on its own, descending while that part is a table or an array.
    ///
    /// Errors inside an internally tagged enum carry the span of the enclosing *array* (which
    /// starts at its first element), so an array element is first widened to its array and the
    /// element found again. A child is the culprit when keeping only it reproduces the error
    /// and keeping none of the children does not (else the node itself is wrong, e.g. a table
    /// where a string belongs). A missing field is a property of its table, so the search
    /// stops at tables for those and the caller appends the field.
    fn refine(&self, mut path: FieldPath, message: &str) -> FieldPath {
        if matches!(path.0.last(), Some(Seg::Index(_))) {
            path.0.pop();
        }
        let keys_too = missing_field(message).is_none();
        while let Some(node) = self.value_at(&path) {
            let children: Vec<Seg> = match node {
                DeValue::Table(t) if keys_too => {
                    t.iter().map(|(k, _)| Seg::Key(k.get_ref().to_string())).collect()
                }
                DeValue::Array(a) => (0..a.len()).map(Seg::Index).collect(),
                _ => break,
            };
            if self.probe(&path, None).as_deref() == Some(message) {
                break;
            }
            let found =
                children.into_iter().find(|seg| self.probe(&path, Some(seg)).as_deref() == Some(message));
            match found {
                Some(seg) => path.0.push(seg),
                None => break,
            }
        }
        path
    }

    fn value_at(&self, path: &FieldPath) -> Option<&DeValue<'i>> {
        let mut node: &DeValue<'i> = match path.0.first() {
            Some(Seg::Key(k)) => self.root.get_ref().get(k.as_str())?.get_ref(),
            _ => return None,
        };
        for seg in &path.0[1..] {
            node = match (seg, node) {
                (Seg::Key(k), DeValue::Table(t)) => t.get(k.as_str())?.get_ref(),
                (Seg::Index(i), DeValue::Array(a)) => a.get(*i)?.get_ref(),
                _ => return None,
            };
        }
        Some(node)
    }

    /// The error (if any) of a minimal scenario holding only what lies along `path`, and of the
    /// node there only `child` (or no child at all), plus the variant tags on the way and a
    /// valid `name` and `duration`.
    fn probe(&self, path: &FieldPath, child: Option<&Seg>) -> Option<String> {
        let mut along = path.0.clone();
        along.extend(child.cloned());
        let leaf = if child.is_some() { Leaf::Whole } else { Leaf::Emptied };
        let mut root = prune_table(self.root.get_ref(), &along, leaf);
        for (key, value) in [("name", "probe"), ("duration", "1s")] {
            if along.first() != Some(&Seg::Key(key.to_string())) {
                root.insert(
                    Spanned::new(0..0, key.into()),
                    Spanned::new(0..0, DeValue::String(value.into())),
                );
            }
        }
        Scenario::deserialize(Deserializer::from(Spanned::new(0..0, root)))
            .err()
            .map(|e| e.message().to_string())
    }
}

/// What [`prune`] keeps at the end of its path.
#[derive(Copy, Clone)]
enum Leaf {
    Whole,
    /// Only the tag keys of a table; nothing of an array.
    Emptied,
}

/// `value` keeping only what lies along `rest`, and the tag keys of the tables on the way.
fn prune<'i>(value: &DeValue<'i>, rest: &[Seg], leaf: Leaf) -> DeValue<'i> {
    match (rest.first(), value, leaf) {
        (_, DeValue::Table(t), _) if !rest.is_empty() || matches!(leaf, Leaf::Emptied) => {
            DeValue::Table(prune_table(t, rest, leaf))
        }
        (Some(Seg::Index(i)), DeValue::Array(a), _) => {
            let mut out = DeArray::new();
            if let Some(v) = a.get(*i) {
                out.push(Spanned::new(v.span(), prune(v.get_ref(), &rest[1..], leaf)));
            }
            DeValue::Array(out)
        }
        (None, DeValue::Array(_), Leaf::Emptied) => DeValue::Array(DeArray::new()),
        _ => value.clone(),
    }
}

/// A table keeping its tag keys and, if `rest` starts with one of its keys, that key pruned.
fn prune_table<'i>(t: &DeTable<'i>, rest: &[Seg], leaf: Leaf) -> DeTable<'i> {
    let mut out = DeTable::new();
    for (key, v) in t.iter().filter(|(k, _)| TAG_KEYS.contains(&k.get_ref().as_ref())) {
        out.insert(key.clone(), v.clone());
    }
    if let Some(Seg::Key(k)) = rest.first() {
        if let Some((key, v)) = t.get_key_value(k.as_str()) {
            out.insert(key.clone(), Spanned::new(v.span(), prune(v.get_ref(), &rest[1..], leaf)));
        }
    }
    out
}

/// Visits every key and value of `table` with its path and span.
fn walk_table(table: &DeTable<'_>, path: &FieldPath, f: &mut impl FnMut(&FieldPath, Range<usize>)) {
    for (key, value) in table.iter() {
        let p = path.key(key.get_ref());
        f(&p, key.span());
        walk_value(value, &p, f);
    }
}

fn walk_value(value: &Spanned<DeValue<'_>>, path: &FieldPath, f: &mut impl FnMut(&FieldPath, Range<usize>)) {
    f(path, value.span());
    match value.get_ref() {
        DeValue::Table(t) => walk_table(t, path, f),
        DeValue::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk_value(v, &path.index(i), f);
            }
        }
        _ => {}
    }
}

/// Whether serde's message is about the key at `path` (an unknown field, or a map key that is
/// not a variant of its enum, as in `sockopts = { TCP_KEEPALIVE = 5 }`) or about its value.
fn part_of(message: &str, path: &FieldPath) -> Part {
    let bad_key = match path.0.last() {
        Some(Seg::Key(k)) => message.starts_with(&format!("unknown variant `{k}`")),
        _ => false,
    };
    if bad_key || message.starts_with("unknown field") {
        Part::Key
    } else {
        Part::Value
    }
}

/// serde's "missing field `x`" names the field; the error's span is its table.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// serde's message for an untagged enum says nothing of what was expected; say it.
fn reword(message: &str) -> String {
    match message {
        "data did not match any variant of untagged enum OptValue" => {
            "expected an integer, or [l_onoff, l_linger] for SO_LINGER".to_string()
        }
        _ => message.to_string(),
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let t = "ab\nçd = 1\n";
        assert_eq!(position(t, 0), (1, 1));
        assert_eq!(position(t, 3), (2, 1));
        assert_eq!(position(t, 5), (2, 2)); // after the two-byte ç
        assert_eq!(position(t, 4), (2, 1)); // inside ç: its start
        assert_eq!(position(t, 99), (3, 1));
    }

    #[test]
    fn missing_field_names_the_field() {
        assert_eq!(missing_field("missing field `b`"), Some("b"));
        assert_eq!(missing_field("unknown field `b`"), None);
    }
}

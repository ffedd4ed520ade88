//! Errors in scenario files, located by file, line, column and field path.
//!
//! A scenario error is always the user's to fix, so it says where: `FILE:LINE:COL: FIELD: message`,
//! the form compilers use, which editors and terminals turn into links. The CLI exits 2 on it.

use std::fmt;

/// One step of a path into a scenario document, spelled as in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits in a scenario document: `link[0].delay`, `host[1].sysctl.tcp_sack`.
///
/// Array-of-tables keys are spelled as in the file (`host`, `link`, `fault`, `app`, `middlebox`,
/// `script`), not as the Rust fields (`hosts`, …), so the path can be found in the text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// This path extended by a table key.
    pub fn key(&self, k: &str) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Key(k.to_string()));
        p
    }

    /// This path extended by an array index.
    pub fn index(&self, i: usize) -> FieldPath {
        let mut p = self.clone();
        p.0.push(Seg::Index(i));
        p
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if n == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Which part of a `key = value` pair an error points at.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// The key itself is wrong (an unknown field or sysctl).
    Key,
    /// The value is wrong.
    Value,
}

/// A semantic error found by [`validate()`](crate::scenario::validate::validate): a field and what is wrong with it.
/// [`load()`](crate::scenario::load::load) turns it into a [`ScenarioError`] by finding the field in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub path: FieldPath,
    pub part: Part,
    pub message: String,
}

impl Invalid {
    /// The value at `path` is wrong.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Invalid {
        Invalid { path, part: Part::Value, message: message.into() }
    }

    /// The key at `path` is wrong (reported at the key, not its value).
    pub fn key(path: FieldPath, message: impl Into<String>) -> Invalid {
        Invalid { path, part: Part::Key, message: message.into() }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Which stage rejected the scenario.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read.
    Io,
    /// Not TOML.
    Syntax,
    /// TOML, but not a scenario: unknown field, wrong type, bad duration, missing field.
    Type,
    /// A scenario that cannot be run: unknown host, fault on a missing link, ….
    Invalid,
}

/// A scenario file that cannot be used, and where the problem is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    kind: ErrorKind,
    file: String,
    /// 1-based line and column (in characters); absent when the file could not be read.
    pos: Option<(usize, usize)>,
    field: Option<String>,
    message: String,
}

impl ScenarioError {
    pub(crate) fn new(
        kind: ErrorKind,
        file: &str,
        pos: Option<(usize, usize)>,
        field: Option<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        ScenarioError {
            kind,
            file: file.to_string(),
            pos,
            field: field.map(|f| one_line(&f)),
            message: one_line(&message.into()),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn file(&self) -> &str {
        &self.file
    }
    /// 1-based line of the offending text.
    pub fn line(&self) -> Option<usize> {
        self.pos.map(|(l, _)| l)
    }
    /// 1-based column, in characters.
    pub fn column(&self) -> Option<usize> {
        self.pos.map(|(_, c)| c)
    }
    /// The field path (`link[0].delay`); absent for syntax errors and unreadable files.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Escapes control characters (a value quoted in a message may hold a newline) so that an
/// error is always one line, as tools that parse `FILE:LINE:COL:` expect.
fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c.is_control() {
            true => out.extend(c.escape_default()),
            false => out.push(c),
        }
    }
    out
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_errors_display_as_in_the_file() {
        let p = FieldPath::root().key("link").index(0).key("a_to_b").key("loss");
        assert_eq!(p.to_string(), "link[0].a_to_b.loss");
        let e = ScenarioError::new(ErrorKind::Invalid, "m.toml", Some((12, 9)), Some(p.to_string()), "bad");
        assert_eq!(e.to_string(), "m.toml:12:9: link[0].a_to_b.loss: bad");
        let e = ScenarioError::new(ErrorKind::Io, "m.toml", None, None, "cannot read: gone");
        assert_eq!(e.to_string(), "m.toml: cannot read: gone");
        let e = ScenarioError::new(ErrorKind::Type, "m.toml", Some((1, 1)), Some("a\nb".into()), "`x\ny`");
        assert_eq!(e.to_string(), "m.toml:1:1: a\\nb: `x\\ny`");
    }
}

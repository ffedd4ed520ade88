//! The `%{ … }%` blocks: packetdrill hands them to Python with the socket's `tcp_info`
//! fields bound as `tcpi_*` names. The scripts only ever `assert` comparisons over those
//! fields and integer constants, and name constants for later blocks (`X = 0x7fffffff`: one
//! Python process runs a script's blocks in order, so a name bound in one is seen by the
//! next), so this is a small evaluator for exactly that: `assert` statements of chained
//! comparisons, `and`/`or`/`not`, arithmetic and parentheses, `name = expression` (and
//! `+=`, `-=`), and `print(…)`, which decides nothing.
//! Anything else (imports, calls) is reported as unsupported rather than guessed at.

use std::collections::BTreeMap;

/// Why a block did not pass.
#[derive(Clone, Debug, PartialEq)]
pub enum CodeError {
    /// An assertion was false: the statement, and the values of the names it used.
    Failed(String),
    /// Something the evaluator does not run (a statement, a name the model does not keep).
    Unsupported(String),
}

/// The names a script's blocks bound, seen by the blocks after.
pub type Globals = BTreeMap<String, f64>;

/// Runs every statement of `block` against `globals` and the values `lookup` gives for
/// other names; an assignment binds a name in `globals`.
pub fn run_block(block: &str, lookup: &dyn Fn(&str) -> Option<f64>, globals: &mut Globals) -> Result<(), CodeError> {
    for stmt in statements(block) {
        let lookup = |n: &str| globals.get(n).copied().or_else(|| lookup(n));
        if let Some((name, op, expr)) = assignment(&stmt) {
            let v = eval(expr, &lookup)?;
            let old = || lookup(name).ok_or_else(|| CodeError::Unsupported(format!("`{name}` (not bound before `{stmt}`)")));
            let v = match op {
                Assign::Set => v,
                Assign::Add => old()? + v,
                Assign::Sub => old()? - v,
            };
            globals.insert(name.to_string(), v);
            continue;
        }
        // print() writes to packetdrill's output; it decides nothing.
        if stmt.starts_with("print(") && stmt.ends_with(')') {
            continue;
        }
        let Some(rest) = stmt.strip_prefix("assert ") else {
            return Err(CodeError::Unsupported(format!("python statement `{stmt}`")));
        };
        // `assert cond, message`: the message is only for the failure report.
        let cond = split_top_level_comma(rest);
        let toks = lex(cond).map_err(CodeError::Unsupported)?;
        let mut p = Eval { t: &toks, i: 0, lookup: &lookup, used: Vec::new() };
        let v = p.or_expr()?;
        if p.i != toks.len() {
            return Err(CodeError::Unsupported(format!("python expression `{cond}`")));
        }
        if v == 0.0 {
            let vals: Vec<String> = p.used.iter().map(|(n, v)| format!("{n} = {v}")).collect();
            return Err(CodeError::Failed(format!("assert {} failed ({})", cond.trim(), vals.join(", "))));
        }
    }
    Ok(())
}

/// What an assignment does with its name's value.
enum Assign {
    Set,
    Add,
    Sub,
}

/// `name = expression`, `name += expression` or `name -= expression` (a plain `=`, not a
/// comparison): the name, the operation and the expression.
fn assignment(stmt: &str) -> Option<(&str, Assign, &str)> {
    let (lhs, expr) = stmt.split_once('=')?;
    let (name, op) = match lhs.trim_end() {
        l if l.ends_with('+') => (&l[..l.len() - 1], Assign::Add),
        l if l.ends_with('-') => (&l[..l.len() - 1], Assign::Sub),
        l => (l, Assign::Set),
    };
    let name = name.trim();
    let is_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (is_name && !expr.starts_with('=')).then_some((name, op, expr))
}

/// The value of a whole expression.
fn eval(expr: &str, lookup: &dyn Fn(&str) -> Option<f64>) -> Result<f64, CodeError> {
    let toks = lex(expr).map_err(CodeError::Unsupported)?;
    let mut p = Eval { t: &toks, i: 0, lookup, used: Vec::new() };
    let v = p.or_expr()?;
    if p.i != toks.len() {
        return Err(CodeError::Unsupported(format!("python expression `{expr}`")));
    }
    Ok(v)
}

/// The value of an arithmetic expression with no names (the shell's `$((…))`).
pub fn eval_arith(expr: &str) -> Option<f64> {
    let toks = lex(expr).ok()?;
    let none = |_: &str| None;
    let mut p = Eval { t: &toks, i: 0, lookup: &none, used: Vec::new() };
    let v = p.arith().ok()?;
    (p.i == toks.len()).then_some(v)
}

/// Statements: lines and `;`-separated parts, with `\` continuations joined and `#`
/// comments dropped.
fn statements(block: &str) -> Vec<String> {
    let joined = block.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let code = line.split('#').next().unwrap_or("");
        for part in code.split(';') {
            let s = part.split_whitespace().collect::<Vec<_>>().join(" ");
            if !s.is_empty() {
                out.push(s);
            }
        }
    }
    out
}

/// The text before the first comma outside parentheses and quotes.
fn split_top_level_comma(s: &str) -> &str {
    let mut depth = 0i32;
    let mut quote = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => return &s[..i],
            _ => {}
        }
    }
    s
}

#[derive(Clone, Debug, PartialEq)]
enum T {
    Num(f64),
    Name(String),
    Op(&'static str),
}

const OPS: [&str; 16] = ["<=", ">=", "==", "!=", "//", "<", ">", "+", "-", "*", "/", "%", "(", ")", "&", "|"];

fn lex(s: &str) -> Result<Vec<T>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            let hex = c == b'0' && b.get(i + 1).is_some_and(|x| *x == b'x' || *x == b'X');
            i += if hex { 2 } else { 0 };
            while i < b.len() && (b[i].is_ascii_hexdigit() || b[i] == b'.') {
                i += 1;
            }
            let text = &s[start..i];
            let v = if hex { i64::from_str_radix(&text[2..], 16).map(|v| v as f64).ok() } else { text.parse().ok() };
            out.push(T::Num(v.ok_or(format!("python number `{text}`"))?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            out.push(T::Name(s[start..i].to_string()));
        } else if let Some(op) = OPS.iter().find(|op| s[i..].starts_with(**op)) {
            out.push(T::Op(op));
            i += op.len();
        } else {
            return Err(format!("python syntax `{}`", &s[i..]));
        }
    }
    Ok(out)
}

struct Eval<'a> {
    t: &'a [T],
    i: usize,
    lookup: &'a dyn Fn(&str) -> Option<f64>,
    /// Names read, with their values, for the failure message.
    used: Vec<(String, f64)>,
}

fn truth(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

impl Eval<'_> {
    fn peek(&self) -> Option<&T> {
        self.t.get(self.i)
    }

    fn eat_name(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(T::Name(n)) if n == w) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn eat_op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        match self.peek() {
            Some(T::Op(o)) if ops.contains(o) => {
                let o = *o;
                self.i += 1;
                Some(o)
            }
            _ => None,
        }
    }

    fn or_expr(&mut self) -> Result<f64, CodeError> {
        let mut v = self.and_expr()?;
        while self.eat_name("or") {
            let r = self.and_expr()?;
            v = truth(v != 0.0 || r != 0.0);
        }
        Ok(v)
    }

    fn and_expr(&mut self) -> Result<f64, CodeError> {
        let mut v = self.not_expr()?;
        while self.eat_name("and") {
            let r = self.not_expr()?;
            v = truth(v != 0.0 && r != 0.0);
        }
        Ok(v)
    }

    fn not_expr(&mut self) -> Result<f64, CodeError> {
        if self.eat_name("not") {
            return Ok(truth(self.not_expr()? == 0.0));
        }
        self.comparison()
    }

    /// Python's chained comparison: `a <= b <= c` is `a <= b and b <= c`.
    fn comparison(&mut self) -> Result<f64, CodeError> {
        let mut lhs = self.arith()?;
        let mut all = true;
        let mut any = false;
        while let Some(op) = self.eat_op(&["<=", ">=", "==", "!=", "<", ">"]) {
            let rhs = self.arith()?;
            all &= match op {
                "<=" => lhs <= rhs,
                ">=" => lhs >= rhs,
                "==" => lhs == rhs,
                "!=" => lhs != rhs,
                "<" => lhs < rhs,
                _ => lhs > rhs,
            };
            any = true;
            lhs = rhs;
        }
        Ok(if any { truth(all) } else { lhs })
    }

    fn arith(&mut self) -> Result<f64, CodeError> {
        let mut v = self.term()?;
        while let Some(op) = self.eat_op(&["+", "-", "&", "|"]) {
            let r = self.term()?;
            v = match op {
                "+" => v + r,
                "-" => v - r,
                "&" => ((v as i64) & (r as i64)) as f64,
                _ => ((v as i64) | (r as i64)) as f64,
            };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<f64, CodeError> {
        let mut v = self.factor()?;
        while let Some(op) = self.eat_op(&["*", "//", "/", "%"]) {
            let r = self.factor()?;
            if r == 0.0 && op != "*" {
                return Err(CodeError::Unsupported("division by zero".into()));
            }
            v = match op {
                "*" => v * r,
                "//" => (v / r).floor(),
                "/" => v / r,
                _ => v.rem_euclid(r),
            };
        }
        Ok(v)
    }

    fn factor(&mut self) -> Result<f64, CodeError> {
        if self.eat_op(&["-"]).is_some() {
            return Ok(-self.factor()?);
        }
        match self.t.get(self.i).cloned() {
            Some(T::Num(v)) => {
                self.i += 1;
                Ok(v)
            }
            Some(T::Name(n)) => {
                self.i += 1;
                let v = (self.lookup)(&n).ok_or_else(|| CodeError::Unsupported(format!("`{n}` (not kept by the model)")))?;
                if !self.used.iter().any(|(u, _)| *u == n) && n.starts_with("tcpi_") {
                    self.used.push((n, v));
                }
                Ok(v)
            }
            Some(T::Op("(")) => {
                self.i += 1;
                let v = self.or_expr()?;
                if self.eat_op(&[")"]).is_none() {
                    return Err(CodeError::Unsupported("python expression: unbalanced parentheses".into()));
                }
                Ok(v)
            }
            other => Err(CodeError::Unsupported(format!("python expression near {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(n: &str) -> Option<f64> {
        match n {
            "tcpi_snd_cwnd" => Some(10.0),
            "tcpi_rwnd_limited" => Some(100_000.0),
            "TCP_CA_Open" => Some(0.0),
            "tcpi_ca_state" => Some(0.0),
            _ => None,
        }
    }

    #[test]
    fn asserts_hold_or_fail_with_the_values_they_read() {
        assert_eq!(run_block(" assert tcpi_snd_cwnd == 10, tcpi_snd_cwnd ", &vars, &mut Globals::new()), Ok(()));
        assert_eq!(run_block("assert 98000 <= tcpi_rwnd_limited <= 110000, tcpi_rwnd_limited", &vars, &mut Globals::new()), Ok(()));
        assert_eq!(
            run_block("assert tcpi_snd_cwnd == 12, 'cwnd=%d' % tcpi_snd_cwnd", &vars, &mut Globals::new()),
            Err(CodeError::Failed("assert tcpi_snd_cwnd == 12 failed (tcpi_snd_cwnd = 10)".into()))
        );
        // Chained: 1 <= 10 holds, 10 <= 5 does not.
        assert!(matches!(run_block("assert 1 <= tcpi_snd_cwnd <= 5", &vars, &mut Globals::new()), Err(CodeError::Failed(_))));
    }

    #[test]
    fn multi_line_blocks_with_continuations_and_comments_run_every_statement() {
        let block = "\nassert tcpi_ca_state == TCP_CA_Open, tcpi_ca_state  # open\nassert tcpi_snd_cwnd == 10;\\\n assert (tcpi_snd_cwnd * 2) // 4 == 5 and not tcpi_ca_state\n";
        assert_eq!(run_block(block, &vars, &mut Globals::new()), Ok(()));
        let block = "assert tcpi_snd_cwnd == 10\nassert tcpi_snd_cwnd == 11";
        assert!(matches!(run_block(block, &vars, &mut Globals::new()), Err(CodeError::Failed(_))));
    }

    #[test]
    fn a_name_bound_in_one_block_is_seen_by_the_next() {
        let mut globals = Globals::new();
        assert_eq!(run_block("TCP_INFINITE_SSTHRESH = 0x7fffffff", &vars, &mut globals), Ok(()));
        assert_eq!(globals.get("TCP_INFINITE_SSTHRESH"), Some(&2147483647.0));
        assert_eq!(run_block("assert TCP_INFINITE_SSTHRESH > tcpi_snd_cwnd", &vars, &mut globals), Ok(()));
        assert!(matches!(run_block("assert TCP_INFINITE_SSTHRESH < tcpi_snd_cwnd", &vars, &mut globals), Err(CodeError::Failed(_))));
        assert_eq!(run_block("CWND = tcpi_snd_cwnd * 2", &vars, &mut globals), Ok(()));
        assert_eq!(run_block("assert CWND == 20", &vars, &mut globals), Ok(()));
        assert_eq!(run_block("print(tcpi_snd_cwnd); CWND += 1; assert CWND == 21", &vars, &mut globals), Ok(()));
        assert_eq!(run_block("CWND -= 11; assert CWND == tcpi_snd_cwnd", &vars, &mut globals), Ok(()));
        assert!(matches!(run_block("unbound += 1", &vars, &mut globals), Err(CodeError::Unsupported(_))));
    }

    #[test]
    fn unknown_names_and_statements_are_unsupported_not_passed() {
        assert_eq!(
            run_block("assert tcpi_busy_time > 0", &vars, &mut Globals::new()),
            Err(CodeError::Unsupported("`tcpi_busy_time` (not kept by the model)".into()))
        );
        assert!(matches!(run_block("import os", &vars, &mut Globals::new()), Err(CodeError::Unsupported(_))));
    }
}

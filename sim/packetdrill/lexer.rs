//! Tokens of packetdrill's script language, after google/packetdrill's `lexer.l`: numbers
//! (decimal, hex, float seconds), words, strings, `...`, backquoted shell commands,
//! `%{ … }%` code blocks, the `--option[=value]` lines at the top, and punctuation.
//! Comments (`//` to the end of the line, `/* … */`) are skipped.

use super::ParseError;

/// One token, with the script line it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub kind: Tok,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Int(i64),
    /// A hex literal (kept apart: packetdrill prints it back in hex).
    Hex(i64),
    /// A number with a decimal point: seconds in event times.
    Float(f64),
    Word(String),
    Str(String),
    Ellipsis,
    /// `` `…` ``: a shell command.
    BackQuoted(String),
    /// `%{ … }%`: an assertion block.
    Code(String),
    /// `--name` or `--name=value` at the start of a line.
    Opt(String, Option<String>),
    Punct(char),
}

/// Splits `src` into tokens; an unknown character or an unterminated block is an error
/// naming its line.
pub fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let mut lx = Lexer { s: src.as_bytes(), i: 0, line: 1, at_line_start: true, out: Vec::new() };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    line: u32,
    /// Only blanks seen since the last newline (an `--option` may start here).
    at_line_start: bool,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> u8 {
        self.s.get(self.i + k).copied().unwrap_or(0)
    }

    fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError { line: self.line, msg: msg.into() }
    }

    fn push(&mut self, kind: Tok, line: u32) {
        self.out.push(Token { kind, line });
        self.at_line_start = false;
    }

    /// Advances over `n` bytes, counting newlines.
    fn bump(&mut self, n: usize) {
        for _ in 0..n {
            if self.peek(0) == b'\n' {
                self.line += 1;
            }
            self.i += 1;
        }
    }

    fn run(&mut self) -> Result<(), ParseError> {
        while self.i < self.s.len() {
            let c = self.peek(0);
            let line = self.line;
            match c {
                b'\n' => {
                    self.bump(1);
                    self.at_line_start = true;
                }
                b' ' | b'\t' | b'\r' => self.bump(1),
                // A backslash before a newline continues the line.
                b'\\' if self.peek(1) == b'\n' => self.bump(2),
                b'/' if self.peek(1) == b'/' => self.skip_until(b"\n"),
                b'/' if self.peek(1) == b'*' => {
                    self.bump(2);
                    self.skip_until(b"*/");
                    self.bump(2);
                }
                b'-' if self.peek(1) == b'-' && self.at_line_start => self.option(line),
                b'`' => {
                    let body = self.delimited(1, b"`", "unterminated backquoted command")?;
                    self.push(Tok::BackQuoted(body), line);
                }
                b'%' if self.peek(1) == b'{' => {
                    let body = self.delimited(2, b"}%", "unterminated %{ }% block")?;
                    self.push(Tok::Code(body), line);
                }
                b'"' => self.string(line)?,
                b'.' if self.peek(1) == b'.' && self.peek(2) == b'.' => {
                    self.bump(3);
                    self.push(Tok::Ellipsis, line);
                }
                b'.' if self.peek(1).is_ascii_digit() => self.number(line)?,
                b'0'..=b'9' => self.number(line)?,
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let start = self.i;
                    while self.peek(0).is_ascii_alphanumeric() || self.peek(0) == b'_' {
                        self.i += 1;
                    }
                    let w = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                    let fast_open = w == "FO" || w == "FOEXP";
                    self.push(Tok::Word(w), line);
                    if fast_open {
                        self.cookie(line);
                    }
                }
                b'<' | b'>' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b':' | b'=' | b'|' | b'+' | b'-'
                | b'*' | b'~' | b'.' | b';' | b'!' | b'&' => {
                    self.bump(1);
                    self.push(Tok::Punct(c as char), line);
                }
                other => return Err(self.err(format!("syntax error: unexpected character '{}'", other as char))),
            }
        }
        Ok(())
    }

    fn skip_until(&mut self, end: &[u8]) {
        while self.i < self.s.len() && !self.s[self.i..].starts_with(end) {
            self.bump(1);
        }
    }

    /// The text between an opening delimiter of `open` bytes and `close`.
    fn delimited(&mut self, open: usize, close: &[u8], what: &str) -> Result<String, ParseError> {
        let err = self.err(what);
        self.bump(open);
        let start = self.i;
        self.skip_until(close);
        if self.i >= self.s.len() {
            return Err(err);
        }
        let body = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.bump(close.len());
        Ok(body)
    }

    fn string(&mut self, line: u32) -> Result<(), ParseError> {
        self.bump(1);
        let mut s = String::new();
        loop {
            match self.peek(0) {
                0 => return Err(self.err("unterminated string")),
                b'"' => break,
                b'\\' => {
                    let e = self.peek(1);
                    s.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'0' => '\0',
                        other => other as char,
                    });
                    self.bump(2);
                }
                c => {
                    s.push(c as char);
                    self.bump(1);
                }
            }
        }
        self.bump(1);
        self.push(Tok::Str(s), line);
        Ok(())
    }

    /// `123`, `0x1f`, `1.5`, `.25`; `0...0.1` is the number 0 then an ellipsis.
    fn number(&mut self, line: u32) -> Result<(), ParseError> {
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X') {
            let start = self.i + 2;
            self.i = start;
            while self.peek(0).is_ascii_hexdigit() {
                self.i += 1;
            }
            let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            let v = u64::from_str_radix(text, 16).map_err(|_| self.err("bad hex number"))?;
            self.push(Tok::Hex(v as i64), line);
            return Ok(());
        }
        let start = self.i;
        while self.peek(0).is_ascii_digit() {
            self.i += 1;
        }
        let is_float = self.peek(0) == b'.' && self.peek(1).is_ascii_digit();
        if is_float {
            self.i += 1;
            while self.peek(0).is_ascii_digit() {
                self.i += 1;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        let kind = if is_float {
            Tok::Float(text.parse().map_err(|_| self.err("bad number"))?)
        } else {
            Tok::Int(text.parse().map_err(|_| self.err("number out of range"))?)
        };
        self.push(kind, line);
        Ok(())
    }

    /// The hex digits of a Fast Open cookie after `FO`/`FOEXP` (`00ab…`), one word whatever
    /// digit it starts with, so that no leading zero is lost to a number.
    fn cookie(&mut self, line: u32) {
        while matches!(self.peek(0), b' ' | b'\t') {
            self.i += 1;
        }
        let start = self.i;
        while self.peek(0).is_ascii_hexdigit() {
            self.i += 1;
        }
        if self.i > start {
            let w = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.push(Tok::Word(w), line);
        }
    }

    /// `--name[=value]`, the value up to the end of the word (a quoted value may hold
    /// blanks).
    fn option(&mut self, line: u32) {
        self.bump(2);
        let start = self.i;
        while !matches!(self.peek(0), 0 | b'=' | b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
        let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        let mut value = None;
        if self.peek(0) == b'=' {
            self.i += 1;
            let mut v = String::new();
            let mut quoted = false;
            while self.peek(0) != 0 && self.peek(0) != b'\n' && (quoted || !matches!(self.peek(0), b' ' | b'\t' | b'\r')) {
                let c = self.peek(0);
                if c == b'"' {
                    quoted = !quoted;
                } else {
                    v.push(c as char);
                }
                self.i += 1;
            }
            value = Some(v);
        }
        self.push(Tok::Opt(name, value), line);
        self.at_line_start = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn a_blocking_span_is_a_number_an_ellipsis_and_a_float() {
        assert_eq!(
            kinds("+0...0.100 read"),
            [Tok::Punct('+'), Tok::Int(0), Tok::Ellipsis, Tok::Float(0.1), Tok::Word("read".into())]
        );
    }

    #[test]
    fn flags_options_comments_and_blocks_tokenize_with_their_lines() {
        let t = tokenize("--mss=1000 // c\n+.1 < P. 1:2(1) <nop>\n%{ assert x }%\n`sysctl -q a=1`").unwrap();
        assert_eq!(t[0].kind, Tok::Opt("mss".into(), Some("1000".into())));
        assert_eq!((t[1].kind.clone(), t[1].line), (Tok::Punct('+'), 2));
        assert_eq!(t[2].kind, Tok::Float(0.1));
        assert_eq!(t[4].kind, Tok::Word("P".into()));
        assert_eq!(t[5].kind, Tok::Punct('.'));
        let code = t.iter().find(|t| matches!(t.kind, Tok::Code(_))).unwrap();
        assert_eq!((code.kind.clone(), code.line), (Tok::Code(" assert x ".into()), 3));
        assert_eq!(t.last().unwrap().kind, Tok::BackQuoted("sysctl -q a=1".into()));
    }

    #[test]
    fn an_unterminated_block_names_its_line() {
        let e = tokenize("0 socket\n%{ assert").unwrap_err();
        assert_eq!(e.line, 2);
    }
}

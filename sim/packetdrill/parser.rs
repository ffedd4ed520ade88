//! A recursive-descent parser for packetdrill scripts, following the grammar of
//! google/packetdrill's `parser.y` (`script`, `event`, `event_time`, `tcp_packet_spec`,
//! `syscall_spec`, `expression`) for the TCP subset the model can run.

use super::ast::*;
use super::lexer::{tokenize, Tok, Token};
use super::ParseError;

/// Parses a whole script.
pub fn parse(src: &str) -> Result<Script, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser { t: toks, i: 0 };
    p.script()
}

struct Parser {
    t: Vec<Token>,
    i: usize,
}

/// Microseconds in `secs` seconds, as packetdrill converts (`(s64)(secs * 1.0e6)`).
/// The Fast Open cookies run_all.py (and the kernel's selftest ksft_runner.sh) define with
/// `-D` for the IPv4 runs: the cookies a server at 192.168.0.1 makes for 192.0.2.1 under
/// defaults.sh's `tcp_fastopen_key` and under the all-zero key. (The model's listener makes
/// the same: `crate::tcp::fastopen`'s test derives both.)
fn run_all_cookie(name: &str) -> Option<Vec<u8>> {
    let hex = match name {
        "TFO_COOKIE" => "3021b9d889017eeb",
        "TFO_COOKIE_ZERO" => "b7c12350a90dc8f5",
        _ => return None,
    };
    Some((0..hex.len()).step_by(2).map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or(0)).collect())
}

fn usecs_of(secs: f64) -> i64 {
    (secs * 1.0e6).round() as i64
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i).map(|t| &t.kind)
    }

    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.t.get(self.i + k).map(|t| &t.kind)
    }

    fn line(&self) -> u32 {
        self.t.get(self.i).or(self.t.last()).map_or(1, |t| t.line)
    }

    fn err<T>(&self, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError { line: self.line(), msg: msg.into() })
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.t.get(self.i).map(|t| t.kind.clone());
        self.i += 1;
        t
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn expect_punct(&mut self, c: char) -> Result<(), ParseError> {
        if self.is_punct(c) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("syntax error: expected '{c}'"))
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<(), ParseError> {
        if self.is_word(w) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("syntax error: expected '{w}'"))
        }
    }

    fn int(&mut self) -> Result<i64, ParseError> {
        match self.next() {
            Some(Tok::Int(v)) | Some(Tok::Hex(v)) => Ok(v),
            _ => {
                self.i -= 1;
                self.err("syntax error: expected an integer")
            }
        }
    }

    fn u32(&mut self, what: &str) -> Result<u32, ParseError> {
        let v = self.int()?;
        u32::try_from(v).or_else(|_| self.err(format!("{what} out of range")))
    }

    fn script(&mut self) -> Result<Script, ParseError> {
        let mut s = Script::default();
        while let Some(Tok::Opt(name, value)) = self.peek().cloned() {
            s.options.push(ScriptOption { name, value, line: self.line() });
            self.i += 1;
        }
        // An init command (a command with no time before it) runs first, at time 0.
        if let Some(Tok::BackQuoted(cmd)) = self.peek().cloned() {
            s.events.push(Event { line: self.line(), time: EventTime::Absolute(0), action: Action::Command(cmd) });
            self.i += 1;
        }
        while self.peek().is_some() {
            // A command after the last event, with no time, is the cleanup command.
            if let (Some(Tok::BackQuoted(cmd)), None) = (self.peek().cloned(), self.peek_at(1)) {
                s.cleanup = Some((self.line(), cmd));
                self.i += 1;
                break;
            }
            s.events.push(self.event()?);
        }
        if s.events.iter().all(|e| matches!(e.action, Action::Command(_))) {
            return self.err("syntax error: a script needs at least one event");
        }
        Ok(s)
    }

    fn time(&mut self) -> Result<i64, ParseError> {
        match self.next() {
            Some(Tok::Float(f)) => Ok(usecs_of(f)),
            Some(Tok::Int(v)) => Ok(v * 1_000_000),
            _ => {
                self.i -= 1;
                self.err("syntax error: expected a time")
            }
        }
    }

    fn event_time(&mut self) -> Result<EventTime, ParseError> {
        if self.is_punct('*') {
            self.i += 1;
            return Ok(EventTime::Any);
        }
        if self.is_punct('+') {
            self.i += 1;
            let a = self.time()?;
            if self.is_punct('~') {
                self.i += 1;
                self.expect_punct('+')?;
                let b = self.time()?;
                return Ok(EventTime::RelativeRange(a, b));
            }
            return Ok(EventTime::Relative(a));
        }
        let a = self.time()?;
        if self.is_punct('~') {
            self.i += 1;
            let b = self.time()?;
            return Ok(EventTime::AbsoluteRange(a, b));
        }
        Ok(EventTime::Absolute(a))
    }

    fn event(&mut self) -> Result<Event, ParseError> {
        let line = self.line();
        let time = self.event_time()?;
        let action = match self.peek().cloned() {
            Some(Tok::Punct('<')) => Action::Packet(self.packet(Direction::Inbound)?),
            Some(Tok::Punct('>')) => Action::Packet(self.packet(Direction::Outbound)?),
            Some(Tok::BackQuoted(c)) => {
                self.i += 1;
                Action::Command(c)
            }
            Some(Tok::Code(c)) => {
                self.i += 1;
                Action::Code(c)
            }
            Some(Tok::Ellipsis) | Some(Tok::Word(_)) => Action::Syscall(self.syscall()?),
            _ => return self.err("syntax error: expected a packet, a system call, a command or a %{ }% block"),
        };
        let outbound = matches!(&action, Action::Packet(p) if p.direction == Direction::Outbound);
        if matches!(time, EventTime::Any) && !outbound {
            return Err(ParseError { line, msg: "event time <star> can only be used with outbound packets".into() });
        }
        if matches!(time, EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..)) && !outbound {
            return Err(ParseError { line, msg: "event time range can only be used with outbound packets".into() });
        }
        if let EventTime::AbsoluteRange(a, b) | EventTime::RelativeRange(a, b) = time {
            if b < a {
                return Err(ParseError { line, msg: "time range is backwards".into() });
            }
        }
        Ok(Event { line, time, action })
    }

    fn packet(&mut self, direction: Direction) -> Result<PacketSpec, ParseError> {
        let line = self.line();
        self.i += 1;
        // icmp_packet_spec / udp_packet_spec: kept only to be reported unsupported.
        if self.is_word("icmp") || self.is_word("udp") {
            let what = if self.is_word("icmp") { "ICMP packets" } else { "UDP packets" };
            while self.t.get(self.i).is_some_and(|t| t.line == line) {
                self.i += 1;
            }
            return Ok(PacketSpec {
                direction,
                flags: String::new(),
                seq: 0,
                len: 0,
                ack: None,
                window: None,
                options: Some(Vec::new()),
                ecn: None,
                unsupported: Some(what.into()),
            });
        }
        let mut unsupported = None;
        let mut ecn = None;
        // opt_ip_info: `[ect0]` (the ECN field), `[ect0,flowlabel 1]`, `(tos 0x..)`, … —
        // IP-level annotations; only the ECN field alone is taken.
        if self.is_punct('[') || self.is_punct('(') {
            let close = if self.is_punct('[') { ']' } else { ')' };
            let mut words = Vec::new();
            let mut other = false;
            self.i += 1;
            while !self.is_punct(close) && self.peek().is_some() {
                match self.next() {
                    Some(Tok::Word(w)) => words.push(w),
                    _ => other = true,
                }
            }
            self.expect_punct(close)?;
            ecn = match words.as_slice() {
                [w] if close == ']' && !other => IpEcn::from_word(w),
                _ => None,
            };
            if ecn.is_none() {
                let what = words.last().cloned().unwrap_or_default();
                unsupported = Some(format!("IP header annotation [{what}] (TOS/flow label)"));
            }
        }
        // opt_port_info: `src > dst`.
        if matches!(self.peek(), Some(Tok::Int(_))) && self.peek_at(1) == Some(&Tok::Punct('>')) {
            self.i += 3;
            unsupported.get_or_insert("explicit port numbers".into());
        }
        let flags = self.flags()?;
        let seq = self.u32("TCP start sequence number")?;
        self.expect_punct(':')?;
        let end = self.u32("TCP end sequence number")?;
        self.expect_punct('(')?;
        let len = self.u32("TCP payload size")?;
        self.expect_punct(')')?;
        if end != seq.wrapping_add(len) {
            return self.err("inconsistent TCP sequence numbers and payload size");
        }
        let mut ack = None;
        if self.is_word("ack") {
            self.i += 1;
            ack = Some(self.u32("TCP ack sequence number")?);
        }
        let mut window = None;
        if self.is_word("win") {
            self.i += 1;
            let w = self.int()?;
            window = Some(u16::try_from(w).or_else(|_| self.err("TCP window value out of range"))?);
        }
        if self.is_word("urg") {
            self.i += 1;
            self.int()?;
            unsupported.get_or_insert("urgent pointer".into());
        }
        let mut options = Some(Vec::new());
        if self.is_punct('<') {
            self.i += 1;
            if self.peek() == Some(&Tok::Ellipsis) {
                self.i += 1;
                if direction == Direction::Inbound {
                    return self.err("<...> for TCP options can only be used with outbound packets");
                }
                options = None;
            } else {
                options = Some(self.tcp_options()?);
            }
            self.expect_punct('>')?;
        }
        Ok(PacketSpec { direction, flags, seq, len, ack, window, options, ecn, unsupported })
    }

    /// `flags` in `parser.y`: a word of flag letters with an optional `.`, a lone `.`, or
    /// `-` for none.
    fn flags(&mut self) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Punct('.')) => Ok(".".into()),
            Some(Tok::Punct('-')) => Ok(String::new()),
            Some(Tok::Word(w)) => {
                let mut f = w;
                if self.is_punct('.') {
                    self.i += 1;
                    f.push('.');
                }
                if f.trim_end_matches('.').chars().any(|c| !"SFPRUEWA".contains(c)) {
                    self.i -= 1;
                    return self.err(format!("syntax error: bad TCP flags '{f}'"));
                }
                Ok(f)
            }
            _ => {
                self.i -= 1;
                self.err("syntax error: expected TCP flags")
            }
        }
    }

    fn tcp_options(&mut self) -> Result<Vec<TcpOpt>, ParseError> {
        let mut v = vec![self.tcp_option()?];
        while self.is_punct(',') {
            self.i += 1;
            v.push(self.tcp_option()?);
        }
        Ok(v)
    }

    fn tcp_option(&mut self) -> Result<TcpOpt, ParseError> {
        let Some(Tok::Word(w)) = self.next() else {
            self.i -= 1;
            return self.err("syntax error: expected a TCP option");
        };
        Ok(match w.as_str() {
            "nop" => TcpOpt::Nop,
            "eol" => TcpOpt::Eol,
            "mss" => TcpOpt::Mss(u16::try_from(self.int()?).or_else(|_| self.err("mss value out of range"))?),
            "wscale" => TcpOpt::Wscale(u8::try_from(self.int()?).or_else(|_| self.err("window scale shift count out of range"))?),
            "sackOK" => TcpOpt::SackOk,
            "sack" => {
                let mut blocks = Vec::new();
                while matches!(self.peek(), Some(Tok::Int(_))) {
                    let l = self.u32("TCP SACK left sequence number")?;
                    self.expect_punct(':')?;
                    let r = self.u32("TCP SACK right sequence number")?;
                    blocks.push((l, r));
                }
                TcpOpt::Sack(blocks)
            }
            "TS" => {
                self.expect_word("val")?;
                let val = self.u32("ts val")?;
                self.expect_word("ecr")?;
                let ecr = self.u32("ecr val")?;
                TcpOpt::Timestamp { val, ecr }
            }
            "FO" | "FOEXP" => match self.fast_open_cookie()?.or_else(|name| run_all_cookie(&name).ok_or(name)) {
                Ok(c) if w == "FO" => TcpOpt::FastOpen(c),
                Ok(c) => TcpOpt::FastOpenExp(c),
                Err(name) => TcpOpt::Other(format!("{w} {name} (a -D definition)")),
            },
            other => {
                // md5 and other options with their blobs: kept by name, reported unsupported.
                while !self.is_punct(',') && !self.is_punct('>') && self.peek().is_some() {
                    self.i += 1;
                }
                TcpOpt::Other(other.to_string())
            }
        })
    }

    /// The optional cookie after `FO`: hex digits, two a byte (parser.y
    /// `opt_tcp_fast_open_cookie`: an odd count is an error); another word is a symbol,
    /// returned by name.
    fn fast_open_cookie(&mut self) -> Result<Result<Vec<u8>, String>, ParseError> {
        let Some(Tok::Word(w)) = self.peek().cloned() else { return Ok(Ok(Vec::new())) };
        self.i += 1;
        if !w.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err(w));
        }
        if w.len() % 2 != 0 {
            return self.err("TCP fast open cookie has an odd number of digits");
        }
        Ok(Ok((0..w.len()).step_by(2).map(|k| u8::from_str_radix(&w[k..k + 2], 16).unwrap_or(0)).collect()))
    }

    fn syscall(&mut self) -> Result<SyscallSpec, ParseError> {
        let mut end_usecs = None;
        if self.peek() == Some(&Tok::Ellipsis) {
            self.i += 1;
            end_usecs = Some(self.time()?);
        }
        let Some(Tok::Word(name)) = self.next() else {
            self.i -= 1;
            return self.err("syntax error: expected a system call name");
        };
        self.expect_punct('(')?;
        let args = if self.is_punct(')') { Vec::new() } else { self.expr_list(')')? };
        self.expect_punct(')')?;
        self.expect_punct('=')?;
        let result = self.expr()?;
        let mut errno = None;
        if let Some(Tok::Word(e)) = self.peek().cloned() {
            self.i += 1;
            errno = Some(e);
        }
        // opt_note: `(Operation now in progress)`, `(flags O_RDWR)`.
        if self.is_punct('(') {
            while !self.is_punct(')') && self.peek().is_some() {
                self.i += 1;
            }
            self.expect_punct(')')?;
        }
        Ok(SyscallSpec { end_usecs, name, args, result, errno })
    }

    fn expr_list(&mut self, close: char) -> Result<Vec<Expr>, ParseError> {
        let mut v = vec![self.expr()?];
        while self.is_punct(',') {
            self.i += 1;
            if self.is_punct(close) {
                break;
            }
            v.push(self.expr()?);
        }
        Ok(v)
    }

    /// `expression`: a primary, `a | b | …`, or a structure field `name = value`.
    fn expr(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        while self.is_punct('|') {
            self.i += 1;
            let rhs = self.primary()?;
            e = Expr::Or(Box::new(e), Box::new(rhs));
        }
        if self.is_punct('=') {
            if let Expr::Word(name) = &e {
                let name = name.clone();
                self.i += 1;
                return Ok(Expr::Field(name, Box::new(self.expr()?)));
            }
        }
        Ok(e)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Tok::Ellipsis) => Ok(Expr::Ellipsis),
            Some(Tok::Int(v)) | Some(Tok::Hex(v)) => Ok(Expr::Int(v)),
            Some(Tok::Punct('-')) => Ok(Expr::Int(-self.int()?)),
            Some(Tok::Str(s)) => {
                if self.peek() == Some(&Tok::Ellipsis) {
                    self.i += 1;
                }
                Ok(Expr::Str(s))
            }
            Some(Tok::Word(w)) => {
                // `msg_iov(1)=[…]`, `msg_name(...)=...`, `htons(8080)`, `inet_addr("…")`.
                if self.is_punct('(') {
                    self.i += 1;
                    let args = if self.is_punct(')') { Vec::new() } else { self.expr_list(')')? };
                    self.expect_punct(')')?;
                    if self.is_punct('=') {
                        self.i += 1;
                        return Ok(Expr::Indexed(w, args, Box::new(self.expr()?)));
                    }
                    return Ok(Expr::Indexed(w, args, Box::new(Expr::Ellipsis)));
                }
                Ok(Expr::Word(w))
            }
            Some(Tok::Punct('[')) => {
                let v = if self.is_punct(']') { Vec::new() } else { self.expr_list(']')? };
                self.expect_punct(']')?;
                Ok(Expr::List(v))
            }
            Some(Tok::Punct('{')) => {
                let v = if self.is_punct('}') { Vec::new() } else { self.expr_list('}')? };
                self.expect_punct('}')?;
                Ok(Expr::Struct(v))
            }
            _ => {
                self.i -= 1;
                self.err("syntax error: expected an expression")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Event {
        let mut s = parse(src).unwrap();
        assert_eq!(s.events.len(), 1, "{src}");
        s.events.remove(0)
    }

    #[test]
    fn packets_parse_with_flags_sequence_window_and_options() {
        let e = one("+.1 < S 0:0(0) win 32792 <mss 1000,sackOK,TS val 100 ecr 0,nop,wscale 7>");
        assert_eq!(e.time, EventTime::Relative(100_000));
        let Action::Packet(p) = e.action else { panic!() };
        assert_eq!((p.direction, p.flags.as_str(), p.seq, p.len, p.window), (Direction::Inbound, "S", 0, 0, Some(32792)));
        assert_eq!(
            p.options.unwrap(),
            [TcpOpt::Mss(1000), TcpOpt::SackOk, TcpOpt::Timestamp { val: 100, ecr: 0 }, TcpOpt::Nop, TcpOpt::Wscale(7)]
        );
        let Action::Packet(p) = one("0 > P. 1:1001(1000) ack 1 <...>").action else { panic!() };
        assert_eq!((p.flags.as_str(), p.ack, p.window, p.options), ("P.", Some(1), None, None));
        let Action::Packet(p) = one("0 < . 1:1(0) ack 1 win 257 <sack 1001:2001 3001:4001,nop,nop>").action else { panic!() };
        assert_eq!(p.options.unwrap()[0], TcpOpt::Sack(vec![(1001, 2001), (3001, 4001)]));
    }

    #[test]
    fn syscalls_parse_with_blocking_spans_errnos_and_structures() {
        let e = one("+0...0.100 read(4, ..., 2000) = 2000");
        let Action::Syscall(s) = e.action else { panic!() };
        assert_eq!((s.end_usecs, s.name.as_str(), s.result.clone()), (Some(100_000), "read", Expr::Int(2000)));
        let Action::Syscall(s) = one("0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)").action else { panic!() };
        assert_eq!((s.result, s.errno.as_deref()), (Expr::Int(-1), Some("EINPROGRESS")));
        let Action::Syscall(s) = one("0 epoll_ctl(5, EPOLL_CTL_ADD, 4, {events=EPOLLOUT|EPOLLET, fd=4}) = 0").action else { panic!() };
        let ev = s.args[3].field("events").unwrap();
        assert!(matches!(ev, Expr::Or(..)));
        let Action::Syscall(s) = one("0 sendmsg(4, {msg_name(...)=..., msg_iov(1)=[{..., 100}], msg_flags=0}, MSG_MORE) = 100").action else { panic!() };
        assert_eq!(s.args[1].field("msg_iov"), Some(&Expr::List(vec![Expr::Struct(vec![Expr::Ellipsis, Expr::Int(100)])])));
        let Action::Syscall(s) = one("0 fcntl(3, F_GETFL) = 0x2 (flags O_RDWR)").action else { panic!() };
        assert_eq!(s.result, Expr::Int(2));
    }

    #[test]
    fn times_ranges_and_star_follow_the_grammar() {
        assert_eq!(one("+0~+.04 > . 1:1(0) ack 1").time, EventTime::RelativeRange(0, 40_000));
        assert_eq!(one("* > . 1:1(0) ack 1").time, EventTime::Any);
        let e = parse("* read(3, ..., 1) = 1").unwrap_err();
        assert_eq!(e.msg, "event time <star> can only be used with outbound packets");
        assert!(parse("0 < S 0:5(0) win 1").unwrap_err().msg.contains("inconsistent"));
    }

    #[test]
    fn options_and_a_leading_command_are_kept() {
        let s = parse("--tolerance_usecs=10000\n`../common/defaults.sh`\n0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n").unwrap();
        assert_eq!(s.options[0], ScriptOption { name: "tolerance_usecs".into(), value: Some("10000".into()), line: 1 });
        assert!(matches!(&s.events[0].action, Action::Command(c) if c == "../common/defaults.sh"));
        assert_eq!(s.events[1].line, 3);
    }

    #[test]
    fn fast_open_options_keep_their_cookie_bytes_leading_zeros_included() {
        let s = parse("0 < S. 0:0(0) ack 1 win 100 <mss 1460,FO 00ab1234,nop,nop,FO,FOEXP 0102,FO TFO_COOKIE,FO MY_COOKIE>\n").unwrap();
        let Action::Packet(p) = &s.events[0].action else { panic!("a packet") };
        let o = p.options.as_ref().unwrap();
        assert_eq!(o[1], TcpOpt::FastOpen(vec![0x00, 0xab, 0x12, 0x34]));
        assert_eq!(o[4], TcpOpt::FastOpen(vec![]));
        assert_eq!(o[5], TcpOpt::FastOpenExp(vec![1, 2]));
        // run_all.py's -D TFO_COOKIE=3021b9d889017eeb; any other name has no definition.
        assert_eq!(o[6], TcpOpt::FastOpen(vec![0x30, 0x21, 0xb9, 0xd8, 0x89, 0x01, 0x7e, 0xeb]));
        assert!(matches!(&o[7], TcpOpt::Other(n) if n.contains("MY_COOKIE")));
        assert!(parse("0 < S 0:0(0) win 100 <FO 123>\n").is_err(), "an odd digit count");
    }
}

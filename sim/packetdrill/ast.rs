//! A parsed packetdrill script: the options at its top, then events, each at a time and
//! doing one thing (a packet in or out, a system call, a shell command, an assertion block).
//! Names follow google/packetdrill's `script.h`, `packet.h` and `parser.y`.

/// A whole script.
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// `--name[=value]` lines, with their line numbers.
    pub options: Vec<ScriptOption>,
    pub events: Vec<Event>,
    /// A command after the last event (`cleanup_command`), run when the script ends, with
    /// its line.
    pub cleanup: Option<(u32, String)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ScriptOption {
    pub name: String,
    pub value: Option<String>,
    pub line: u32,
}

/// One event: when (`time`) and what (`action`), from the script's line `line`.
#[derive(Clone, Debug)]
pub struct Event {
    pub line: u32,
    pub time: EventTime,
    pub action: Action,
}

/// When an event happens, in microseconds as the script wrote them (`event_time` in
/// `parser.y`). Relative times are offsets from the previous event (see `time.rs`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventTime {
    Absolute(i64),
    Relative(i64),
    /// `*`: any time (outbound packets only).
    Any,
    /// `a~b`.
    AbsoluteRange(i64, i64),
    /// `+a~+b`.
    RelativeRange(i64, i64),
}

#[derive(Clone, Debug)]
pub enum Action {
    Packet(PacketSpec),
    Syscall(SyscallSpec),
    /// A backquoted shell command.
    Command(String),
    /// A `%{ … }%` block.
    Code(String),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `<`: injected into the host under test.
    Inbound,
    /// `>`: expected from the host under test.
    Outbound,
}

/// A TCP packet line: `< S. 0:0(0) ack 1 win 257 <mss 1000,nop>`.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketSpec {
    pub direction: Direction,
    /// The flag letters as written (`S`, `P.`, `F.`, `.`, `R`, `-` for none).
    pub flags: String,
    pub seq: u32,
    pub len: u32,
    /// `ack N` (the ACK flag is in `flags`).
    pub ack: Option<u32>,
    /// `win N`; an outbound packet without it does not check the window.
    pub window: Option<u16>,
    /// `None`: `<...>`, options not checked.
    pub options: Option<Vec<TcpOpt>>,
    /// The IP ECN field, `[ect0]` and the like; `None`: Not-ECT inbound, not checked
    /// outbound.
    pub ecn: Option<IpEcn>,
    /// Something the model has no counterpart for (a TOS or flow-label annotation, `urg`,
    /// an explicit port pair): the feature's name.
    pub unsupported: Option<String>,
}

/// An IP ECN annotation (`ip_ecn` in `parser.y`: `[noecn]`, `[ect0]`, `[ect1]`, `[ect01]`,
/// `[ce]`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IpEcn {
    /// Exactly this codepoint.
    Is(crate::tcp::segment::Ecn),
    /// `[ect01]`: ECT(0) or ECT(1), outbound only.
    Ect01,
}

impl IpEcn {
    /// The annotation's word, if it is one.
    pub fn from_word(w: &str) -> Option<IpEcn> {
        use crate::tcp::segment::Ecn;
        Some(match w {
            "noecn" => IpEcn::Is(Ecn::NotEct),
            "ect0" => IpEcn::Is(Ecn::Ect0),
            "ect1" => IpEcn::Is(Ecn::Ect1),
            "ce" => IpEcn::Is(Ecn::Ce),
            "ect01" => IpEcn::Ect01,
            _ => return None,
        })
    }
}

/// One TCP option as the script writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpOpt {
    Nop,
    Eol,
    Mss(u16),
    Wscale(u8),
    SackOk,
    Sack(Vec<(u32, u32)>),
    Timestamp { val: u32, ecr: u32 },
    /// `FO [cookie]`: Fast Open (kind 34), the cookie's bytes (none: a cookie request).
    FastOpen(Vec<u8>),
    /// `FOEXP [cookie]`: the experimental Fast Open option (kind 254, magic 0xF989).
    FastOpenExp(Vec<u8>),
    /// An option the model does not implement (`md5`, …), by name.
    Other(String),
}

/// A system call line: `+0...0.1 read(4, ..., 2000) = 2000`.
#[derive(Clone, Debug, PartialEq)]
pub struct SyscallSpec {
    /// `...end`: a blocking call expected to return at `end` (µs, as written).
    pub end_usecs: Option<i64>,
    pub name: String,
    pub args: Vec<Expr>,
    pub result: Expr,
    /// `ERRNO (text)`.
    pub errno: Option<String>,
}

/// An argument or result expression (`expression` in `parser.y`).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Ellipsis,
    Int(i64),
    Word(String),
    Str(String),
    /// `a | b`.
    Or(Box<Expr>, Box<Expr>),
    /// `name = value` inside a structure (`fd=4`, `events=POLLIN`).
    Field(String, Box<Expr>),
    /// `name(args)=value`, as in `msg_iov(1)=[…]`.
    Indexed(String, Vec<Expr>, Box<Expr>),
    /// `[…]`.
    List(Vec<Expr>),
    /// `{…}`.
    Struct(Vec<Expr>),
}

impl Expr {
    /// The field `name` of a structure.
    pub fn field(&self, name: &str) -> Option<&Expr> {
        let Expr::Struct(items) = self else { return None };
        items.iter().find_map(|e| match e {
            Expr::Field(n, v) if n == name => Some(&**v),
            Expr::Indexed(n, _, v) if n == name => Some(&**v),
            _ => None,
        })
    }
}

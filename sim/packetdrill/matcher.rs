//! Holding an outbound segment against the script's packet, field by field and in the order
//! packetdrill checks them (run_packet.c `verify_ipv4`, `verify_tcp`,
//! `verify_outbound_live_tcp_options`), with its wording; and the conversions between the
//! script's packets and the model's [`Segment`]s.

use super::ast::{IpEcn, PacketSpec, TcpOpt};
use crate::tcp::fastopen::FoCookie;
use crate::tcp::segment::{Ecn, Flags, Segment, TcpOptions};

/// A segment in the script's numbering, with its options in wire order.
#[derive(Clone, Debug, PartialEq)]
pub struct Actual {
    pub flags: Flags,
    /// The IP header's ECN field.
    pub ecn: Ecn,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub len: u32,
    pub options: Vec<TcpOpt>,
}

/// The flags a script's letters stand for (`flags` in `parser.y`; `.` is ACK).
pub fn flags_of(s: &str) -> Flags {
    let mut f = Flags::NONE;
    for c in s.chars() {
        f = f | match c {
            'S' => Flags::SYN,
            'F' => Flags::FIN,
            'P' => Flags::PSH,
            'R' => Flags::RST,
            'U' => Flags::URG,
            'E' => Flags::ECE,
            'W' => Flags::CWR,
            '.' => Flags::ACK,
            _ => Flags::NONE,
        };
    }
    f
}

/// The options of a segment in the order Linux writes them (tcp_output.c
/// `tcp_options_write`): MSS; SACK-permitted folded into the timestamp word, else
/// `nop,nop,TS`; `nop,nop,sackOK` without timestamps; `nop,wscale`; `nop,nop,sack …`; the
/// Fast Open cookie, with `nop,nop` after it when its length leaves two bytes of a word.
pub fn wire_options(o: &TcpOptions) -> Vec<TcpOpt> {
    let mut v = Vec::new();
    if let Some(m) = o.mss {
        v.push(TcpOpt::Mss(m));
    }
    if let Some((val, ecr)) = o.timestamps {
        if o.sack_permitted {
            v.push(TcpOpt::SackOk);
        } else {
            v.extend([TcpOpt::Nop, TcpOpt::Nop]);
        }
        v.push(TcpOpt::Timestamp { val, ecr });
    } else if o.sack_permitted {
        v.extend([TcpOpt::Nop, TcpOpt::Nop, TcpOpt::SackOk]);
    }
    if let Some(w) = o.wscale {
        v.extend([TcpOpt::Nop, TcpOpt::Wscale(w)]);
    }
    if !o.sack.is_empty() {
        v.extend([TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Sack(o.sack.clone())]);
    }
    if let Some(c) = o.fastopen {
        let cookie = c.bytes().to_vec();
        v.push(if c.exp { TcpOpt::FastOpenExp(cookie) } else { TcpOpt::FastOpen(cookie) });
        if c.option_len() & 3 == 2 {
            v.extend([TcpOpt::Nop, TcpOpt::Nop]);
        }
    }
    v
}

/// An inbound packet's options as the model takes them; an option it does not implement
/// is returned by name.
pub fn model_options(opts: &[TcpOpt]) -> Result<TcpOptions, String> {
    let mut o = TcpOptions::default();
    for opt in opts {
        match opt {
            TcpOpt::Nop | TcpOpt::Eol => {}
            TcpOpt::Mss(m) => o.mss = Some(*m),
            TcpOpt::Wscale(w) => o.wscale = Some(*w),
            TcpOpt::SackOk => o.sack_permitted = true,
            TcpOpt::Sack(b) => o.sack = b.clone(),
            TcpOpt::Timestamp { val, ecr } => o.timestamps = Some((*val, *ecr)),
            // Longer than any kernel keeps: the model's option holds at most 16 bytes, and
            // `tcp_parse_fastopen_option` reads such a cookie as none.
            TcpOpt::FastOpen(c) => o.fastopen = FoCookie::new(c),
            TcpOpt::FastOpenExp(c) => o.fastopen = FoCookie::new(c).map(|c| c.with_exp(true)),
            TcpOpt::Other(name) => return Err(format!("TCP option {name}")),
        }
    }
    Ok(o)
}

/// The wire length of an option (RFC 9293 §3.2, RFC 7323, RFC 2018).
fn opt_len(o: &TcpOpt) -> usize {
    match o {
        TcpOpt::Nop | TcpOpt::Eol => 1,
        TcpOpt::Mss(_) => 4,
        TcpOpt::Wscale(_) => 3,
        TcpOpt::SackOk => 2,
        TcpOpt::Sack(b) => 2 + 8 * b.len(),
        TcpOpt::Timestamp { .. } => 10,
        TcpOpt::FastOpen(c) => 2 + c.len(),
        TcpOpt::FastOpenExp(c) => 4 + c.len(),
        TcpOpt::Other(_) => 0,
    }
}

/// The TCP option TLV kind, as packetdrill names options in its messages.
fn opt_kind(o: &TcpOpt) -> u8 {
    match o {
        TcpOpt::Eol => 0,
        TcpOpt::Nop => 1,
        TcpOpt::Mss(_) => 2,
        TcpOpt::Wscale(_) => 3,
        TcpOpt::SackOk => 4,
        TcpOpt::Sack(_) => 5,
        TcpOpt::Timestamp { .. } => 8,
        TcpOpt::FastOpen(_) => 34,
        TcpOpt::FastOpenExp(_) => 254,
        TcpOpt::Other(_) => 255,
    }
}

/// Option bytes rounded up to whole 32-bit words, as the header carries them.
fn options_bytes(opts: &[TcpOpt]) -> usize {
    opts.iter().map(opt_len).sum::<usize>().div_ceil(4) * 4
}

fn check(name: &str, expected: u32, actual: u32) -> Result<(), String> {
    if expected == actual {
        Ok(())
    } else {
        Err(format!("live packet field {name}: expected: {expected} ({expected:#x}) vs actual: {actual} ({actual:#x})"))
    }
}

/// `verify_outbound_live_packet` minus the time: IPv4 length, the TCP header fields, the
/// options. `ts_tick_usecs`/`tolerance_usecs`: a TS val is checked only when a tick is set
/// (`--tcp_ts_tick_usecs`), within the time tolerance.
pub fn verify(script: &PacketSpec, actual: &Actual, ts_tick_usecs: i64, tolerance_usecs: i64) -> Result<(), String> {
    let want = flags_of(&script.flags);
    let actual_opt_bytes = options_bytes(&actual.options);
    let script_opt_bytes = script.options.as_deref().map_or(actual_opt_bytes, options_bytes);
    let total = |opts: usize, len: u32| 20 + 20 + opts as u32 + len;
    check("ipv4_total_length", total(script_opt_bytes, script.len), total(actual_opt_bytes, actual.len))?;
    verify_ecn(script.ecn, actual.ecn)?;
    check("tcp_data_offset", (20 + script_opt_bytes as u32) / 4, (20 + actual_opt_bytes as u32) / 4)?;
    let bit = |f: Flags, flags: Flags| u32::from(flags.contains(f));
    for (name, f) in [
        ("tcp_fin", Flags::FIN),
        ("tcp_syn", Flags::SYN),
        ("tcp_rst", Flags::RST),
        ("tcp_psh", Flags::PSH),
        ("tcp_ack", Flags::ACK),
        ("tcp_urg", Flags::URG),
        ("tcp_ece", Flags::ECE),
        ("tcp_cwr", Flags::CWR),
    ] {
        check(name, bit(f, want), bit(f, actual.flags))?;
    }
    check("tcp_seq", script.seq, actual.seq)?;
    // A packet written without `ack` expects an ACK field of 0.
    check("tcp_ack_seq", script.ack.unwrap_or(0), if actual.flags.contains(Flags::ACK) { actual.ack } else { 0 })?;
    if let Some(w) = script.window {
        check("tcp_window", u32::from(w), u32::from(actual.window))?;
    }
    let Some(script_opts) = &script.options else { return Ok(()) };
    if script_opts.len() != actual.options.len() {
        return Err("bad outbound TCP options".into());
    }
    for (s, a) in script_opts.iter().zip(&actual.options) {
        if opt_kind(s) != opt_kind(a) {
            return Err("bad outbound TCP options".into());
        }
        match (s, a) {
            (TcpOpt::Timestamp { val: sv, .. }, TcpOpt::Timestamp { val: av, .. }) => {
                if ts_tick_usecs > 0 && (av.wrapping_sub(*sv) as i32).unsigned_abs() as i64 * ts_tick_usecs > tolerance_usecs {
                    return Err(format!("bad outbound TCP timestamp value, tolerance {tolerance_usecs}"));
                }
            }
            _ if opt_len(s) != opt_len(a) => return Err(format!("bad lengths for outbound TCP option {}", opt_kind(s))),
            _ if s != a => return Err(format!("bad value outbound TCP option {}", opt_kind(s))),
            _ => {}
        }
    }
    Ok(())
}

/// `verify_outbound_live_ecn` (run_packet.c), after the IPv4 lengths: the ECN field, when
/// the script states it.
fn verify_ecn(script: Option<IpEcn>, actual: Ecn) -> Result<(), String> {
    match script {
        None => Ok(()),
        Some(IpEcn::Ect01) if matches!(actual, Ecn::Ect0 | Ecn::Ect1) => Ok(()),
        Some(IpEcn::Ect01) => Err(format!("live packet field ip_ecn: expected: 0x1 or 0x2 vs actual: {:#x}", actual.bits())),
        Some(IpEcn::Is(e)) => check("ip_ecn", u32::from(e.bits()), u32::from(actual.bits())),
    }
}

/// Whether `cur` carries on where `prev` stopped, with the same ACK and flags (but for the
/// PSH/FIN/CWR only a TSO packet's last segment keeps): a candidate to join it.
pub fn continues(prev: &Segment, cur: &Segment) -> bool {
    let mask = !(Flags::FIN.0 | Flags::PSH.0 | Flags::CWR.0);
    !prev.payload.is_empty()
        && cur.seq == prev.seq.wrapping_add(prev.payload.len())
        && cur.ack == prev.ack
        && prev.flags.0 & mask == cur.flags.0 & mask
        && !prev.flags.contains(Flags::FIN)
}

/// `verify_packet_fragments`: whether `cur` can follow `prev` in one TSO-sized packet the
/// script expects, given `so_far` bytes already joined out of `total`.
pub fn check_fragment(prev: &Segment, cur: &Segment, so_far: u32, total: u32) -> Result<(), String> {
    let mask = Flags(!(Flags::FIN.0 | Flags::PSH.0 | Flags::CWR.0));
    check("tcp_flags", u32::from(prev.flags.0 & mask.0), u32::from(cur.flags.0 & mask.0))
        .and_then(|_| check("tcp_seq", prev.seq.wrapping_add(prev.payload.len()), cur.seq))
        .and_then(|_| check("tcp_ack_seq", prev.ack, cur.ack))
        .map_err(|e| e.replace("live packet", "aggregate candidate packet"))?;
    let len = cur.payload.len();
    if len < total.saturating_sub(so_far) && len != prev.payload.len() {
        return Err(format!(
            "fragment payload: expected {} bytes vs actual {len} bytes; total payload: expected {total} bytes vs actual {} bytes",
            prev.payload.len(),
            len + so_far
        ));
    }
    Ok(())
}

/// One packet as packetdrill dumps it in an error: `P. 1:1001(1000) ack 1 win 257 <…>`.
pub fn dump(flags: Flags, seq: u32, len: u32, ack: Option<u32>, window: Option<u16>, options: Option<&[TcpOpt]>) -> String {
    // tcpdump's letters, which packetdrill's are; no flags at all is `-` in a script.
    let mut s = if flags == Flags::NONE { "-".to_string() } else { flags.tcpdump() };
    s.push_str(&format!(" {seq}:{}({len})", seq.wrapping_add(len)));
    if let Some(a) = ack {
        s.push_str(&format!(" ack {a}"));
    }
    if let Some(w) = window {
        s.push_str(&format!(" win {w}"));
    }
    match options {
        None => s.push_str(" <...>"),
        Some([]) => {}
        Some(opts) => {
            let parts: Vec<String> = opts.iter().map(opt_text).collect();
            s.push_str(&format!(" <{}>", parts.join(",")));
        }
    }
    s
}

fn opt_text(o: &TcpOpt) -> String {
    match o {
        TcpOpt::Nop => "nop".into(),
        TcpOpt::Eol => "eol".into(),
        TcpOpt::Mss(m) => format!("mss {m}"),
        TcpOpt::Wscale(w) => format!("wscale {w}"),
        TcpOpt::SackOk => "sackOK".into(),
        TcpOpt::Sack(b) => format!("sack {}", b.iter().map(|(l, r)| format!("{l}:{r}")).collect::<Vec<_>>().join(" ")),
        TcpOpt::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
        TcpOpt::FastOpen(c) => cookie_text("FO", c),
        TcpOpt::FastOpenExp(c) => cookie_text("FOEXP", c),
        TcpOpt::Other(n) => n.clone(),
    }
}

fn cookie_text(name: &str, c: &[u8]) -> String {
    let hex: String = c.iter().map(|b| format!("{b:02x}")).collect();
    if hex.is_empty() {
        name.into()
    } else {
        format!("{name} {hex}")
    }
}

/// The script packet's dump line, its ECN annotation first.
pub fn dump_script(p: &PacketSpec) -> String {
    let ecn = match p.ecn {
        None => String::new(),
        Some(IpEcn::Is(e)) => format!("[{}] ", e.name()),
        Some(IpEcn::Ect01) => "[ect01] ".into(),
    };
    ecn + &dump(flags_of(&p.flags), p.seq, p.len, p.ack, p.window, p.options.as_deref())
}

/// The actual packet's dump line (always with its window, as packetdrill prints it), with
/// its ECN field unless Not-ECT.
pub fn dump_actual(a: &Actual) -> String {
    let ack = a.flags.contains(Flags::ACK).then_some(a.ack);
    let ecn = if a.ecn == Ecn::NotEct { String::new() } else { format!("[{}] ", a.ecn.name()) };
    ecn + &dump(a.flags, a.seq, a.len, ack, Some(a.window), Some(&a.options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packetdrill::ast::Direction;

    fn spec(flags: &str, seq: u32, len: u32, ack: Option<u32>, options: Option<Vec<TcpOpt>>) -> PacketSpec {
        PacketSpec { direction: Direction::Outbound, flags: flags.into(), seq, len, ack, window: None, options, ecn: None, unsupported: None }
    }

    #[test]
    fn linux_option_order_folds_sack_permitted_into_the_timestamp_word() {
        let o = TcpOptions { mss: Some(1460), wscale: Some(8), sack_permitted: true, timestamps: Some((5, 0)), ..TcpOptions::default() };
        assert_eq!(
            wire_options(&o),
            [TcpOpt::Mss(1460), TcpOpt::SackOk, TcpOpt::Timestamp { val: 5, ecr: 0 }, TcpOpt::Nop, TcpOpt::Wscale(8)]
        );
        let o = TcpOptions { mss: Some(1460), wscale: Some(8), sack_permitted: true, ..TcpOptions::default() };
        assert_eq!(wire_options(&o), [TcpOpt::Mss(1460), TcpOpt::Nop, TcpOpt::Nop, TcpOpt::SackOk, TcpOpt::Nop, TcpOpt::Wscale(8)]);
    }

    #[test]
    fn fields_are_checked_in_packetdrills_order_with_its_wording() {
        let a = Actual { flags: Flags::ACK, ecn: Ecn::NotEct, seq: 1, ack: 1001, window: 257, len: 0, options: vec![] };
        assert_eq!(verify(&spec(".", 1, 0, Some(1001), Some(vec![])), &a, 0, 4000), Ok(()));
        assert_eq!(
            verify(&spec(".", 1, 0, Some(2001), Some(vec![])), &a, 0, 4000).unwrap_err(),
            "live packet field tcp_ack_seq: expected: 2001 (0x7d1) vs actual: 1001 (0x3e9)"
        );
        // A FIN where an ACK was expected differs first in tcp_fin.
        let fin = Actual { flags: Flags::FIN | Flags::ACK, ..a.clone() };
        assert!(verify(&spec(".", 1, 0, Some(1001), Some(vec![])), &fin, 0, 4000).unwrap_err().starts_with("live packet field tcp_fin"));
        // Extra options change the IP length first; `<...>` accepts any.
        let ts = Actual { options: vec![TcpOpt::Nop, TcpOpt::Nop, TcpOpt::Timestamp { val: 1, ecr: 2 }], ..a.clone() };
        assert!(verify(&spec(".", 1, 0, Some(1001), Some(vec![])), &ts, 0, 4000).unwrap_err().contains("ipv4_total_length: expected: 40"));
        assert_eq!(verify(&spec(".", 1, 0, Some(1001), None), &ts, 0, 4000), Ok(()));
    }

    /// `verify_outbound_live_ecn`: checked only where the script states it, after the IPv4
    /// length and before the TCP fields; `[ect01]` takes either ECT codepoint.
    #[test]
    fn the_ecn_field_is_checked_where_the_script_states_it() {
        let with = |ecn| PacketSpec { ecn: Some(ecn), ..spec("P.", 1, 0, Some(1), None) };
        let ect0 = Actual { flags: Flags::PSH | Flags::ACK, ecn: Ecn::Ect0, seq: 1, ack: 1, window: 1, len: 0, options: vec![] };
        assert_eq!(verify(&spec("P.", 1, 0, Some(1), None), &ect0, 0, 0), Ok(()));
        assert_eq!(verify(&with(IpEcn::Is(Ecn::Ect0)), &ect0, 0, 0), Ok(()));
        assert_eq!(verify(&with(IpEcn::Ect01), &ect0, 0, 0), Ok(()));
        let plain = Actual { ecn: Ecn::NotEct, flags: Flags::ACK, ..ect0.clone() };
        assert_eq!(
            verify(&with(IpEcn::Is(Ecn::Ect0)), &plain, 0, 0).unwrap_err(),
            "live packet field ip_ecn: expected: 2 (0x2) vs actual: 0 (0x0)"
        );
        assert!(verify(&with(IpEcn::Ect01), &plain, 0, 0).unwrap_err().starts_with("live packet field ip_ecn"));
        assert_eq!(dump_actual(&ect0), "[ect0] P. 1:1(0) ack 1 win 1");
    }

    #[test]
    fn fragments_join_only_in_sequence_with_equal_sizes_before_the_last() {
        let seg = |seq, len: u32| Segment {
            src: "1.1.1.1:1".parse().unwrap(),
            dst: "2.2.2.2:2".parse().unwrap(),
            seq,
            ack: 1,
            flags: Flags::ACK,
            ecn: Ecn::NotEct,
            window: 1,
            options: TcpOptions::default(),
            payload: crate::tcp::segment::Payload::Derived { stream: 0, offset: 0, len },
        };
        assert_eq!(check_fragment(&seg(1, 1000), &seg(1001, 1000), 1000, 3000), Ok(()));
        assert_eq!(check_fragment(&seg(1, 1000), &seg(1001, 500), 1000, 1500), Ok(()));
        assert!(check_fragment(&seg(1, 1000), &seg(1001, 500), 1000, 3000).unwrap_err().starts_with("fragment payload"));
        assert!(check_fragment(&seg(1, 1000), &seg(2001, 1000), 1000, 3000).is_err());
    }
}

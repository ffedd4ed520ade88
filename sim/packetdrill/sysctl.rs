//! The shell lines of a script, as far as they configure the kernel: `sysctl -q name=value`,
//! the scripts' `common/defaults.sh` (read from beside the script at run time) and
//! `set_sysctls.py` with its restore script. Every sysctl lands in the [`KernelProfile`] the
//! model reads, or is checked against the behaviour the model has built in; any other shell
//! command is unsupported (named), never silently skipped.

use crate::tcp::profile::{KernelProfile, TcpEcn};
use std::path::Path;

/// Why a command did not apply.
#[derive(Clone, Debug, PartialEq)]
pub enum CmdError {
    /// The model cannot do what the command asks: the feature, named.
    Unsupported(String),
    /// The command is wrong (an unreadable file, a malformed value).
    Failed(String),
}

/// Sysctls the model has no knob for, with the value its built-in behaviour corresponds
/// to. Setting one to that value is a no-op; to another value, unsupported.
const BUILT_IN: [(&str, &str, &str); 8] = [
    (
        "tcp_fastopen_blackhole_timeout_sec",
        "0",
        "the model never turns active Fast Open off for a blackhole (tcp_fastopen_active_should_disable), as 0 does",
    ),
    ("tcp_congestion_control", "cubic", "the model's congestion control stands for Linux's default, CUBIC"),
    ("tcp_frto", "2", "F-RTO as Linux's default"),
    ("tcp_dsack", "1", "D-SACK as Linux's default"),
    ("tcp_reordering", "3", "the initial reordering degree is Linux's default"),
    ("tcp_recovery", "1", "RACK loss detection as Linux's default"),
    ("tcp_pacing_ss_ratio", "200", "the pacing rate in slow start is Linux's default 200 % (tcp_update_pacing_rate)"),
    ("tcp_pacing_ca_ratio", "120", "the pacing rate in congestion avoidance is Linux's default 120 % (tcp_update_pacing_rate)"),
];

/// Sysctls whose feature is reached only through script constructs reported unsupported
/// on their own (ECN options, the share of cwnd one TSO skb may defer for,
/// `tcp_tso_should_defer`, which the model does not do; `tcp_fack` is a no-op since Linux
/// 4.15). Any value is accepted.
const INERT: [&str; 4] = [
    "tcp_fack",
    "tcp_ecn_option",
    "tcp_tso_win_divisor",
    "tcp_metrics",
];

/// The kernel configuration a script changes, with what `set_sysctls.py` saved for its
/// restore script.
pub struct Sysctls {
    pub profile: KernelProfile,
    /// The test device's qdisc drops every packet (`tc qdisc … pfifo limit 0`).
    pub qdisc_refuses: bool,
    /// The test device's root qdisc (`tc qdisc replace dev tun0 root fq`).
    pub qdisc: crate::host::qdisc::Qdisc,
    /// `ip tcp_metrics flush` ran: the host forgets its Fast Open cookies (taken by the runner).
    pub metrics_flushed: bool,
    /// `net.ipv4.tcp_fastopen_key`, once written (the runner gives it to the host).
    pub fastopen_key: Option<crate::tcp::fastopen::FastOpenKey>,
    saved: Option<KernelProfile>,
}

impl Sysctls {
    pub fn new(profile: KernelProfile) -> Sysctls {
        Sysctls { profile, qdisc_refuses: false, qdisc: Default::default(), metrics_flushed: false, fastopen_key: None, saved: None }
    }

    /// Runs one backquoted command; `dir` is the script's directory (relative paths in the
    /// command are relative to it, as packetdrill runs commands from there).
    pub fn run(&mut self, cmd: &str, dir: &Path) -> Result<(), CmdError> {
        let joined = cmd.replace("\\\n", " ");
        for raw in joined.lines().flat_map(|l| l.split(';')) {
            self.line(raw, dir)?;
        }
        Ok(())
    }

    /// `tc qdisc` on the test device. Without one, a segment leaves when sent, as through a
    /// `pfifo` with room. `pfifo limit 0` holds nothing, so it drops every packet
    /// (`qdisc_drop`, `NET_XMIT_DROP`): the host's queue refuses
    /// ([`Sysctls::qdisc_refuses`]); deleting the root qdisc or installing a `pfifo` with
    /// room undoes it. `fq` (with its defaults) holds each socket's packets until their
    /// departure times ([`crate::host::qdisc`]). Other qdiscs are unsupported.
    fn tc(&mut self, words: &[String], line: &str) -> Result<(), CmdError> {
        use crate::host::qdisc::Qdisc;
        let word = |i: usize| words.get(i).map(String::as_str);
        let limit_zero = words.windows(2).any(|w| w[0] == "limit" && w[1] == "0");
        let last = words.last().map(String::as_str);
        match (word(1), word(2)) {
            (Some("qdisc"), Some("delete" | "del")) => (self.qdisc_refuses, self.qdisc) = (false, Qdisc::Pfifo),
            (Some("qdisc"), Some("add" | "replace")) if words.iter().any(|w| w == "pfifo") => {
                (self.qdisc_refuses, self.qdisc) = (limit_zero, Qdisc::Pfifo);
            }
            (Some("qdisc"), Some("add" | "replace")) if last == Some("fq") => (self.qdisc_refuses, self.qdisc) = (false, Qdisc::Fq),
            _ => return Err(CmdError::Unsupported(format!("shell command `{}`", line.trim()))),
        }
        Ok(())
    }

    fn line(&mut self, raw: &str, dir: &Path) -> Result<(), CmdError> {
        let raw = raw.split('#').next().unwrap_or("");
        if let Some((value, param)) = module_param_write(raw) {
            return module_param(param, value);
        }
        let line = strip_redirections(raw);
        let words = shell_words(&line);
        let Some(first) = words.first() else { return Ok(()) };
        if first.ends_with("common/defaults.sh") {
            let path = dir.join(first);
            let text = std::fs::read_to_string(&path).map_err(|e| CmdError::Failed(format!("{}: {e}", path.display())))?;
            let sub = path.parent().unwrap_or(dir).to_path_buf();
            return text.lines().try_for_each(|l| self.line(l, &sub));
        }
        match first.as_str() {
            "sysctl" => words[1..].iter().filter(|w| !w.starts_with('-')).try_for_each(|w| self.assign(w)),
            // The per-destination metrics the model keeps are the Fast Open cookies.
            "ip" if words.get(1).map(String::as_str) == Some("tcp_metrics") => {
                self.metrics_flushed |= words.get(2).is_some_and(|w| w == "flush");
                Ok(())
            }
            // The model has no queueing discipline: a segment leaves when sent, as with pfifo.
            "tc" => self.tc(&words, &line),
            // TCP keeps building multi-segment skbs: GSO is always on for TCP (sk_setup_caps
            // adds NETIF_F_GSO for TCP sockets since 4.19), and the stack segments what the
            // device cannot, before packetdrill sniffs it.
            "ethtool" if is_offload_off(&words) => Ok(()),
            w if w.ends_with("set_sysctls.py") => {
                self.saved.get_or_insert_with(|| self.profile.clone());
                words[1..].iter().try_for_each(|w| self.assign(w.trim_start_matches("/proc/sys/")))
            }
            w if w.starts_with("/tmp/sysctl_restore_") => {
                if let Some(p) = self.saved.take() {
                    self.profile = p;
                }
                Ok(())
            }
            _ => Err(CmdError::Unsupported(format!("shell command `{}`", line.trim()))),
        }
    }

    /// One `name=value`.
    fn assign(&mut self, word: &str) -> Result<(), CmdError> {
        let (name, value) = word.split_once('=').ok_or_else(|| CmdError::Failed(format!("sysctl: `{word}` is not name=value")))?;
        let name = name.replace('/', ".");
        let value = expand_arith(value)?;
        let short = name.rsplit('.').next().unwrap_or(&name);
        if INERT.contains(&short) {
            return Ok(());
        }
        if short == "tcp_fastopen_key" {
            let key = crate::tcp::fastopen::FastOpenKey::parse(&value).ok_or_else(|| CmdError::Failed(format!("sysctl {name}: bad key `{value}`")))?;
            self.fastopen_key = Some(key);
            return Ok(());
        }
        if let Some((_, v, why)) = BUILT_IN.iter().find(|(n, _, _)| *n == short) {
            return if value.trim() == *v {
                Ok(())
            } else {
                Err(CmdError::Unsupported(format!("sysctl {name}={value} ({why})")))
            };
        }
        if set_profile(&mut self.profile, short, &value)? {
            Ok(())
        } else {
            Err(CmdError::Unsupported(format!("sysctl {name}={value}")))
        }
    }
}

/// Sets the profile field behind sysctl `name`; `Ok(false)` when the model has no such knob.
fn set_profile(p: &mut KernelProfile, name: &str, value: &str) -> Result<bool, CmdError> {
    let bad = || CmdError::Failed(format!("sysctl {name}: bad value `{value}`"));
    let int = || value.trim().parse::<u64>().map_err(|_| bad());
    let small = || int().and_then(|v| u32::try_from(v).map_err(|_| bad()));
    let triple = || -> Result<[u32; 3], CmdError> {
        let v: Vec<u32> = value.split_whitespace().map(|x| x.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
        v.try_into().map_err(|_| bad())
    };
    match name {
        "tcp_rmem" => p.tcp_rmem = triple()?,
        "tcp_wmem" => p.tcp_wmem = triple()?,
        "rmem_max" => p.rmem_max = small()?,
        "wmem_max" => p.wmem_max = small()?,
        "tcp_timestamps" => p.tcp_timestamps = int()? != 0,
        "tcp_sack" => p.tcp_sack = int()? != 0,
        "tcp_ecn" => {
            let v = u8::try_from(int()?).map_err(|_| bad())?;
            p.tcp_ecn = match TcpEcn::try_from(v) {
                Ok(e) => e,
                Err(why) if v <= 5 => return Err(CmdError::Unsupported(format!("sysctl {name}={value}: {why}"))),
                Err(_) => return Err(bad()),
            };
        }
        "tcp_window_scaling" => p.tcp_window_scaling = int()? != 0,
        "tcp_moderate_rcvbuf" => p.tcp_moderate_rcvbuf = int()? != 0,
        "tcp_slow_start_after_idle" => p.tcp_slow_start_after_idle = int()? != 0,
        "tcp_min_tso_segs" => p.tcp_min_tso_segs = small()?.max(1),
        "tcp_abort_on_overflow" => p.tcp_abort_on_overflow = int()? != 0,
        "tcp_syn_retries" => p.tcp_syn_retries = small()?,
        "tcp_synack_retries" => p.tcp_synack_retries = small()?,
        "tcp_retries1" => p.tcp_retries1 = small()?,
        "tcp_retries2" => p.tcp_retries2 = small()?,
        "tcp_orphan_retries" => p.tcp_orphan_retries = small()?,
        "tcp_early_retrans" => p.tcp_early_retrans = small()?,
        "tcp_notsent_lowat" => p.tcp_notsent_lowat = small()?,
        "tcp_syncookies" => p.tcp_syncookies = small()?,
        "tcp_max_syn_backlog" => p.tcp_max_syn_backlog = small()?,
        "somaxconn" => p.somaxconn = small()?,
        "tcp_fin_timeout" => p.tcp_fin_timeout_s = int()?,
        "tcp_keepalive_time" => p.tcp_keepalive_time_s = int()?,
        "tcp_keepalive_intvl" => p.tcp_keepalive_intvl_s = int()?,
        "tcp_keepalive_probes" => p.tcp_keepalive_probes = small()?,
        // A bit mask, often written in hex (`0x70403`).
        "tcp_fastopen" => p.tcp_fastopen = parse_c_int(value).ok_or_else(bad)?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// `echo VALUE > /sys/module/tcp_cubic/parameters/NAME`: (value, name).
fn module_param_write(line: &str) -> Option<(&str, &str)> {
    let (lhs, path) = line.split_once('>')?;
    let value = lhs.trim().strip_prefix("echo ")?.trim();
    let param = path.trim().strip_prefix("/sys/module/tcp_cubic/parameters/")?;
    Some((value, param))
}

/// CUBIC's module parameters (tcp_cubic.c `module_param`), which the model's CUBIC has
/// built in at their defaults (`sim/tcp/cc/cubic.rs`). Writing a default is a no-op;
/// another value, unsupported.
fn module_param(param: &str, value: &str) -> Result<(), CmdError> {
    const DEFAULTS: [(&str, &str); 8] = [
        ("fast_convergence", "1"),
        ("beta", "717"),
        ("initial_ssthresh", "0"),
        ("bic_scale", "41"),
        ("tcp_friendliness", "1"),
        ("hystart", "1"),
        // HYSTART_ACK_TRAIN | HYSTART_DELAY
        ("hystart_detect", "3"),
        ("hystart_low_window", "16"),
    ];
    match DEFAULTS.iter().find(|(p, _)| *p == param) {
        Some((_, v)) if *v == value => Ok(()),
        _ => Err(CmdError::Unsupported(format!("tcp_cubic module parameter {param}={value}"))),
    }
}

/// `ethtool -K <dev> tso off gso off` (in either order, nothing else).
fn is_offload_off(words: &[String]) -> bool {
    let rest: Vec<&str> = words.iter().skip(3).map(String::as_str).collect();
    words.get(1).map(String::as_str) == Some("-K") && (rest == ["tso", "off", "gso", "off"] || rest == ["gso", "off", "tso", "off"])
}

/// Drops `> file`, `2>&1` and the like.
fn strip_redirections(line: &str) -> String {
    let mut out = Vec::new();
    let mut skip_next = false;
    for w in line.split_whitespace() {
        if skip_next {
            skip_next = false;
        } else if w == ">" || w == "2>" || w == ">>" {
            skip_next = true;
        } else if !(w.starts_with('>') || w.starts_with("2>") || w.starts_with("1>")) {
            out.push(w);
        }
    }
    out.join(" ")
}

/// Splits on blanks outside double quotes, dropping the quotes.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Expands `$((…))` arithmetic, as the shell does for `$((15*1024*1024))`.
/// An integer as sysctl(8) takes it (`proc_dointvec`): decimal, or hex after `0x`.
fn parse_c_int(value: &str) -> Option<u32> {
    let v = value.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

fn expand_arith(value: &str) -> Result<String, CmdError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("$((") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after.find("))").ok_or_else(|| CmdError::Failed(format!("unterminated $(( in `{value}`")))?;
        let v = super::code::eval_arith(&after[..end]).ok_or_else(|| CmdError::Failed(format!("bad arithmetic in `{value}`")))?;
        out.push_str(&format!("{}", v as i64));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_land_in_the_profile_with_shell_arithmetic() {
        let mut s = Sysctls::new(KernelProfile::linux_6_18());
        s.run("sysctl -q net.ipv4.tcp_rmem=\"4096 540000 $((15*1024*1024))\"\nsysctl -q net.ipv4.tcp_timestamps=0", Path::new(".")).unwrap();
        assert_eq!(s.profile.tcp_rmem, [4096, 540000, 15 * 1024 * 1024]);
        assert!(!s.profile.tcp_timestamps);
    }

    #[test]
    fn tcp_fastopen_takes_the_hex_mask_defaults_sh_writes() {
        let mut s = Sysctls::new(KernelProfile::linux_6_18());
        assert_eq!(s.profile.tcp_fastopen, 1);
        s.run("sysctl -q net.ipv4.tcp_fastopen=0x70403", Path::new(".")).unwrap();
        assert_eq!(s.profile.tcp_fastopen, 0x70403);
        s.run("sysctl -q net.ipv4.tcp_fastopen=0", Path::new(".")).unwrap();
        assert_eq!(s.profile.tcp_fastopen, 0);
    }

    #[test]
    fn set_sysctls_py_is_undone_by_its_restore_script() {
        let mut s = Sysctls::new(KernelProfile::linux_6_18());
        let before = s.profile.tcp_wmem;
        s.run("../common/set_sysctls.py /proc/sys/net/ipv4/tcp_wmem=\"4096 50000 4194304\" \\\n /proc/sys/net/ipv4/tcp_notsent_lowat=4000", Path::new(".")).unwrap();
        assert_eq!((s.profile.tcp_wmem[1], s.profile.tcp_notsent_lowat), (50000, 4000));
        s.run("/tmp/sysctl_restore_${PPID}.sh", Path::new(".")).unwrap();
        assert_eq!(s.profile.tcp_wmem, before);
    }

    #[test]
    fn behaviour_the_model_lacks_and_other_shell_is_unsupported_by_name() {
        let mut s = Sysctls::new(KernelProfile::linux_6_18());
        assert_eq!(s.run("sysctl -q net.ipv4.tcp_ecn=1 > /dev/null 2>&1", Path::new(".")), Ok(()));
        assert!(s.profile.tcp_ecn.request());
        // Accurate ECN (6.18's tcp_ecn 3 to 5) is not modelled; 6 is no value at all.
        let e = s.run("sysctl -q net.ipv4.tcp_ecn=3", Path::new(".")).unwrap_err();
        assert!(matches!(e, CmdError::Unsupported(m) if m.contains("tcp_ecn=3")));
        assert!(matches!(s.run("sysctl -q net.ipv4.tcp_ecn=6", Path::new(".")), Err(CmdError::Failed(_))));
        assert!(matches!(s.run("ethtool -K tun0 gro off", Path::new(".")), Err(CmdError::Unsupported(_))));
        assert_eq!(s.run("ethtool -K tun0 tso off gso off", Path::new(".")), Ok(()));
        assert_eq!(s.profile.gso_max_segs, KernelProfile::linux_6_18().gso_max_segs);
        assert!(matches!(s.run("sysctl -q net.ipv4.tcp_no_such=1", Path::new(".")), Err(CmdError::Unsupported(_))));
    }

    #[test]
    fn cubic_module_parameters_at_their_defaults_are_taken_and_others_unsupported() {
        let mut s = Sysctls::new(KernelProfile::linux_6_18());
        assert_eq!(s.run("echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect", Path::new(".")), Ok(()));
        let e = s.run("echo 1 > /sys/module/tcp_cubic/parameters/hystart_detect", Path::new(".")).unwrap_err();
        assert!(matches!(e, CmdError::Unsupported(m) if m.contains("hystart_detect=1")));
        assert!(matches!(s.run("echo 3 > /tmp/x", Path::new(".")), Err(CmdError::Unsupported(_))));
    }
}

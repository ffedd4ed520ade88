//! The system under test's settings: what the application or the host's administrator chose,
//! given with `--set KEY=VALUE` (what the trace cannot show) or inferred from the trace
//! ([`super::shown`]). Three kinds of key:
//!
//! - a sysctl, by its Linux name (`tcp_keepalive_time=2`, `tcp_sack=0`, `tcp_rmem=4096 131072
//!   6291456`) or its kernel-profile field (`tcp_keepalive_time_s`): applied to the SUT host's
//!   profile;
//! - a socket option (`SO_RCVBUF=4096`, `TCP_USER_TIMEOUT=8000`, `SO_LINGER=1,0`): set on
//!   each of the SUT's sockets when it is made, before `listen` or `connect` (a listener's
//!   children inherit it, as `sk_clone_lock` copies the listener's);
//! - `backlog=N`: the backlog of the SUT's listeners.
//!
//! A given setting overrides an inferred one of the same key; both are listed in the report.

use crate::tcp::profile::KernelProfile;
use crate::tcp::uapi::{OptValue, SockOpt};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a setting changes in the replay.
#[derive(Clone, Debug, PartialEq)]
pub enum Knob {
    /// A kernel-profile field (`tcp_keepalive_time_s`) and its value.
    Sysctl { field: String, value: serde_json::Value },
    SockOpt(SockOpt, OptValue),
    Backlog(i32),
}

/// Where a setting came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "why")]
pub enum Source {
    /// `--set`.
    Given,
    /// The trace shows it, for the reason given (`first window 4608, wscale 0`).
    Inferred(String),
}

/// One setting of the SUT.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setting {
    /// The key as written (`tcp_keepalive_time`, `SO_RCVBUF`, `backlog`).
    pub key: String,
    pub value: String,
    pub source: Source,
    #[serde(skip)]
    pub knob: Knob,
}

impl Setting {
    /// `SO_RCVBUF=4096 (--set)`, `TCP_KEEPIDLE=2 (inferred: probes 2.0 s after the last segment)`.
    pub fn text(&self) -> String {
        match &self.source {
            Source::Given => format!("{}={} (--set)", self.key, self.value),
            Source::Inferred(why) => format!("{}={} (inferred: {why})", self.key, self.value),
        }
    }

    /// A setting inferred from the trace.
    pub fn inferred(opt: SockOpt, value: i64, why: String) -> Setting {
        let key = format!("{opt:?}");
        Setting { key, value: value.to_string(), source: Source::Inferred(why), knob: Knob::SockOpt(opt, OptValue::Int(value)) }
    }

    /// A sysctl inferred from the trace.
    pub fn inferred_sysctl(field: &str, value: serde_json::Value, why: String) -> Setting {
        let knob = Knob::Sysctl { field: field.to_string(), value: value.clone() };
        Setting { key: field.to_string(), value: value.to_string(), source: Source::Inferred(why), knob }
    }
}

/// Parses `--set KEY=VALUE`; the error says what is wrong with it (the caller names the
/// argument).
pub fn parse(arg: &str) -> Result<Setting, String> {
    let (key, value) = arg.split_once('=').ok_or("not KEY=VALUE")?;
    let (key, value) = (key.trim(), value.trim());
    let knob = match key {
        "backlog" => Knob::Backlog(value.parse::<i32>().map_err(|_| format!("backlog `{value}` is not an integer"))?),
        _ if key.starts_with("SO_") || key.starts_with("TCP_") => sockopt(key, value)?,
        _ => sysctl(key, value)?,
    };
    Ok(Setting { key: key.to_string(), value: value.to_string(), source: Source::Given, knob })
}

/// A socket option the application could have set: an integer, `ON,LINGER` for SO_LINGER,
/// a name for TCP_CONGESTION.
fn sockopt(key: &str, value: &str) -> Result<Knob, String> {
    let opt: SockOpt = serde_json::from_value(serde_json::Value::String(key.into())).map_err(|_| format!("`{key}` is not a socket option the model knows"))?;
    if matches!(opt, SockOpt::SO_ERROR | SockOpt::TCP_INFO) {
        return Err(format!("`{key}` is read-only"));
    }
    let int = |v: &str| v.trim().parse::<i64>().map_err(|_| format!("{key}: `{v}` is not an integer"));
    let v = match opt {
        SockOpt::TCP_CONGESTION => OptValue::Name(value.to_string()),
        SockOpt::SO_LINGER => {
            let (on, secs) = value.split_once(',').ok_or_else(|| format!("{key}: `{value}` is not ON,LINGER (e.g. 1,0)"))?;
            OptValue::Pair([int(on)?, int(secs)?])
        }
        _ => OptValue::Int(int(value)?),
    };
    Ok(Knob::SockOpt(opt, v))
}

/// A sysctl by its Linux name or profile field, its value checked against the profile's
/// type (0/1 for a switch, space-separated integers for `tcp_rmem`).
fn sysctl(key: &str, value: &str) -> Result<Knob, String> {
    let base = KernelProfile::linux_6_18();
    let fields = match serde_json::to_value(&base) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => return Err("the kernel profile is not an object".into()),
    };
    // Linux's seconds-valued sysctls are profile fields with their unit appended.
    let Some((field, current)) = [key.to_string(), format!("{key}_s")].into_iter().find_map(|f| fields.get(&f).map(|v| (f, v.clone()))) else {
        return Err(format!("`{key}` is neither a sysctl the model knows (see models/kernels/linux-6.18.toml), a socket option (SO_…, TCP_…) nor `backlog`"));
    };
    let bad = || format!("{key}: `{value}` is not a value of this sysctl");
    let v = match current {
        serde_json::Value::Bool(_) => match value {
            "0" | "false" => serde_json::Value::Bool(false),
            "1" | "true" => serde_json::Value::Bool(true),
            _ => return Err(bad()),
        },
        serde_json::Value::Array(_) => {
            let nums: Result<Vec<u64>, _> = value.split_whitespace().map(str::parse::<u64>).collect();
            serde_json::json!(nums.map_err(|_| bad())?)
        }
        serde_json::Value::Number(_) => serde_json::json!(value.parse::<u64>().map_err(|_| bad())?),
        _ => serde_json::Value::String(value.to_string()),
    };
    let knob = Knob::Sysctl { field, value: v };
    // The value must also fit the field's type (a u32, an array of three).
    Settings(vec![Setting { key: key.into(), value: value.into(), source: Source::Given, knob: knob.clone() }]).profile(&base).map_err(|e| format!("{key}: {e}"))?;
    Ok(knob)
}

/// The SUT's settings, given and inferred.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Settings(pub Vec<Setting>);

impl Settings {
    /// `given`, then each of `inferred` whose knob `given` does not already set.
    pub fn merge(given: &[Setting], inferred: Vec<Setting>) -> Settings {
        let same = |a: &Knob, b: &Knob| match (a, b) {
            (Knob::Sysctl { field: x, .. }, Knob::Sysctl { field: y, .. }) => x == y,
            (Knob::SockOpt(x, _), Knob::SockOpt(y, _)) => x == y,
            (Knob::Backlog(_), Knob::Backlog(_)) => true,
            _ => false,
        };
        let mut all = given.to_vec();
        all.extend(inferred.into_iter().filter(|i| !given.iter().any(|g| same(&g.knob, &i.knob))));
        Settings(all)
    }

    /// `base` with the sysctls applied.
    pub fn profile(&self, base: &KernelProfile) -> Result<KernelProfile, String> {
        let overrides: BTreeMap<String, serde_json::Value> = self
            .0
            .iter()
            .filter_map(|s| match &s.knob {
                Knob::Sysctl { field, value } => Some((field.clone(), value.clone())),
                _ => None,
            })
            .collect();
        crate::scenario::with_sysctls(base, &overrides)
    }

    /// The socket options set on each SUT socket, in the order given.
    pub fn sockopts(&self) -> Vec<(SockOpt, OptValue)> {
        self.0
            .iter()
            .filter_map(|s| match &s.knob {
                Knob::SockOpt(o, v) => Some((*o, v.clone())),
                _ => None,
            })
            .collect()
    }

    /// The listeners' backlog, if set.
    pub fn backlog(&self) -> Option<i32> {
        self.0.iter().find_map(|s| match s.knob {
            Knob::Backlog(b) => Some(b),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_socket_options_and_the_backlog_parse() {
        let s = parse("tcp_keepalive_time=2").unwrap();
        assert_eq!(s.knob, Knob::Sysctl { field: "tcp_keepalive_time_s".into(), value: serde_json::json!(2) });
        assert_eq!(parse("tcp_sack=0").unwrap().knob, Knob::Sysctl { field: "tcp_sack".into(), value: serde_json::json!(false) });
        assert_eq!(parse("tcp_rmem=4096 8192 16384").unwrap().knob, Knob::Sysctl { field: "tcp_rmem".into(), value: serde_json::json!([4096, 8192, 16384]) });
        assert_eq!(parse("SO_RCVBUF=4096").unwrap().knob, Knob::SockOpt(SockOpt::SO_RCVBUF, OptValue::Int(4096)));
        assert_eq!(parse("SO_LINGER=1,0").unwrap().knob, Knob::SockOpt(SockOpt::SO_LINGER, OptValue::Pair([1, 0])));
        assert_eq!(parse("backlog=1").unwrap().knob, Knob::Backlog(1));
        let profile = Settings(vec![parse("tcp_keepalive_time=2").unwrap()]).profile(&KernelProfile::linux_6_18()).unwrap();
        assert_eq!(profile.tcp_keepalive_time_s, 2);
    }

    #[test]
    fn bad_keys_and_values_say_what_is_wrong() {
        let err = |a| parse(a).unwrap_err();
        assert_eq!(err("SO_RCVBUF"), "not KEY=VALUE");
        assert!(err("tcp_keepalive_tim=2").contains("`tcp_keepalive_tim` is neither a sysctl"), "{}", err("tcp_keepalive_tim=2"));
        assert!(err("tcp_keepalive_time=two").contains("`two` is not a value"));
        assert!(err("tcp_keepalive_probes=99999999999").contains("tcp_keepalive_probes:"));
        assert!(err("tcp_sack=2").contains("`2` is not a value"));
        assert!(err("SO_RCVBUFF=1").contains("not a socket option"));
        assert!(err("SO_RCVBUF=big").contains("`big` is not an integer"));
        assert!(err("SO_ERROR=1").contains("read-only"));
        assert!(err("backlog=x").contains("not an integer"));
    }

    #[test]
    fn a_given_setting_overrides_the_inferred_one() {
        let given = vec![parse("SO_RCVBUF=4096").unwrap()];
        let inferred = vec![
            Setting::inferred(SockOpt::SO_RCVBUF, 2048, "first window".into()),
            Setting::inferred(SockOpt::TCP_KEEPIDLE, 2, "probes".into()),
        ];
        let s = Settings::merge(&given, inferred);
        assert_eq!(s.sockopts(), [(SockOpt::SO_RCVBUF, OptValue::Int(4096)), (SockOpt::TCP_KEEPIDLE, OptValue::Int(2))]);
        assert_eq!(s.0[1].text(), "TCP_KEEPIDLE=2 (inferred: probes)");
    }
}

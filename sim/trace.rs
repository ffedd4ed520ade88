//! The trace: every event of a run, stamped with simulated time, as JSON Lines.
//!
//! Each line is `{"t":<ns>,"ev":"<kind>",...}` followed by the record's own fields in the
//! order its struct declares them (structs, not maps, so the bytes are the same every run).
//! A disabled trace costs a branch per event: callers test [`Trace::enabled`] before
//! building a record.
//!
//! The engine's records (segment fields: `src`, `dst`, `seq`, `ack`, `flags` in tcpdump's
//! spelling, `win`, `len`, `options` when any):
//! - `seg_sent`: `host` (or `middlebox` for a middlebox's RST), `link`, `dir`, segment;
//! - `seg_recv`: `host` (the receiver), `link`, `dir`, segment;
//! - `seg_drop`: where (`link`/`dir`, `host`, `middlebox` as they apply), `reason`
//!   (`loss`, `queue_full`, `partition`, `link_down`, `filter`, `nat_expired`,
//!   `host_frozen`, `host_down`, `no_route`), segment; stamped when and where it is lost;
//! - `seg_dup`: `link`, `dir`, `at` (the copy's arrival), segment;
//! - `timer` (recorded by the host, for timers that expired, stale entries left out):
//!   `host`, `timer` (`retransmit`, `TLP`, `probe0`, `delack`, `keepalive`, `fin-wait2`,
//!   `time-wait`, `SYN-ACK`), `local`, `remote`, and `backoff` for the retransmission timer;
//! - `fault`: `kind`, `target` (link or host name), `drop` and `direction` for filters.
//!
//! Layers above add theirs with [`Trace::record`] or `Ctx::trace`.

use crate::tcp::segment::{Ecn, Segment, TcpOptions};
use crate::time::SimTime;
use serde::Serialize;
use std::io::{self, Write};

enum Sink {
    Off,
    Memory(Vec<u8>),
    Writer(io::BufWriter<Box<dyn Write>>),
}

/// A JSON Lines recorder.
pub struct Trace {
    sink: Sink,
    /// Reused buffer for building one line.
    scratch: Vec<u8>,
    /// The first write error; later records are skipped and [`Trace::finish`] reports it.
    error: Option<io::Error>,
    /// Bytes recorded so far (what a run's `--max-trace-bytes` bounds).
    written: u64,
}

impl Default for Trace {
    fn default() -> Self {
        Trace::off()
    }
}

impl Trace {
    /// Records nothing.
    pub fn off() -> Self {
        Trace { sink: Sink::Off, scratch: Vec::new(), error: None, written: 0 }
    }

    /// Records into memory; read it with [`Trace::bytes`] or [`Trace::take_bytes`].
    pub fn memory() -> Self {
        Trace { sink: Sink::Memory(Vec::new()), scratch: Vec::new(), error: None, written: 0 }
    }

    /// Records to `w` (buffered).
    pub fn to_writer(w: Box<dyn Write>) -> Self {
        Trace { sink: Sink::Writer(io::BufWriter::new(w)), scratch: Vec::new(), error: None, written: 0 }
    }

    #[inline]
    pub fn enabled(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// Writes `{"t":t,"ev":ev,<fields of rec>}`. `rec` must serialise as a JSON object
    /// (a struct or a map); anything else is written under the key `"data"`.
    pub fn record<T: Serialize + ?Sized>(&mut self, t: SimTime, ev: &str, rec: &T) {
        if !self.enabled() || self.error.is_some() {
            return;
        }
        // Build the line in the reused buffer: the header, then the record's object with its
        // opening brace turned into the comma that joins them.
        let line = &mut self.scratch;
        line.clear();
        write!(line, "{{\"t\":{},\"ev\":", t.0).expect("writing to a Vec");
        serde_json::to_writer(&mut *line, ev).expect("a str serialises");
        let fields = line.len();
        if let Err(e) = serde_json::to_writer(&mut *line, rec) {
            self.error = Some(e.into());
            return;
        }
        match &line[fields..] {
            b"{}" => {
                line.truncate(fields);
                line.push(b'}');
            }
            [b'{', ..] => line[fields] = b',',
            _ => {
                let value = line.split_off(fields);
                line.extend_from_slice(b",\"data\":");
                line.extend_from_slice(&value);
                line.push(b'}');
            }
        }
        line.push(b'\n');
        let line = &self.scratch;
        self.written += line.len() as u64;
        let res = match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Memory(v) => {
                v.extend_from_slice(line);
                Ok(())
            }
            Sink::Writer(w) => w.write_all(line),
        };
        if let Err(e) = res {
            self.error = Some(e);
        }
    }

    /// Bytes recorded so far, whatever the sink.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// What a memory trace holds so far (empty for other sinks).
    pub fn bytes(&self) -> &[u8] {
        match &self.sink {
            Sink::Memory(v) => v,
            _ => &[],
        }
    }

    /// Takes what a memory trace holds, leaving it empty.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        match &mut self.sink {
            Sink::Memory(v) => std::mem::take(v),
            _ => Vec::new(),
        }
    }

    /// Flushes a writer trace and reports the first error any write met.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match &mut self.sink {
            Sink::Writer(w) => w.flush(),
            _ => Ok(()),
        }
    }
}

/// A segment as the trace shows it.
#[derive(Serialize)]
pub struct SegRecord<'a> {
    pub src: String,
    pub dst: String,
    pub seq: u32,
    pub ack: u32,
    /// tcpdump's spelling (`S`, `S.`, `P.`, `R`, ...).
    pub flags: String,
    /// The IP header's ECN field, when the segment carries one (`ect0`, `ect1`, `ce`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ecn: Option<&'static str>,
    pub win: u16,
    pub len: u32,
    #[serde(skip_serializing_if = "TcpOptions::is_empty")]
    pub options: &'a TcpOptions,
}

impl<'a> SegRecord<'a> {
    pub fn new(seg: &'a Segment) -> Self {
        SegRecord {
            src: seg.src.to_string(),
            dst: seg.dst.to_string(),
            seq: seg.seq,
            ack: seg.ack,
            flags: seg.flags.tcpdump(),
            ecn: (seg.ecn != Ecn::NotEct).then(|| seg.ecn.name()),
            win: seg.window,
            len: seg.payload.len(),
            options: &seg.options,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct R {
        b: u8,
        a: &'static str,
    }

    #[test]
    fn records_put_time_and_kind_first_then_fields_in_order() {
        let mut t = Trace::memory();
        t.record(SimTime(5), "x", &R { b: 1, a: "q" });
        t.record(SimTime(6), "empty", &BTreeMap::<String, u8>::new());
        t.record(SimTime(7), "scalar", &3);
        t.record(SimTime(8), "value", &serde_json::json!({"z": 1, "y": [2]}));
        let s = String::from_utf8(t.take_bytes()).unwrap();
        assert_eq!(
            s,
            "{\"t\":5,\"ev\":\"x\",\"b\":1,\"a\":\"q\"}\n\
             {\"t\":6,\"ev\":\"empty\"}\n\
             {\"t\":7,\"ev\":\"scalar\",\"data\":3}\n\
             {\"t\":8,\"ev\":\"value\",\"y\":[2],\"z\":1}\n"
        );
    }

    #[test]
    fn off_records_nothing() {
        let mut t = Trace::off();
        t.record(SimTime(1), "x", &R { b: 1, a: "q" });
        assert!(!t.enabled() && t.bytes().is_empty());
    }

    #[test]
    fn write_errors_surface_at_finish() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::other("disk full"))
            }
        }
        let mut t = Trace::to_writer(Box::new(Broken));
        t.record(SimTime(1), "x", &1);
        assert!(t.finish().is_err());
    }
}

//! A deterministic mutation fuzzer that runs on stable Rust (cargo-fuzz needs nightly).
//!
//! Inputs are seed files mutated by a ChaCha8 stream: bit flips, interesting bytes,
//! truncations, insertions, deletions, splices from other seeds and corrupted 16/32-bit
//! length fields (either byte order). The target runs under `catch_unwind`; a panic is a
//! failure whose input is written to a file and whose seed and iteration are printed, so
//! `--seed S --iterations I+1` replays it exactly.
//!
//! Shared by `examples/fuzz_pcap.rs` (the CLI CI runs for long) and `tests/pcap_fuzz.rs`
//! (a short run in the test suite).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One failing input.
#[derive(Debug)]
pub struct Crash {
    pub iteration: u64,
    pub message: String,
    pub input: Vec<u8>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub iterations: u64,
    pub crashes: Vec<Crash>,
}

pub struct Mutator {
    rng: ChaCha8Rng,
    seeds: Vec<Vec<u8>>,
}

/// Values that often sit on a parser's edge: zero, one, sign and width boundaries.
const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];
const INTERESTING_U8: [u8; 6] = [0, 1, 0x7f, 0x80, 0xfe, 0xff];

impl Mutator {
    pub fn new(seed: u64, seeds: Vec<Vec<u8>>) -> Mutator {
        assert!(
            !seeds.is_empty(),
            "the fuzzer needs at least one seed input"
        );
        Mutator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seeds,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.rng.next_u64() % n as u64) as usize
        }
    }

    /// The next input: a seed with one to four mutations stacked.
    pub fn next_input(&mut self) -> Vec<u8> {
        let pick = self.below(self.seeds.len());
        let mut data = self.seeds[pick].clone();
        for _ in 0..1 + self.below(4) {
            self.mutate(&mut data);
        }
        data
    }

    fn mutate(&mut self, d: &mut Vec<u8>) {
        let len = d.len();
        match self.below(8) {
            0 if len > 0 => {
                let i = self.below(len);
                d[i] ^= 1 << self.below(8);
            }
            1 if len > 0 => {
                let i = self.below(len);
                d[i] = INTERESTING_U8[self.below(INTERESTING_U8.len())];
            }
            2 => d.truncate(self.below(len + 1)),
            3 => {
                let at = self.below(len + 1);
                let n = 1 + self.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.next_u32() as u8).collect();
                d.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = self.below(len);
                let n = 1 + self.below((len - at).min(64));
                d.drain(at..at + n);
            }
            5 => {
                // Splice: a chunk of another seed, inserted or overwriting.
                let pick = self.below(self.seeds.len());
                let other_len = self.seeds[pick].len();
                let from = self.below(other_len);
                let n = self.below(other_len - from + 1).min(256);
                let chunk = self.seeds[pick]
                    .get(from..from + n)
                    .unwrap_or_default()
                    .to_vec();
                let at = self.below(len + 1);
                if self.below(2) == 0 {
                    d.splice(at..at, chunk);
                } else {
                    let end = (at + chunk.len()).min(len);
                    d.splice(at..end, chunk);
                }
            }
            _ if len >= 4 => self.corrupt_length(d),
            _ => d.push(self.rng.next_u32() as u8),
        }
    }

    /// Overwrites a 4-aligned 16- or 32-bit field (where pcap and pcapng keep their lengths)
    /// with an interesting value, a nearby value or the remaining length, in either byte order.
    fn corrupt_length(&mut self, d: &mut [u8]) {
        let at = self.below(d.len() - 3) & !3;
        let remaining = (d.len() - at) as u32;
        let old = u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]]);
        let v = match self.below(4) {
            0 => INTERESTING_U32[self.below(INTERESTING_U32.len())],
            1 => old.wrapping_add(self.below(17) as u32).wrapping_sub(8),
            2 => remaining.wrapping_add(self.below(9) as u32).wrapping_sub(4),
            _ => self.rng.next_u32(),
        };
        let big = self.below(2) == 0;
        if self.below(3) == 0 {
            let b = if big {
                (v as u16).to_be_bytes()
            } else {
                (v as u16).to_le_bytes()
            };
            d[at..at + 2].copy_from_slice(&b);
        } else {
            let b = if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            d[at..at + 4].copy_from_slice(&b);
        }
    }
}

thread_local! {
    static PANIC_MESSAGE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `target` on `iterations` mutated inputs; panics are caught and returned as crashes.
pub fn run(seed: u64, iterations: u64, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) -> Outcome {
    let mut m = Mutator::new(seed, seeds);
    let previous_hook = panic::take_hook();
    // Keep the message for the report instead of printing a backtrace per crash.
    panic::set_hook(Box::new(|info| {
        PANIC_MESSAGE.with(|m| *m.borrow_mut() = info.to_string())
    }));
    let mut outcome = Outcome::default();
    for iteration in 0..iterations {
        let input = m.next_input();
        if panic::catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let message = PANIC_MESSAGE.with(|m| m.borrow().clone());
            outcome.crashes.push(Crash {
                iteration,
                message,
                input,
            });
        }
        outcome.iterations += 1;
    }
    panic::set_hook(previous_hook);
    outcome
}

/// The files under `dir` whose names end in one of `exts`, sorted by name (read_dir order
/// is not deterministic, and the seed list must be).
pub fn seed_files(dir: &Path, exts: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    paths.retain(|p| {
        p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| exts.contains(&e))
    });
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(&p).ok().map(|b| (p, b)))
        .collect()
}

/// The pcap reader target: any outcome but a panic is fine.
pub fn pcap_target(input: &[u8]) {
    let _ = tcpsim::pcap::read_pcap_bytes(input, "fuzz.pcap");
}

/// The scenario loader target: parsing, validation and the error's location finding.
pub fn scenario_target(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let _ = tcpsim::scenario::parse(&text, "fuzz.toml");
}

/// Seeds for the pcap reader: the committed fixtures, and a capture from tcpsim's own
/// writer with every option it writes (SACK blocks, which the loopback fixtures lack).
pub fn pcap_seeds(root: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = seed_files(&root.join("tests/fixtures/pcap"), &["pcap", "pcapng"])
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    v.push(writer_seed());
    v
}

fn writer_seed() -> Vec<u8> {
    use tcpsim::tcp::segment::{Ecn, Flags, Payload, Segment, TcpOptions};
    let seg = |flags, options, len| Segment {
        src: "10.0.0.1:1000".parse().expect("literal address"),
        dst: "10.0.0.2:80".parse().expect("literal address"),
        seq: 1,
        ack: 1,
        flags,
        ecn: Ecn::NotEct,
        window: 512,
        options,
        payload: Payload::Derived {
            stream: 1,
            offset: 0,
            len,
        },
    };
    let syn = TcpOptions {
        mss: Some(1460),
        wscale: Some(7),
        sack_permitted: true,
        timestamps: Some((1, 0)),
        ..TcpOptions::default()
    };
    let sack = TcpOptions {
        timestamps: Some((2, 1)),
        sack: vec![(10, 20), (30, 40), (50, 60)],
        ..TcpOptions::default()
    };
    let mut w = tcpsim::pcap::PcapWriter::new(Vec::new()).expect("writing to memory");
    for (i, s) in [
        seg(Flags::SYN, syn, 0),
        seg(Flags::ACK, sack, 0),
        seg(Flags::ACK | Flags::PSH, TcpOptions::default(), 40),
    ]
    .iter()
    .enumerate()
    {
        w.write_segment(tcpsim::time::SimTime(i as u64 * 1_000_001), s)
            .expect("writing to memory");
    }
    w.finish().expect("writing to memory")
}

/// Seeds for the scenario loader: the scenario files under models/ and models/readiness/.
pub fn scenario_seeds(root: &Path) -> Vec<Vec<u8>> {
    ["models", "models/readiness"]
        .iter()
        .flat_map(|dir| seed_files(&root.join(dir), &["toml"]))
        .map(|(_, b)| b)
        .collect()
}

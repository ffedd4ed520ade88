//! The discrete-event engine: virtual time, the event queue, seeded randomness, hosts, links
//! and faults. It knows nothing of TCP beyond the [`Segment`](crate::tcp::segment::Segment)
//! it carries; a host's stack plugs in by implementing [`Node`].
//!
//! - [`queue`]: the event queue, ordered by (time, insertion sequence);
//! - [`timer`]: [`TimerSlot`], lazily re-armed timers for the owners of timers;
//! - [`rng`]: one ChaCha key per run, one stream per named consumer;
//! - [`link`]: one direction of a link (delay, rate, queue, loss, duplication, jitter);
//! - [`middlebox`]: a link's chain of stages that judge segments (NATs, filters);
//! - [`fault`]: faults resolved against a simulation and applied;
//! - [`sim`]: the simulator loop, [`Node`] and [`Ctx`].

pub mod fault;
pub mod link;
pub mod middlebox;
pub mod queue;
pub mod rng;
pub mod sim;
pub mod timer;

pub use fault::Fault;
pub use link::{Dir, DropReason, LinkParams, ETH_DATA_LEN};
pub use queue::EventQueue;
pub use rng::{chance, uniform_dur, Prob, RngStreams, StreamRng};
pub use sim::{Ctx, HostState, HostStats, LinkStats, Node, Sim};
pub use timer::{Pop, TimerSlot};

/// Why a simulation could not be built, or a fault not applied. The scenario validator
/// normally catches these first, with file and line; the engine still refuses to panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("unknown host `{0}`")]
    UnknownHost(String),
    #[error("unknown link `{0}`")]
    UnknownLink(String),
    #[error("duplicate {what} `{name}`")]
    Duplicate { what: &'static str, name: String },
    #[error("link `{0}` joins a host to itself")]
    SelfLink(String),
    #[error("link `{link}`: hosts `{a}` and `{b}` are already joined by link `{other}`")]
    ParallelLink { link: String, a: String, b: String, other: String },
    #[error("link `{link}`: {field} = {value} is not a probability in [0, 1]")]
    BadProbability { link: String, field: &'static str, value: f64 },
    #[error("link `{0}`: bandwidth must be positive")]
    ZeroBandwidth(String),
    #[error("fault `{kind}` needs `{field}`")]
    MissingField { kind: &'static str, field: &'static str },
    #[error("[[fault]] `{0}` has no `at` time")]
    FaultWithoutTime(&'static str),
}

//! Link properties a scenario declares as ranges (`delay = "5ms..50ms"`, `loss = "0..0.1"`):
//! each run draws them from its seed, a sweep explores them, and one member reproduces alone.

use std::path::Path;
use tcpsim::scenario::draw::{has_draws, resolve, DurDraw, ProbDraw};
use tcpsim::scenario::{load, parse, Scenario};
use tcpsim::sweep::{run_member, run_seeds, Seeds};
use tcpsim::time::Dur;

mod scenario_text;

/// A short bulk transfer over a link whose delay, loss and (b → a) jitter are drawn.
fn drawn_text() -> String {
    let hosts = scenario_text::two_hosts("drawn-link", "20s", "5ms..50ms");
    format!(
        r#"{hosts}loss = "0.0..0.1"

[link.b_to_a]
jitter = "0..10ms"

[[app]]
kind = "server"
host = "server"
port = 5001

[[app]]
kind = "client"
host = "client"
to = "server:5001"
bytes = 200000
close = true
"#
    )
}

fn drawn() -> Scenario {
    parse(&drawn_text(), "drawn-link.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn ms(n: u64) -> Dur {
    Dur::from_millis(n)
}

#[test]
fn link_ranges_are_drawn_per_seed_within_their_bounds() {
    let sc = drawn();
    assert!(has_draws(&sc));
    let mut delays = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let r = resolve(&sc, seed);
        let l = &r.links[0];
        let (delay, loss) = (l.delay.unwrap(), l.loss.unwrap());
        let jitter = l.b_to_a.as_ref().unwrap().jitter.unwrap();
        assert!(!delay.is_range() && !loss.is_range() && !jitter.is_range(), "seed {seed}: a resolved link draws nothing more");
        assert!((ms(5)..=ms(50)).contains(&delay.lo()), "seed {seed}: delay {delay}");
        assert!((0.0..=0.1).contains(&loss.lo), "seed {seed}: loss {loss}");
        assert!(jitter.lo() <= ms(10), "seed {seed}: jitter {jitter}");
        assert_eq!(resolve(&sc, seed).links[0].delay, l.delay, "seed {seed}: the same seed draws the same");
        delays.insert(delay.lo());
    }
    assert!(delays.len() > 100, "200 seeds draw many delays, got {}", delays.len());
}

/// A scenario that writes no range draws nothing: every model's links resolve as written,
/// so their runs stay what they were.
#[test]
fn fixed_links_resolve_as_written() {
    for (p, sc) in scenario_text::every_model() {
        let r = resolve(&sc, 12345);
        assert_eq!(serde_json::to_string(&r.links).unwrap(), serde_json::to_string(&sc.links).unwrap(), "{}", p.display());
    }
}

/// A fixed probability reads and writes as a number; a range as the string it was.
#[test]
fn probabilities_round_trip_as_written() {
    let sc = drawn();
    let json = serde_json::to_value(&sc.links[0]).unwrap();
    assert_eq!(json["loss"], "0..0.1");
    let fixed: Scenario = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/lossy-partition.toml")).unwrap();
    assert_eq!(serde_json::to_value(&fixed.links[0]).unwrap()["loss"], 0.02);
    assert_eq!(fixed.links[0].loss, Some(ProbDraw::fixed(0.02)));
    assert_eq!("10ms".parse::<DurDraw>().unwrap(), DurDraw::fixed(ms(10)));
}

/// The drawn loss reaches the link: the seeds that drew more loss drop more, and a member of
/// a sweep is the run of its seed alone.
#[test]
fn drawn_loss_reaches_the_link_and_a_member_reproduces() {
    let sc = drawn();
    let seeds = Seeds { from: 0, to: 8 };
    let members = run_seeds(&sc, seeds, 2, &|| {}).unwrap();
    let mut by_loss: Vec<(f64, u64)> = Vec::new();
    for m in &members {
        let (alone, report) = run_member(&sc, m.seed).unwrap();
        assert_eq!(&alone, m, "seed {}: a sweep member is its seed's run", m.seed);
        let dropped: u64 = report.links.iter().map(|l| l.dropped).sum();
        by_loss.push((resolve(&sc, m.seed).links[0].loss.unwrap().lo, dropped));
    }
    by_loss.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (least, most) = (by_loss[0], by_loss[by_loss.len() - 1]);
    assert!(most.0 > least.0 + 0.02, "the seeds drew different losses: {by_loss:?}");
    assert!(most.1 > least.1, "more drawn loss drops more: {by_loss:?}");
}

//! Every trace's scenario (`traces/*/*/scenario.toml`) run in the simulator, and its whole observation log
//! compared with the real kernel's (`script::observe::compare`, default tolerance). The
//! differences must be exactly those `traces/KNOWN-DIVERGENCES.md` lists (section
//! "Observations").

mod replay_support;

use replay_support::{all_traces, known, name};
use std::collections::BTreeSet;
use tcpsim::script::observe::{compare, from_jsonl, TimeTolerance};
use tcpsim::trace::Trace;
use tcpsim::world::World;

#[test]
fn traces_observations_match_the_model() {
    let mut found = BTreeSet::new();
    let mut steps = 0;
    for (trace, dir) in all_traces() {
        let sc = tcpsim::scenario::load(&dir.join("scenario.toml")).unwrap_or_else(|e| panic!("{e}"));
        let log = dir.join("observations.jsonl");
        let kernel = from_jsonl(&name(&log), &std::fs::read_to_string(&log).unwrap()).unwrap();
        let mut world = World::build(&sc, sc.seed, Trace::off()).unwrap();
        let model = world.run(&sc);
        steps += kernel.len();
        for d in compare(&kernel, &model, TimeTolerance::default()) {
            found.insert(format!("{trace} {} {}", d.step, d.field));
            println!("{trace} step {} ({}) {}: kernel {} model {}", d.step, d.op, d.field, d.kernel, d.model);
        }
    }
    assert!(steps > 400, "every step of every log compared: {steps}");
    let listed = known("Observations");
    let new: Vec<_> = found.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&found).collect();
    assert!(new.is_empty() && stale.is_empty(), "not in KNOWN-DIVERGENCES.md: {new:#?}\nlisted but not found: {stale:#?}");
}

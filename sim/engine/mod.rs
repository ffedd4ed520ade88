//! The discrete-event engine: virtual time, the event queue, seeded randomness, hosts, links
//! and faults. It knows nothing of TCP; hosts plug into it.

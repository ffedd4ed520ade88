//! FreeBSD's kqueue filters on a TCP socket (linux-tcp-facts §8.1; sys/kern/uipc_socket.c
//! `filt_soread`, `filt_sowrite`, `filt_soempty`). Every event goes through the rule checker.

mod readiness_support;

use readiness_support::*;
use tcpsim::errno::Errno;
use tcpsim::rules::Checker;
use tcpsim::socket::kqueue::{freebsd_errno, FreeBsdSocket, KEvent, KFilter, EV_EOF};
use tcpsim::socket::view::SockView;
use tcpsim::tcp::state::TcpState;
use tcpsim::time::SimTime;

fn ev(filter: KFilter, data: i64, flags: u16, fflags: u32) -> Option<KEvent> {
    Some(KEvent {
        filter,
        data,
        flags,
        fflags,
    })
}

struct Kq {
    checker: Checker,
    t: u64,
}

impl Kq {
    fn new() -> Kq {
        Kq {
            checker: Checker::new(0xb5d),
            t: 0,
        }
    }
    fn get(&mut self, v: &SockView, filter: KFilter, note_lowat: Option<u32>) -> Option<KEvent> {
        self.t += 1;
        self.checker.kevent(SimTime(self.t), v, filter, note_lowat)
    }
    fn read(&mut self, v: &SockView) -> Option<KEvent> {
        self.get(v, KFilter::Read, None)
    }
    fn write(&mut self, v: &SockView) -> Option<KEvent> {
        self.get(v, KFilter::Write, None)
    }
}

impl Drop for Kq {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.checker.is_clean(), "{:?}", self.checker.failures());
        }
    }
}

#[test]
fn read_filter_data_is_bytes_available_and_respects_lowat() {
    let mut kq = Kq::new();
    assert_eq!(kq.read(&established()), None);
    let five = with_data(established(), 5);
    assert_eq!(kq.read(&five), ev(KFilter::Read, 5, 0, 0));
    let lowat10 = SockView {
        rcvlowat: 10,
        ..five.clone()
    };
    assert_eq!(kq.read(&lowat10), None, "SO_RCVLOWAT 10");
    assert_eq!(kq.get(&five, KFilter::Read, Some(6)), None, "NOTE_LOWAT 6");
    assert_eq!(
        kq.get(&lowat10, KFilter::Read, Some(5)),
        ev(KFilter::Read, 5, 0, 0),
        "NOTE_LOWAT overrides"
    );
}

#[test]
fn read_filter_sets_eof_on_fin_even_with_data_pending() {
    let mut kq = Kq::new();
    assert_eq!(kq.read(&peer_fin(3)), ev(KFilter::Read, 3, EV_EOF, 0));
    assert_eq!(kq.read(&peer_fin(0)), ev(KFilter::Read, 0, EV_EOF, 0));
    // A FIN shuts only the receive side: the write filter is unaffected.
    assert_eq!(kq.write(&peer_fin(0)), ev(KFilter::Write, 32768, 0, 0));
}

#[test]
fn rst_and_timeout_set_eof_on_both_filters_with_the_error() {
    let mut kq = Kq::new();
    for (err, code) in [
        (Errno::ECONNRESET, 54),
        (Errno::ETIMEDOUT, 60),
        (Errno::ECONNREFUSED, 61),
    ] {
        assert_eq!(freebsd_errno(err), code);
        let dead = SockView {
            snd_space: 0,
            ..torn_down(Some(err), 4)
        };
        assert_eq!(kq.read(&dead), ev(KFilter::Read, 4, EV_EOF, code), "{err}");
        assert_eq!(
            kq.write(&dead),
            ev(KFilter::Write, 0, EV_EOF, code),
            "{err}"
        );
    }
    // Once the error has been read, EOF remains with fflags 0.
    assert_eq!(
        kq.read(&torn_down(None, 0)),
        ev(KFilter::Read, 0, EV_EOF, 0)
    );
}

#[test]
fn write_filter_is_silent_while_connecting_and_on_listeners() {
    let mut kq = Kq::new();
    assert_eq!(kq.write(&in_state(TcpState::SynSent)), None);
    assert_eq!(kq.read(&in_state(TcpState::SynSent)), None);
    assert_eq!(kq.write(&listener(3)), None);
    assert_eq!(kq.write(&fresh()), None, "never connected: PR_CONNREQUIRED");
    assert_eq!(kq.write(&established()), ev(KFilter::Write, 32768, 0, 0));
}

#[test]
fn write_filter_needs_the_send_lowat_and_fires_with_eof_after_shut_wr() {
    let mut kq = Kq::new();
    let tight = SockView {
        snd_space: 2047,
        ..established()
    };
    assert_eq!(kq.write(&tight), None, "below MCLBYTES");
    assert_eq!(
        kq.get(&tight, KFilter::Write, Some(1000)),
        ev(KFilter::Write, 2047, 0, 0)
    );
    assert_eq!(kq.write(&sndbuf_full()), None);
    let shut = SockView {
        snd_space: 100,
        ..local_shut_wr()
    };
    assert_eq!(kq.write(&shut), ev(KFilter::Write, 100, EV_EOF, 0));
    // A small send buffer lowers the default low-water mark to its size.
    let small = SockView {
        sndbuf: 1000,
        snd_space: 1000,
        ..established()
    };
    assert_eq!(FreeBsdSocket::from_view(&small).snd_lowat, 1000);
    assert_eq!(kq.write(&small), ev(KFilter::Write, 1000, 0, 0));
}

#[test]
fn listener_read_filter_reports_the_accept_queue() {
    let mut kq = Kq::new();
    assert_eq!(kq.read(&listener(0)), None);
    assert_eq!(kq.read(&listener(2)), ev(KFilter::Read, 2, 0, 0));
}

#[test]
fn empty_filter_fires_when_everything_is_acknowledged() {
    let mut kq = Kq::new();
    let pending = SockView {
        snd_used: 1200,
        ..established()
    };
    assert_eq!(kq.get(&pending, KFilter::Empty, None), None);
    assert_eq!(
        kq.get(&established(), KFilter::Empty, None),
        ev(KFilter::Empty, 0, 0, 0)
    );
    assert_eq!(
        kq.get(&listener(0), KFilter::Empty, None),
        ev(KFilter::Empty, 0, 0, 0)
    );
}

#[test]
fn the_freebsd_mapping_of_linux_states() {
    let fresh = FreeBsdSocket::from_view(&fresh());
    assert!(!fresh.cantrcvmore && !fresh.cantsendmore && !fresh.isconnected);
    let fin = FreeBsdSocket::from_view(&peer_fin(0));
    assert!(fin.cantrcvmore && !fin.cantsendmore && fin.isconnected);
    let dead = FreeBsdSocket::from_view(&torn_down(Some(Errno::ECONNRESET), 0));
    assert!(dead.cantrcvmore && dead.cantsendmore && !dead.isconnected);
    assert_eq!(dead.so_error, Some(Errno::ECONNRESET));
    let wr = FreeBsdSocket::from_view(&local_shut_wr());
    assert!(!wr.cantrcvmore && wr.cantsendmore && wr.isconnected);
}

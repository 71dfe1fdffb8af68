//! The state machine of `reg.rs`, driven with made-up completions: every
//! transition, a completion for a stale sequence, a cancelled request,
//! overflow.

use super::*;

const IN: i32 = libc::POLLIN as i32;
const OUT: i32 = libc::POLLOUT as i32;

fn reg(mode: Mode, seq: u32, multishot: bool) -> Reg {
    let mut r = Reg::new(Token(1), Interest::READABLE, mode);
    r.armed(seq, multishot);
    r
}

fn cqe(seq: u32, result: i32, more: bool, fresh: bool) -> Completion {
    Completion {
        seq,
        result,
        more,
        fresh,
    }
}

#[test]
fn a_fresh_oneshot_completion_is_reported_and_ends_the_request() {
    let mut r = reg(Mode::Level, 7, false);
    assert_eq!(
        r.complete(cqe(7, IN, false, true)),
        Verdict::Report(IN as u32)
    );
    assert_eq!(r.request, Request::Idle);
}

#[test]
fn a_stale_sequence_is_ignored() {
    for mode in [Mode::Level, Mode::Edge, Mode::Oneshot] {
        let mut r = reg(mode, 7, mode == Mode::Edge);
        let before = r.request;
        assert_eq!(r.complete(cqe(6, IN, false, true)), Verdict::Nothing);
        assert_eq!(r.request, before, "{mode:?}");
    }
    let mut r = reg(Mode::Oneshot, 7, false);
    r.reported();
    assert_eq!(r.complete(cqe(7, IN, false, true)), Verdict::Nothing);
}

#[test]
fn a_completion_that_waited_is_checked() {
    let mut r = reg(Mode::Level, 1, false);
    assert_eq!(r.complete(cqe(1, IN, false, false)), Verdict::Check);
    let mut r = reg(Mode::Edge, 1, true);
    assert_eq!(r.complete(cqe(1, IN, true, false)), Verdict::Check);
    assert_eq!(r.request, Request::Multishot(1), "still armed");
}

#[test]
fn an_error_is_checked() {
    let mut r = reg(Mode::Level, 1, false);
    assert_eq!(
        r.complete(cqe(1, -libc::EBADF, false, true)),
        Verdict::Check
    );
    assert_eq!(r.request, Request::Idle);
    assert_eq!(r.checked(libc::POLLNVAL as u32), Verdict::Closed);
}

#[test]
fn a_request_cancelled_by_the_kernel_is_replaced() {
    let mut r = reg(Mode::Level, 3, false);
    let v = r.complete(cqe(3, -libc::ECANCELED, false, true));
    assert_eq!(v, Verdict::Arm { multishot: false });
    let mut r = reg(Mode::Edge, 3, true);
    let v = r.complete(cqe(3, -libc::ECANCELED, false, false));
    assert_eq!(v, Verdict::Arm { multishot: true });
}

/// Overflow: the kernel ends a multishot request whose completion does
/// not fit. The ending completion is not reported; the new request's
/// arming reports the readiness, once.
#[test]
fn a_multishot_ended_by_overflow_is_replaced_not_reported() {
    for fresh in [true, false] {
        let mut r = reg(Mode::Edge, 4, true);
        let v = r.complete(cqe(4, IN, false, fresh));
        assert_eq!(v, Verdict::Arm { multishot: true });
        r.armed(5, true);
        assert_eq!(r.complete(cqe(4, IN, true, fresh)), Verdict::Nothing);
        let v = r.complete(cqe(5, IN, true, true));
        assert_eq!(v, Verdict::Report(IN as u32));
    }
}

#[test]
fn unasked_readiness_parks_on_a_multishot_request() {
    let mut r = Reg::new(Token(1), Interest::empty(), Mode::Level);
    r.armed(1, false);
    let rdhup = i32::from(libc::POLLRDHUP);
    let v = r.complete(cqe(1, rdhup, false, true));
    assert_eq!(v, Verdict::Arm { multishot: true });
    r.armed(2, true);
    assert_eq!(r.complete(cqe(2, rdhup, true, true)), Verdict::Nothing);
    assert_eq!(r.checked(rdhup as u32), Verdict::Nothing, "parked already");
}

#[test]
fn a_mixed_or_priority_completion_is_confirmed() {
    let both = Interest::READABLE | Interest::WRITABLE;
    let mut r = Reg::new(Token(1), both, Mode::Level);
    r.armed(1, false);
    assert_eq!(r.complete(cqe(1, OUT, false, true)), Verdict::Check);
    let mut r = Reg::new(Token(1), Interest::PRIORITY, Mode::Level);
    r.armed(1, false);
    let pri = libc::POLLPRI as i32 | IN;
    assert_eq!(r.complete(cqe(1, pri, false, true)), Verdict::Check);
}

#[test]
fn checks_report_park_or_wait_for_the_next_change() {
    let mut r = reg(Mode::Level, 1, false);
    r.request = Request::Idle;
    assert_eq!(r.checked(IN as u32), Verdict::Report(IN as u32));
    assert_eq!(r.checked(0), Verdict::Arm { multishot: false });
    let w = Reg::new(Token(2), Interest::WRITABLE, Mode::Level);
    let rdhup = libc::POLLRDHUP as u32;
    assert_eq!(w.checked(rdhup), Verdict::Arm { multishot: true }, "park");
    let e = reg(Mode::Edge, 1, true);
    assert_eq!(e.checked(0), Verdict::Nothing, "the multishot stays");
}

#[test]
fn reports_disarm_re_arm_or_keep() {
    let mut r = reg(Mode::Oneshot, 1, false);
    r.request = Request::Idle;
    let after = r.reported();
    assert_eq!((after.cancel, after.arm, after.rearm), (None, false, false));
    assert_eq!(r.request, Request::Disarmed);
    assert_eq!(r.checked(IN as u32), Verdict::Nothing);

    let mut r = reg(Mode::Level, 2, true); // parked
    let after = r.reported();
    assert_eq!(
        (after.cancel, after.arm, after.rearm),
        (Some(2), false, true)
    );
    assert_eq!((r.request, r.place), (Request::Idle, Place::Rearm));

    let mut r = reg(Mode::Edge, 3, true);
    assert!(!r.reported().arm, "the multishot stays");
    r.request = Request::Idle;
    assert!(r.reported().arm);
}

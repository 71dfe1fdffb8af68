//! The `http` example's request-head scan (`examples/http/proto.rs`, built
//! into this test) against httparse 1.x, whose rules it follows: on
//! mutations of valid requests both must say the same thing (partial,
//! complete with the same length, or refused for the same kind of reason).
//! And its two ways of checking a `Host` value (while scanning, and after)
//! must agree. A seeded generator, so a failure repeats.

#![allow(dead_code)]

#[path = "../examples/http/date.rs"]
mod date;
#[path = "../examples/http/proto.rs"]
mod proto;

use std::mem::MaybeUninit;

use proto::{parse, Limits, Parsed, Status};

/// No limit gets in the way of the comparison.
const UNLIMITED: Limits = Limits {
    max_head: usize::MAX,
    max_body: u64::MAX,
};

/// xorshift64: deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// What httparse makes of `buf`: Ok(Some(len)) complete, Ok(None)
/// partial, Err(error).
fn httparse_says(buf: &[u8]) -> Result<Option<usize>, httparse::Error> {
    let mut headers = [MaybeUninit::<httparse::Header<'_>>::uninit(); proto::MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers)? {
        httparse::Status::Complete(n) => Ok(Some(n)),
        httparse::Status::Partial => Ok(None),
    }
}

/// Whether the example's verdict on `buf` is the one httparse's implies.
fn agrees(buf: &[u8]) -> bool {
    match (httparse_says(buf), parse(buf, UNLIMITED)) {
        (Ok(None), Parsed::Partial) => true,
        // Complete: the example may still refuse it on meaning (a bad
        // Host, Content-Length, method...), never on syntax.
        (Ok(Some(n)), Parsed::Request(req)) => req.len == n,
        (Ok(Some(_)), Parsed::Reject(_)) => true,
        (Err(httparse::Error::TooManyHeaders), Parsed::Reject(s)) => {
            s == Status::HeaderFieldsTooLarge
        }
        (Err(httparse::Error::Version), Parsed::Reject(s)) => {
            s == Status::VersionNotSupported || s == Status::BadRequest
        }
        (Err(_), Parsed::Reject(s)) => s == Status::BadRequest,
        _ => false,
    }
}

#[test]
fn the_scan_follows_httparse_on_mutated_requests() {
    let seeds: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        b"POST /a?b=c HTTP/1.0\r\nHost: [::1]:80\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
        b"\r\nHEAD http://x/ HTTP/1.1\nhost: a%41b\nExpect: 100-continue\nX-A: \t v \t\n\n",
        b"BREW * HTTP/1.1\r\nHOST:\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    let alphabet: &[u8] = b"\r\n \t:\0\x7f\x80\xff/%[]aZ09.-H";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut differ = Vec::new();
    for _ in 0..200_000 {
        let mut v = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(v.len() + 1);
            let byte = alphabet[rng.below(alphabet.len())];
            match rng.below(4) {
                0 if at < v.len() => v[at] = byte,
                1 => v.insert(at, byte),
                2 if at < v.len() => {
                    v.remove(at);
                }
                _ => v.truncate(at),
            }
        }
        if !agrees(&v) && differ.len() < 10 {
            differ.push(String::from_utf8_lossy(&v).into_owned());
        }
    }
    assert!(
        differ.is_empty(),
        "the scan and httparse differ on {differ:#?}"
    );
}

#[test]
fn both_host_checks_agree() {
    let chars: &[u8] = b"aZ09.-_~!$&'()*+,;=:[]%/ @fF";
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..100_000 {
        let value: Vec<u8> = (0..rng.below(12))
            .map(|_| chars[rng.below(chars.len())])
            .collect();
        // A trailing space sends the value down the general path.
        let head =
            |tail: &[u8]| [b"GET / HTTP/1.1\r\nHost: ", &value[..], tail, b"\r\n\r\n"].concat();
        let fast = matches!(parse(&head(b""), UNLIMITED), Parsed::Request(_));
        let general = matches!(parse(&head(b" "), UNLIMITED), Parsed::Request(_));
        assert_eq!(fast, general, "Host: {:?}", String::from_utf8_lossy(&value));
        if fast {
            accepted += 1;
        } else {
            refused += 1;
        }
    }
    // The generator reaches both outcomes.
    assert!(accepted > 1000 && refused > 1000, "{accepted} / {refused}");
}

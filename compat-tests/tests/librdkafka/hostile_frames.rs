//! Frames no client sends: each one closes its own connection, and a client on another
//! connection keeps producing and consuming.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;

use crate::common::Broker;
use crate::support::{flush, producer, read_partition, send};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Request header v1/v2 prefix: api key, version, correlation id, client id.
fn header(api_key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation.to_be_bytes());
    h.extend_from_slice(&4i16.to_be_bytes());
    h.extend_from_slice(b"evil");
    h
}

fn hostile_inputs() -> Vec<(&'static str, Vec<u8>)> {
    // Deterministic pseudo-random garbage.
    let mut x: u32 = 0x9e37_79b9;
    let garbage: Vec<u8> = (0..512)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let mut garbage_body = vec![0xde, 0xad]; // api key -8531: no such API
    garbage_body.extend_from_slice(&garbage);

    // Metadata v1 whose topic array claims 2^31-1 entries.
    let mut huge_array = header(3, 1, 2);
    huge_array.extend_from_slice(&i32::MAX.to_be_bytes());
    huge_array.extend_from_slice(&garbage[..16]);

    // Produce v7 whose body is garbage after the header.
    let mut produce_garbage = header(0, 7, 3);
    produce_garbage.extend_from_slice(&garbage);

    // A header whose client id length runs past the end of the frame.
    let mut truncated = header(3, 1, 4);
    truncated.truncate(8);
    truncated.extend_from_slice(&i16::MAX.to_be_bytes());
    truncated.extend_from_slice(b"abc");

    let mut oversized = 200_000_000i32.to_be_bytes().to_vec(); // > socket.request.max.bytes
    oversized.extend_from_slice(&header(18, 3, 5));

    vec![
        ("oversized length prefix (200 MB)", oversized),
        ("negative length prefix", (-1i32).to_be_bytes().to_vec()),
        ("garbage body", frame(&garbage_body)),
        ("huge array length", frame(&huge_array)),
        ("produce with garbage body", frame(&produce_garbage)),
        ("truncated header", frame(&truncated)),
    ]
}

/// True when the broker closed (EOF or reset); false when it answered or kept it open.
fn closed_by_broker(s: &mut TcpStream) -> Result<(), String> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!(
            "the broker answered with {n} bytes instead of closing"
        )),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err("the connection was still open after 10 s".to_string())
        }
        Err(e) => Err(format!("read error {e}")),
    }
}

#[test]
fn malformed_and_oversized_frames_close_only_their_connection() {
    let mut broker = Broker::start(&[]);
    // A client connected before, and staying connected through, the hostile frames.
    let (p, log) = producer(&broker.bootstrap(), &[]);
    send(
        &p,
        BaseRecord::<(), _>::to("survivor")
            .partition(0)
            .payload("before"),
    );
    flush(&p);
    assert_eq!(log.acked_count(), 1, "{:?}", log.failures());

    let mut failures = Vec::new();
    for (name, bytes) in hostile_inputs() {
        let mut s = TcpStream::connect(broker.addr()).expect("connect");
        // The broker may close before reading everything: a failed write is a close too.
        let verdict = match s.write_all(&bytes) {
            Ok(()) => closed_by_broker(&mut s),
            Err(_) => Ok(()),
        };
        if let Err(e) = verdict {
            failures.push(format!("{name}: {e}"));
        }
        assert!(
            broker.is_running(),
            "the broker died on {name}; stderr tail:\n{}",
            broker.stderr_tail(30)
        );
    }

    // The earlier client still works: produce and consume.
    send(
        &p,
        BaseRecord::<(), _>::to("survivor")
            .partition(0)
            .payload("after"),
    );
    flush(&p);
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    assert_eq!(log.acked_count(), 2);
    let got = read_partition(&broker.bootstrap(), "survivor", 0, 2);
    let values: Vec<&[u8]> = got.iter().map(|m| m.payload().unwrap()).collect();
    assert_eq!(values, vec![&b"before"[..], &b"after"[..]]);

    assert!(
        failures.is_empty(),
        "hostile frames not rejected:\n{}",
        failures.join("\n")
    );
}

#[test]
fn configured_socket_request_max_bytes_is_enforced() {
    let broker = Broker::start(&["socket.request.max.bytes=200000"]);
    let (p, log) = producer(&broker.bootstrap(), &[]);
    send(
        &p,
        BaseRecord::<(), _>::to("limited")
            .partition(0)
            .payload("small"),
    );
    flush(&p);
    assert_eq!(log.acked_count(), 1, "{:?}", log.failures());

    // A well-formed header in a frame just over the configured limit.
    let mut body = header(18, 3, 1);
    body.resize(200_001, 0);
    let mut s = TcpStream::connect(broker.addr()).expect("connect");
    let verdict = match s.write_all(&frame(&body)) {
        Ok(()) => closed_by_broker(&mut s),
        Err(_) => Ok(()),
    };
    if let Err(e) = verdict {
        panic!(
            "a {}-byte frame over socket.request.max.bytes=200000: {e}",
            body.len()
        );
    }

    send(
        &p,
        BaseRecord::<(), _>::to("limited")
            .partition(0)
            .payload("still fine"),
    );
    flush(&p);
    assert!(log.failures().is_empty(), "{:?}", log.failures());
    let got = read_partition(&broker.bootstrap(), "limited", 0, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].payload(), Some(&b"still fine"[..]));
}

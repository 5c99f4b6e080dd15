//! Every compression codec round-trips keys, values and headers (duplicate keys, order, null
//! and empty values, binary bytes) byte for byte.

use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use crate::common::Broker;
use crate::support::{flush, producer, read_partition, send};

type HeaderList = Vec<(String, Option<Vec<u8>>)>;

fn record(i: usize) -> (Vec<u8>, Vec<u8>, HeaderList) {
    let key = format!("key-{i}").into_bytes();
    // Binary values (all byte values, including 0x00 and 0xff) of varying, compressible length.
    let mut value: Vec<u8> = (0..(i % 7) * 50).map(|j| ((i + j) % 256) as u8).collect();
    value.extend_from_slice(format!("|value-{i}").as_bytes());
    let headers = vec![
        ("dup".to_string(), Some(b"one".to_vec())),
        ("seq".to_string(), Some(i.to_string().into_bytes())),
        ("dup".to_string(), Some(b"two".to_vec())),
        ("empty".to_string(), Some(Vec::new())),
        ("null".to_string(), None),
        ("dup".to_string(), Some(vec![0, 255, i as u8])),
    ];
    (key, value, headers)
}

fn round_trip(codec: &str) {
    let broker = Broker::start(&[]);
    let topic = format!("codec-{codec}");
    let (p, log) = producer(
        &broker.bootstrap(),
        &[
            ("compression.codec", codec),
            ("linger.ms", "20"),
            ("batch.num.messages", "100"),
        ],
    );
    let n = 400;
    let sent: Vec<_> = (0..n).map(record).collect();
    for (key, value, headers) in &sent {
        let mut h = OwnedHeaders::new();
        for (k, v) in headers {
            h = h.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        send(
            &p,
            BaseRecord::to(&topic)
                .partition(0)
                .key(key.as_slice())
                .payload(value.as_slice())
                .headers(h),
        );
    }
    flush(&p);
    assert!(log.failures().is_empty(), "{codec}: {:?}", log.failures());
    assert_eq!(log.acked_count(), n, "{codec}: not all acknowledged");

    let got = read_partition(&broker.bootstrap(), &topic, 0, n);
    assert_eq!(got.len(), n, "{codec}: records read back");
    for (i, (m, (key, value, headers))) in got.iter().zip(&sent).enumerate() {
        assert_eq!(m.offset(), i as i64, "{codec}: offset");
        assert_eq!(m.key(), Some(key.as_slice()), "{codec}: key of record {i}");
        assert_eq!(
            m.payload(),
            Some(value.as_slice()),
            "{codec}: value of record {i}"
        );
        let h = m.headers().expect("headers");
        let got_headers: HeaderList = h
            .iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(&got_headers, headers, "{codec}: headers of record {i}");
    }
}

#[test]
fn codec_none_round_trips() {
    round_trip("none");
}

#[test]
fn codec_gzip_round_trips() {
    round_trip("gzip");
}

#[test]
fn codec_snappy_round_trips() {
    round_trip("snappy");
}

#[test]
fn codec_lz4_round_trips() {
    round_trip("lz4");
}

#[test]
fn codec_zstd_round_trips() {
    round_trip("zstd");
}

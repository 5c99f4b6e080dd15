//! The wire protocol spoken by hand (kafka-protocol encodings over a TCP socket), for the cases
//! no client library produces on purpose: versions above ours, removed versions, corrupt batches,
//! pipelining, empty record sets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::Broker;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, FetchRequest,
    FetchResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxbow_wire::header::{decode_response_header, request_header_version};

fn request<R: Encodable>(key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Vec<u8> {
    request_with_body_version(key, version, version, correlation_id, body)
}

/// A request whose header claims `version` but whose body is encoded as `body_version`
/// (a client from the future, as far as kafka-protocol's encoder lets us pretend).
fn request_with_body_version<R: Encodable>(
    key: ApiKey,
    version: i16,
    body_version: i16,
    correlation_id: i32,
    body: &R,
) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, request_header_version(key, version))
        .unwrap();
    body.encode(&mut buf, body_version)
        .unwrap_or_else(|e| panic!("encode {key:?} v{body_version}: {e}"));
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

/// Reads one response frame; `None` if the broker closed the connection.
fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    Some(Bytes::from(body))
}

fn call<Req: Encodable, Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    s.write_all(&request(key, version, 7, req)).unwrap();
    let mut frame = read_frame(s).expect("response");
    let h = decode_response_header(&mut frame, key, version).unwrap();
    assert_eq!(h.correlation_id, 7);
    Resp::decode(&mut frame, version).unwrap()
}

fn connect(b: &Broker) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", b.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn create_topic(s: &mut TcpStream, name: &'static str) {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let resp: kafka_protocol::messages::CreateTopicsResponse =
        call(s, ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0);
}

#[test]
fn api_versions_above_ours_is_answered_as_v0_with_the_list() {
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    s.write_all(&request_with_body_version(
        ApiKey::ApiVersions,
        99,
        4,
        3,
        &ApiVersionsRequest::default(),
    ))
    .unwrap();
    let mut frame = read_frame(&mut s).expect("answer");
    let h = decode_response_header(&mut frame, ApiKey::ApiVersions, 0).unwrap();
    assert_eq!(h.correlation_id, 3);
    let resp = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    let produce = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .expect("Produce advertised");
    assert_eq!(
        produce.min_version, 0,
        "Produce is advertised from v0 like Kafka 4"
    );
    // The same connection then works at a version we speak.
    let ok: ApiVersionsResponse = call(
        &mut s,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(ok.error_code, 0);
    assert!(
        ok.api_keys
            .iter()
            .all(|k| k.api_key != ApiKey::ConsumerGroupHeartbeat as i16),
        "an API without a handler was advertised"
    );
}

#[test]
fn produce_v2_gets_unsupported_version_per_partition() {
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    // A v2 body is the v3 layout minus the transactional id: acks, timeout, topics.
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(2)
        .with_correlation_id(5)
        .encode(&mut frame, 1)
        .unwrap();
    frame.extend_from_slice(&[0, 1, 0, 0, 0x03, 0xe8]); // acks=1, timeout=1000
    frame.extend_from_slice(&[0, 0, 0, 1, 0, 2, b'v', b'2']); // one topic "v2"
    frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]); // partition 3, null records
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    s.write_all(&out).unwrap();
    let f = read_frame(&mut s).expect("an answer, not a disconnect");
    let expected: Vec<u8> = [
        &5i32.to_be_bytes()[..],         // correlation id (header v0)
        &[0, 0, 0, 1, 0, 2, b'v', b'2'], // topic "v2"
        &[0, 0, 0, 1, 0, 0, 0, 3],       // partition 3
        &35i16.to_be_bytes(),            // UNSUPPORTED_VERSION
        &(-1i64).to_be_bytes(),          // base offset
        &(-1i64).to_be_bytes(),          // log append time (v2)
        &0i32.to_be_bytes(),             // throttle time (v1+)
    ]
    .concat();
    assert_eq!(&f[..], &expected[..]);
    // The connection stays usable.
    let md: MetadataResponse = call(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(md.brokers.len(), 1);
}

#[test]
fn corrupt_batch_gets_corrupt_message() {
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    create_topic(&mut s, "raw-crc");
    let batch = oxbow_wire::batch::build_batch(
        0,
        1_700_000_000_000,
        &[(None, Some(Bytes::from_static(b"payload")))],
    );
    let mut bad = BytesMut::from(&batch[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // inside the CRC-covered records
    for (records, expected) in [(bad.freeze(), 2i16), (batch.clone(), 0)] {
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("raw-crc")))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])]);
        let resp: ProduceResponse = call(&mut s, ApiKey::Produce, 9, &req);
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, expected, "CORRUPT_MESSAGE is 2");
        if expected == 0 {
            assert_eq!(
                p.base_offset, 0,
                "the corrupt batch must not have taken an offset"
            );
        }
    }
}

#[test]
fn pipelined_requests_are_answered_in_order_and_empty_fetch_is_empty_bytes() {
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    create_topic(&mut s, "raw-empty");
    let mut burst = Vec::new();
    for corr in 100..140 {
        burst.extend(request(
            ApiKey::Metadata,
            12,
            corr,
            &MetadataRequest::default(),
        ));
    }
    s.write_all(&burst).unwrap();
    for corr in 100..140 {
        let mut f = read_frame(&mut s).expect("response");
        let h = decode_response_header(&mut f, ApiKey::Metadata, 12).unwrap();
        assert_eq!(h.correlation_id, corr, "responses out of order");
    }
    let fetch = FetchRequest::default()
        .with_max_wait_ms(100)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("raw-empty")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let resp: FetchResponse = call(&mut s, ApiKey::Fetch, 12, &fetch);
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 0);
    assert_eq!(
        p.records.as_ref().map(|r| r.len()),
        Some(0),
        "empty record set must be empty bytes, not null"
    );
}

/// A response that is ready must not wait behind a later request's long wait (a fetch long
/// poll here; an fsync in the produce path). Responses stay in request order, but the writer
/// sends what is ready as soon as the next reply is not.
#[test]
fn ready_response_is_not_held_behind_a_later_long_poll() {
    let b = Broker::start(&[]);
    let mut s = connect(&b);
    create_topic(&mut s, "raw-hold");
    // The fetch waits up to 60 s for data; the socket read times out after 10 s (`connect`),
    // so the Metadata answer has to go out while the fetch is still waiting.
    let fetch = FetchRequest::default()
        .with_max_wait_ms(60_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("raw-hold")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let mut burst = request(ApiKey::Metadata, 12, 1, &MetadataRequest::default());
    burst.extend(request(ApiKey::Fetch, 12, 2, &fetch));
    burst.extend(request(
        ApiKey::Metadata,
        12,
        3,
        &MetadataRequest::default(),
    ));
    s.write_all(&burst).unwrap();
    let mut f = read_frame(&mut s).expect("the Metadata answer before the fetch completes");
    let h = decode_response_header(&mut f, ApiKey::Metadata, 12).unwrap();
    assert_eq!(h.correlation_id, 1);

    // Data ends the long poll; the fetch then answers with it, and the Metadata behind it follows.
    let mut other = connect(&b);
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("raw-hold")))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(oxbow_wire::batch::build_batch(
                    0,
                    1_700_000_000_000,
                    &[(None, Some(Bytes::from_static(b"wake")))],
                )))])]);
    let resp: ProduceResponse = call(&mut other, ApiKey::Produce, 9, &req);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);

    let mut f = read_frame(&mut s).expect("the fetch answer");
    let h = decode_response_header(&mut f, ApiKey::Fetch, 12).unwrap();
    assert_eq!(h.correlation_id, 2);
    let fetched = FetchResponse::decode(&mut f, 12).unwrap();
    let records = fetched.responses[0].partitions[0].records.clone().unwrap();
    assert!(
        !records.is_empty(),
        "the fetch ended on data, not on its timeout"
    );
    let mut f = read_frame(&mut s).expect("the second Metadata answer");
    let h = decode_response_header(&mut f, ApiKey::Metadata, 12).unwrap();
    assert_eq!(h.correlation_id, 3);
}

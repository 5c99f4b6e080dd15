//! Arbitrary bytes as a connection's input: frames are split off and their headers decoded,
//! and the request bodies of every API are decoded too. Nothing may panic.
#![no_main]
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use oxbow_wire::frame::take_frame;
use oxbow_wire::header::decode_request;
use kafka_protocol::messages::RequestKind;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = take_frame(&mut buf, 1 << 20) {
        if let Ok(req) = decode_request(frame) {
            let mut body: Bytes = req.body.clone();
            let _ = RequestKind::decode(req.api_key, &mut body, req.api_version());
        }
    }
});

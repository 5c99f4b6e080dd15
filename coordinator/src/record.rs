//! Records of the internal topic `__consumer_offsets`, in Kafka's own byte layout, so that tools
//! reading that topic (`kafka-console-consumer --formatter ...OffsetsMessageFormatter`,
//! `kafka-dump-log --offsets-decoder`) understand what Oxbow writes.
//!
//! Every record is a key and an optional value; a missing value (`None`) is a tombstone, which
//! log compaction uses to forget the key. Both start with a big-endian `int16` version.
//!
//! | key version | key fields                                  | value schema                 |
//! |-------------|---------------------------------------------|------------------------------|
//! | 0, 1        | `group: string, topic: string, partition: int32` | `OffsetCommitValue`     |
//! | 2           | `group: string`                             | `GroupMetadataValue`         |
//! | 3+          | KIP-848 consumer-group records              | not handled here             |
//!
//! `OffsetCommitValue` (we write v3, or v1 when the commit carries an explicit expiry):
//!
//! | version | fields                                                                      |
//! |---------|-----------------------------------------------------------------------------|
//! | 0, 2    | `offset: int64, metadata: string, commit_timestamp: int64`                  |
//! | 1       | `offset: int64, metadata: string, commit_timestamp: int64, expire_timestamp: int64` |
//! | 3       | `offset: int64, leader_epoch: int32, metadata: string, commit_timestamp: int64` |
//! | 4       | as 3, flexible (compact strings, tagged fields)                              |
//!
//! `GroupMetadataValue` (we write v3):
//!
//! | version | fields                                                                        |
//! |---------|-------------------------------------------------------------------------------|
//! | 0       | `protocol_type: string, generation: int32, protocol: nullable string, leader: nullable string, members: [member_id, client_id, client_host, session_timeout: int32, subscription: bytes, assignment: bytes]` |
//! | 1       | members gain `rebalance_timeout: int32` before `session_timeout`              |
//! | 2       | `current_state_timestamp: int64` after `leader`                               |
//! | 3       | members gain `group_instance_id: nullable string` after `member_id`          |
//! | 4       | as 3, flexible                                                                |
//!
//! Strings are `int16` length + UTF-8 (length -1 = null); bytes are `int32` length + data.
//! Flexible versions use unsigned-varint `length + 1` and end each struct with tagged fields.

use bytes::{BufMut, Bytes, BytesMut};

/// Key of an offset commit: which group committed which partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OffsetCommitKey {
    /// The group the offset belongs to.
    pub group: String,
    /// Topic name of the committed partition.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The next offset the group will consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 if unknown.
    pub leader_epoch: i32,
    /// Free-form metadata the client attached to the commit; returned by OffsetFetch as is.
    pub metadata: String,
    /// When the coordinator accepted the commit.
    pub commit_timestamp_ms: i64,
    /// Explicit expiry requested by OffsetCommit v2-v4 `retention_time_ms`; written as value v1.
    pub expire_timestamp_ms: Option<i64>,
}

/// Key of a group's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupMetadataKey {
    /// The group id.
    pub group: String,
}

/// The persisted part of a classic group: the last completed generation and its assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMetadataValue {
    /// `consumer`, `connect`, ... as sent by the members; empty for none.
    pub protocol_type: String,
    /// Generation id of the group.
    pub generation: i32,
    /// Selected protocol (assignor), `None` when the group has no members.
    pub protocol: Option<String>,
    /// Leader member id, `None` when the group has no members.
    pub leader: Option<String>,
    /// When the group entered its current state, -1 if unknown (values before v2). Offsets
    /// retention of an Empty group counts from here.
    pub current_state_timestamp_ms: i64,
    /// Members of the generation.
    pub members: Vec<MemberMetadataValue>,
}

/// One member of a persisted generation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    /// Member id handed out by the coordinator.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Client id from the request header of the member's JoinGroup.
    pub client_id: String,
    /// Address the member connected from.
    pub client_host: String,
    /// Rebalance timeout the member asked for.
    pub rebalance_timeout_ms: i32,
    /// Session timeout the member asked for.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol (for `consumer`: a
    /// ConsumerProtocolSubscription), byte for byte.
    pub subscription: Bytes,
    /// The assignment the leader gave this member, byte for byte.
    pub assignment: Bytes,
}

/// One record of `__consumer_offsets`. A `None` value is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A committed offset (or its deletion).
    OffsetCommit {
        /// Group, topic and partition.
        key: OffsetCommitKey,
        /// The offset, `None` to delete it.
        value: Option<OffsetCommitValue>,
    },
    /// A group's metadata (or its deletion).
    GroupMetadata {
        /// The group.
        key: GroupMetadataKey,
        /// The metadata, `None` to delete the group.
        value: Option<GroupMetadataValue>,
    },
}

/// Why a `__consumer_offsets` record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes ended before the schema did.
    #[error("record truncated")]
    Truncated,
    /// A key version this module does not know. Versions 3 and up are KIP-848 records: a loader
    /// of classic groups should skip them.
    #[error("unsupported key version {0}")]
    UnsupportedKeyVersion(i16),
    /// A value version this module does not know.
    #[error("unsupported value version {0}")]
    UnsupportedValueVersion(i16),
    /// A string that is not UTF-8.
    #[error("invalid UTF-8 in string")]
    InvalidUtf8,
    /// A null or negative length where the schema does not allow it.
    #[error("invalid length {0}")]
    InvalidLength(i64),
}

/// Key version written for offset commits.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of group metadata.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value version written for group metadata.
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

impl Record {
    /// Encodes the record as Kafka does: key bytes and value bytes (`None` for a tombstone).
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        match self {
            Record::OffsetCommit { key, value } => {
                let mut k = BytesMut::new();
                k.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut k, &key.group);
                put_string(&mut k, &key.topic);
                k.put_i32(key.partition);
                let v = value.as_ref().map(|v| {
                    let mut b = BytesMut::new();
                    match v.expire_timestamp_ms {
                        Some(expire) => {
                            b.put_i16(1);
                            b.put_i64(v.offset);
                            put_string(&mut b, &v.metadata);
                            b.put_i64(v.commit_timestamp_ms);
                            b.put_i64(expire);
                        }
                        None => {
                            b.put_i16(3);
                            b.put_i64(v.offset);
                            b.put_i32(v.leader_epoch);
                            put_string(&mut b, &v.metadata);
                            b.put_i64(v.commit_timestamp_ms);
                        }
                    }
                    b.freeze()
                });
                (k.freeze(), v)
            }
            Record::GroupMetadata { key, value } => {
                let mut k = BytesMut::new();
                k.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut k, &key.group);
                let v = value.as_ref().map(|v| {
                    let mut b = BytesMut::new();
                    b.put_i16(GROUP_METADATA_VALUE_VERSION);
                    put_string(&mut b, &v.protocol_type);
                    b.put_i32(v.generation);
                    put_nullable_string(&mut b, v.protocol.as_deref());
                    put_nullable_string(&mut b, v.leader.as_deref());
                    b.put_i64(v.current_state_timestamp_ms);
                    b.put_i32(v.members.len() as i32);
                    for m in &v.members {
                        put_string(&mut b, &m.member_id);
                        put_nullable_string(&mut b, m.group_instance_id.as_deref());
                        put_string(&mut b, &m.client_id);
                        put_string(&mut b, &m.client_host);
                        b.put_i32(m.rebalance_timeout_ms);
                        b.put_i32(m.session_timeout_ms);
                        b.put_i32(m.subscription.len() as i32);
                        b.put_slice(&m.subscription);
                        b.put_i32(m.assignment.len() as i32);
                        b.put_slice(&m.assignment);
                    }
                    b.freeze()
                });
                (k.freeze(), v)
            }
        }
    }

    /// Decodes a record from its key and value bytes (`None` or empty value = tombstone).
    /// Trailing bytes after the known fields are ignored, as Kafka's readers ignore fields
    /// added by later versions.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Record, RecordError> {
        let mut k = Reader::new(key);
        let key_version = k.i16()?;
        let value = value.filter(|v| !v.is_empty());
        match key_version {
            0 | 1 => {
                let key = OffsetCommitKey {
                    group: k.string(false)?,
                    topic: k.string(false)?,
                    partition: k.i32()?,
                };
                let value = value.map(decode_offset_value).transpose()?;
                Ok(Record::OffsetCommit { key, value })
            }
            2 => {
                let key = GroupMetadataKey {
                    group: k.string(false)?,
                };
                let value = value.map(decode_group_value).transpose()?;
                Ok(Record::GroupMetadata { key, value })
            }
            v => Err(RecordError::UnsupportedKeyVersion(v)),
        }
    }

    /// The group this record belongs to.
    pub fn group_id(&self) -> &str {
        match self {
            Record::OffsetCommit { key, .. } => &key.group,
            Record::GroupMetadata { key, .. } => &key.group,
        }
    }
}

fn decode_offset_value(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedValueVersion(version));
    }
    let flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string(flexible)?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = if version == 1 {
        Some(r.i64()?).filter(|t| *t != -1)
    } else {
        None
    };
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group_value(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(bytes);
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return Err(RecordError::UnsupportedValueVersion(version));
    }
    let flexible = version >= 4;
    let protocol_type = r.string(flexible)?;
    let generation = r.i32()?;
    let protocol = r.nullable_string(flexible)?;
    let leader = r.nullable_string(flexible)?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len(flexible)?;
    let mut members = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let member_id = r.string(flexible)?;
        let group_instance_id = if version >= 3 {
            r.nullable_string(flexible)?
        } else {
            None
        };
        let client_id = r.string(flexible)?;
        let client_host = r.string(flexible)?;
        let session_or_rebalance = r.i32()?;
        let (rebalance_timeout_ms, session_timeout_ms) = if version >= 1 {
            (session_or_rebalance, r.i32()?)
        } else {
            // v0 has no rebalance timeout; Kafka used the session timeout for both.
            (session_or_rebalance, session_or_rebalance)
        };
        let subscription = r.bytes(flexible)?;
        let assignment = r.bytes(flexible)?;
        if flexible {
            r.skip_tagged_fields()?;
        }
        members.push(MemberMetadataValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

pub(crate) fn put_string(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_nullable_string(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(b, s),
        None => b.put_i16(-1),
    }
}

/// A bounds-checked big-endian reader over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.buf.len() < n {
            return Err(RecordError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::InvalidLength(-1))
    }

    /// Length of a string/bytes/array: `None` for null.
    pub(crate) fn length(
        &mut self,
        flexible: bool,
        wide: bool,
    ) -> Result<Option<usize>, RecordError> {
        let len = if flexible {
            self.uvarint()? as i64 - 1
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(RecordError::InvalidLength(n)),
            n => Ok(Some(n as usize)),
        }
    }

    pub(crate) fn nullable_string(
        &mut self,
        flexible: bool,
    ) -> Result<Option<String>, RecordError> {
        match self.length(flexible, false)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| RecordError::InvalidUtf8)
            }
        }
    }

    pub(crate) fn string(&mut self, flexible: bool) -> Result<String, RecordError> {
        self.nullable_string(flexible)?
            .ok_or(RecordError::InvalidLength(-1))
    }

    fn bytes(&mut self, flexible: bool) -> Result<Bytes, RecordError> {
        match self.length(flexible, true)? {
            None => Err(RecordError::InvalidLength(-1)),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n)?)),
        }
    }

    pub(crate) fn array_len(&mut self, flexible: bool) -> Result<usize, RecordError> {
        Ok(self.length(flexible, true)?.unwrap_or(0))
    }

    pub(crate) fn skip_tagged_fields(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn string() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9._ -]{0,20}"
    }

    fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
    }

    fn member() -> impl Strategy<Value = MemberMetadataValue> {
        (
            string(),
            proptest::option::of(string()),
            string(),
            string(),
            any::<i32>(),
            any::<i32>(),
            bytes(),
            bytes(),
        )
            .prop_map(|(m, i, c, h, r, s, sub, a)| MemberMetadataValue {
                member_id: m,
                group_instance_id: i,
                client_id: c,
                client_host: h,
                rebalance_timeout_ms: r,
                session_timeout_ms: s,
                subscription: sub,
                assignment: a,
            })
    }

    fn record() -> impl Strategy<Value = Record> {
        let offset = (
            string(),
            string(),
            any::<i32>(),
            proptest::option::of((
                any::<i64>(),
                any::<i32>(),
                string(),
                any::<i64>(),
                proptest::option::of(0i64..i64::MAX),
            )),
        )
            .prop_map(|(g, t, p, v)| Record::OffsetCommit {
                key: OffsetCommitKey {
                    group: g,
                    topic: t,
                    partition: p,
                },
                value: v.map(|(offset, epoch, metadata, ts, expire)| OffsetCommitValue {
                    offset,
                    // v1 (explicit expiry) carries no leader epoch.
                    leader_epoch: if expire.is_some() { -1 } else { epoch },
                    metadata,
                    commit_timestamp_ms: ts,
                    expire_timestamp_ms: expire,
                }),
            });
        let group = (
            string(),
            proptest::option::of((
                string(),
                any::<i32>(),
                proptest::option::of(string()),
                proptest::option::of(string()),
                any::<i64>(),
                proptest::collection::vec(member(), 0..4),
            )),
        )
            .prop_map(|(g, v)| Record::GroupMetadata {
                key: GroupMetadataKey { group: g },
                value: v.map(|(pt, gen, p, l, ts, members)| GroupMetadataValue {
                    protocol_type: pt,
                    generation: gen,
                    protocol: p,
                    leader: l,
                    current_state_timestamp_ms: ts,
                    members,
                }),
            });
        prop_oneof![offset, group]
    }

    proptest! {
        #[test]
        fn round_trip(rec in record()) {
            let (k, v) = rec.encode();
            let back = Record::decode(&k, v.as_deref()).unwrap();
            prop_assert_eq!(back, rec);
        }

        #[test]
        fn decode_never_panics(k in proptest::collection::vec(any::<u8>(), 0..64),
                               v in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..128))) {
            let _ = Record::decode(&k, v.as_deref());
        }
    }

    #[test]
    fn offset_key_layout_matches_kafka() {
        let rec = Record::OffsetCommit {
            key: OffsetCommitKey {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
            },
            value: None,
        };
        let (k, v) = rec.encode();
        assert_eq!(&k[..], &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
        assert!(v.is_none());
    }

    #[test]
    fn offset_value_v3_layout_matches_kafka() {
        let rec = Record::OffsetCommit {
            key: OffsetCommitKey {
                group: "g".into(),
                topic: "t".into(),
                partition: 0,
            },
            value: Some(OffsetCommitValue {
                offset: 5,
                leader_epoch: 2,
                metadata: "m".into(),
                commit_timestamp_ms: 9,
                expire_timestamp_ms: None,
            }),
        };
        let (_, v) = rec.encode();
        let v = v.unwrap();
        let mut want = vec![0, 3];
        want.extend_from_slice(&5i64.to_be_bytes());
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(&[0, 1, b'm']);
        want.extend_from_slice(&9i64.to_be_bytes());
        assert_eq!(&v[..], &want[..]);
    }

    #[test]
    fn decodes_old_and_flexible_versions() {
        // Offset value v0: offset, metadata, commit timestamp.
        let mut v0 = vec![0, 0];
        v0.extend_from_slice(&42i64.to_be_bytes());
        v0.extend_from_slice(&[0, 2, b'h', b'i']);
        v0.extend_from_slice(&100i64.to_be_bytes());
        let key = [0u8, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0];
        let rec = Record::decode(&key, Some(&v0)).unwrap();
        let Record::OffsetCommit { value: Some(v), .. } = rec else {
            panic!("wrong record")
        };
        assert_eq!(
            (v.offset, v.leader_epoch, v.metadata.as_str()),
            (42, -1, "hi")
        );

        // Offset value v4 (flexible): compact string, trailing tagged fields.
        let mut v4 = vec![0, 4];
        v4.extend_from_slice(&1i64.to_be_bytes());
        v4.extend_from_slice(&3i32.to_be_bytes());
        v4.extend_from_slice(&[3, b'a', b'b']);
        v4.extend_from_slice(&5i64.to_be_bytes());
        v4.extend_from_slice(&[1, 0, 2, 9, 9]); // one unknown tagged field
        let rec = Record::decode(&key, Some(&v4)).unwrap();
        let Record::OffsetCommit { value: Some(v), .. } = rec else {
            panic!("wrong record")
        };
        assert_eq!(
            (v.offset, v.leader_epoch, v.metadata.as_str()),
            (1, 3, "ab")
        );

        // Group value v0 with one member.
        let mut g0 = vec![0, 0];
        g0.extend_from_slice(&[0, 8]);
        g0.extend_from_slice(b"consumer");
        g0.extend_from_slice(&4i32.to_be_bytes());
        g0.extend_from_slice(&[0, 5]);
        g0.extend_from_slice(b"range");
        g0.extend_from_slice(&[0, 1, b'm']);
        g0.extend_from_slice(&1i32.to_be_bytes());
        g0.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        g0.extend_from_slice(&10_000i32.to_be_bytes());
        g0.extend_from_slice(&1i32.to_be_bytes());
        g0.push(7);
        g0.extend_from_slice(&0i32.to_be_bytes());
        let gkey = [0u8, 2, 0, 1, b'g'];
        let rec = Record::decode(&gkey, Some(&g0)).unwrap();
        let Record::GroupMetadata { value: Some(v), .. } = rec else {
            panic!("wrong record")
        };
        assert_eq!(v.generation, 4);
        assert_eq!(v.current_state_timestamp_ms, -1);
        assert_eq!(v.members[0].session_timeout_ms, 10_000);
        assert_eq!(&v.members[0].subscription[..], &[7]);
    }

    #[test]
    fn unknown_key_version_is_reported() {
        assert_eq!(
            Record::decode(&[0, 3, 0, 0], None),
            Err(RecordError::UnsupportedKeyVersion(3))
        );
    }
}

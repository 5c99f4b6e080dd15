//! Incremental fetch sessions (KIP-227).
//!
//! A full fetch (epoch 0) creates a session holding the consumer's partitions and their fetch
//! positions, closing the session it names, if any. Later fetches (the session id and the next epoch) send only what
//! changed, and the response carries only partitions with news: records, a moved high
//! watermark / last stable offset / log start offset, or an error. Epoch -1 closes the session
//! and makes a sessionless full fetch. Sessions are capped (`capacity`); when full, the least
//! recently used session is evicted and its consumer gets FETCH_SESSION_ID_NOT_FOUND next time,
//! which makes it start a new one.

use std::collections::HashMap;
use std::sync::Mutex;

use kafka_protocol::ResponseError;
use uuid::Uuid;

/// A partition as a session knows it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    /// What the last response told the client, to decide whether there is news.
    pub last_high_watermark: i64,
    pub last_log_start_offset: i64,
}

#[derive(Debug)]
struct Session {
    next_epoch: i32,
    partitions: Vec<SessionPartition>,
    last_used: u64,
}

/// How a fetch request relates to sessions, decided in the request's ordered phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// No session: every requested partition, every partition in the response.
    Sessionless,
    /// A full fetch that created session `id`.
    New { id: i32 },
    /// An incremental fetch of session `id`: only partitions with news are returned.
    Incremental { id: i32 },
}

#[derive(Debug)]
pub struct FetchSessions {
    capacity: usize,
    /// A `std` mutex: held for map operations only, never across an await.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
    clock: u64,
}

/// Key of a partition in a session.
pub type PartKey = (String, i32);

impl FetchSessions {
    pub fn new(capacity: usize) -> Self {
        FetchSessions {
            capacity,
            inner: Mutex::new(Inner {
                next_id: 1,
                ..Default::default()
            }),
        }
    }

    /// Applies a request's session fields. `requested` are the partitions the request names,
    /// `forgotten` those it drops. Returns the mode and the partitions to fetch.
    pub fn begin(
        &self,
        session_id: i32,
        epoch: i32,
        requested: Vec<SessionPartition>,
        forgotten: &[PartKey],
    ) -> Result<(SessionMode, Vec<SessionPartition>), ResponseError> {
        let mut g = self.inner.lock().unwrap();
        g.clock += 1;
        let now = g.clock;
        match (session_id, epoch) {
            (_, -1) => {
                if session_id != 0 {
                    g.sessions.remove(&session_id);
                }
                Ok((SessionMode::Sessionless, requested))
            }
            (old, 0) => {
                // A full fetch closes the session it names (if any) and starts a new one.
                if old != 0 {
                    g.sessions.remove(&old);
                }
                if g.sessions.len() >= self.capacity {
                    let oldest = g
                        .sessions
                        .iter()
                        .min_by_key(|(_, s)| s.last_used)
                        .map(|(id, _)| *id);
                    if let Some(id) = oldest {
                        g.sessions.remove(&id);
                    }
                }
                let mut id = g.next_id;
                while id == 0 || g.sessions.contains_key(&id) {
                    id = id.wrapping_add(1).max(1);
                }
                g.next_id = id.wrapping_add(1).max(1);
                g.sessions.insert(
                    id,
                    Session {
                        next_epoch: 1,
                        partitions: requested.clone(),
                        last_used: now,
                    },
                );
                Ok((SessionMode::New { id }, requested))
            }
            (0, _) => Err(ResponseError::InvalidFetchSessionEpoch),
            (id, epoch) => {
                let s = g
                    .sessions
                    .get_mut(&id)
                    .ok_or(ResponseError::FetchSessionIdNotFound)?;
                if s.next_epoch != epoch {
                    return Err(ResponseError::InvalidFetchSessionEpoch);
                }
                s.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                s.last_used = now;
                s.partitions.retain(|p| {
                    !forgotten
                        .iter()
                        .any(|(t, n)| *t == p.topic && *n == p.partition)
                });
                for r in requested {
                    match s
                        .partitions
                        .iter_mut()
                        .find(|p| p.topic == r.topic && p.partition == r.partition)
                    {
                        Some(p) => {
                            p.fetch_offset = r.fetch_offset;
                            p.partition_max_bytes = r.partition_max_bytes;
                        }
                        None => s.partitions.push(r),
                    }
                }
                Ok((SessionMode::Incremental { id }, s.partitions.clone()))
            }
        }
    }

    /// Records what a response told the client, so the next incremental fetch knows what is new.
    pub fn record_sent(&self, id: i32, sent: &[(PartKey, i64, i64)]) {
        let mut g = self.inner.lock().unwrap();
        if let Some(s) = g.sessions.get_mut(&id) {
            for ((topic, partition), hw, lso) in sent {
                if let Some(p) = s
                    .partitions
                    .iter_mut()
                    .find(|p| p.topic == *topic && p.partition == *partition)
                {
                    p.last_high_watermark = *hw;
                    p.last_log_start_offset = *lso;
                }
            }
        }
    }

    /// Drops every session's knowledge of a deleted topic.
    pub fn forget_topic(&self, topic: &str) {
        let mut g = self.inner.lock().unwrap();
        for s in g.sessions.values_mut() {
            s.partitions.retain(|p| p.topic != topic);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(t: &str, p: i32, off: i64) -> SessionPartition {
        SessionPartition {
            topic: t.into(),
            topic_id: Uuid::nil(),
            partition: p,
            fetch_offset: off,
            partition_max_bytes: 1000,
            last_high_watermark: -1,
            last_log_start_offset: -1,
        }
    }

    #[test]
    fn session_lifecycle() {
        let s = FetchSessions::new(2);
        let (mode, parts) = s
            .begin(0, 0, vec![part("a", 0, 0), part("a", 1, 0)], &[])
            .unwrap();
        let SessionMode::New { id } = mode else {
            panic!("{mode:?}")
        };
        assert_eq!(parts.len(), 2);
        let (mode, parts) = s
            .begin(id, 1, vec![part("a", 0, 5)], &[("a".into(), 1)])
            .unwrap();
        assert_eq!(mode, SessionMode::Incremental { id });
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].fetch_offset, 5);
        assert_eq!(
            s.begin(id, 1, vec![], &[]).unwrap_err(),
            ResponseError::InvalidFetchSessionEpoch
        );
        assert_eq!(
            s.begin(999, 1, vec![], &[]).unwrap_err(),
            ResponseError::FetchSessionIdNotFound
        );
        // A full fetch naming a session replaces it (franz-go resets sessions this way).
        let (mode, _) = s.begin(id, 0, vec![part("a", 0, 7)], &[]).unwrap();
        let SessionMode::New { id } = mode else {
            panic!("{mode:?}")
        };
        assert_eq!(s.begin(id, 1, vec![], &[]).unwrap().1[0].fetch_offset, 7);
        // Capacity 2: a third session evicts the least recently used.
        s.begin(0, 0, vec![], &[]).unwrap();
        s.begin(0, 0, vec![], &[]).unwrap();
        assert_eq!(
            s.begin(id, 2, vec![], &[]).unwrap_err(),
            ResponseError::FetchSessionIdNotFound
        );
    }
}

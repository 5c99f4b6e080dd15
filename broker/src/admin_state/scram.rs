//! SCRAM credentials (KIP-554) in `oxbow-scram-credentials.json`: per user and mechanism the
//! salt, iterations and, as Kafka keeps them, the stored key `H(HMAC(salted, "Client Key"))`
//! and server key `HMAC(salted, "Server Key")` (RFC 5802) — never the salted password itself.
//! Nothing authenticates against them until SASL lands; they are kept so that
//! `kafka-configs.sh --alter --add-config 'SCRAM-SHA-256=[...]'` and `--describe` behave as on
//! Kafka.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};

use super::hex;

pub const SCRAM_FILE: &str = "oxbow-scram-credentials.json";

pub const SCRAM_SHA_256: i8 = 1;
pub const SCRAM_SHA_512: i8 = 2;
/// Kafka's bounds (`ScramMechanism.minIterations`, `ScramControlManager.MAX_ITERATIONS`).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;
/// Most users with credentials; an upsertion of a new user past it is refused.
pub const MAX_USERS: usize = 10_000;
/// Longest salt / salted password accepted (SHA-512 output is 64 bytes; Kafka's salts are 64).
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: String,
    pub stored_key: String,
    pub server_key: String,
    pub iterations: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScramDoc {
    /// user -> mechanism -> credential.
    pub users: BTreeMap<String, BTreeMap<i8, ScramCredential>>,
}

fn keys<D: Digest, M: Mac + hmac::digest::KeyInit>(salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mac = |msg: &[u8]| {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(salted).expect("any key length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    };
    let client_key = mac(b"Client Key");
    let stored_key = D::digest(&client_key).to_vec();
    (stored_key, mac(b"Server Key"))
}

/// The stored credential for a salted password, or None for an unknown mechanism.
pub fn credential(
    mechanism: i8,
    salt: &[u8],
    salted: &[u8],
    iterations: i32,
) -> Option<ScramCredential> {
    let (stored, server) = match mechanism {
        SCRAM_SHA_256 => keys::<Sha256, Hmac<Sha256>>(salted),
        SCRAM_SHA_512 => keys::<Sha512, Hmac<Sha512>>(salted),
        _ => return None,
    };
    Some(ScramCredential {
        salt: hex(salt),
        stored_key: hex(&stored),
        server_key: hex(&server),
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7677_stored_and_server_keys() {
        // RFC 7677's SCRAM-SHA-256 example: password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==,
        // 4096 iterations (keys computed independently with Python's hashlib/hmac).
        let salted = [
            0xc4, 0xa4, 0x95, 0x10, 0x32, 0x3a, 0xb4, 0xf9, 0x52, 0xca, 0xc1, 0xfa, 0x99, 0x44,
            0x19, 0x39, 0xe7, 0x8e, 0xa7, 0x4d, 0x6b, 0xe8, 0x1d, 0xdf, 0x70, 0x96, 0xe8, 0x75,
            0x13, 0xdc, 0x61, 0x5d,
        ];
        let c = credential(SCRAM_SHA_256, b"salt", &salted, 4096).unwrap();
        assert_eq!(c.salt, "73616c74");
        assert_eq!(
            c.stored_key,
            "586e5df283e6dceb5c3e791d8b8528ec191e664045ce971792e2e6b5bb13e2a6"
        );
        assert_eq!(
            c.server_key,
            "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5"
        );
        assert!(credential(9, b"", b"", 4096).is_none());
        assert_eq!(
            credential(SCRAM_SHA_512, b"s", b"p", 4096)
                .unwrap()
                .stored_key
                .len(),
            128
        );
    }
}

//! Scenario layer: WireGuard keys (Curve25519) of the lab's VPN tunnels, as bytes, with the
//! base64 text `wg` and wg-quick files use. WireGuard stands in for AWS's IPsec: where AWS
//! hands out a pre-shared key per tunnel, the lab hands out a key pair per tunnel end.

use std::fmt;

use boringtun::x25519::{PublicKey, StaticSecret};

/// A private key. Its `Debug` never shows the key (a `Lab` is printed in test failures).
#[derive(Clone, PartialEq, Eq)]
pub struct WgSecret([u8; 32]);

impl WgSecret {
    /// A fresh random key from the OS's generator.
    pub fn generate() -> WgSecret {
        WgSecret(StaticSecret::random_from_rng(rand_core::OsRng).to_bytes())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> WgSecret {
        WgSecret(bytes)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// For boringtun's `Tunn::new`.
    pub fn secret(&self) -> StaticSecret {
        StaticSecret::from(self.0)
    }

    /// The matching public key, for boringtun's `Tunn::new` on the other end.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from(&self.secret())
    }

    /// As `wg genkey` prints it.
    pub fn to_base64(&self) -> String {
        base64(&self.0)
    }

    /// The public key as `wg pubkey` prints it.
    pub fn public_base64(&self) -> String {
        base64(self.public_key().as_bytes())
    }

    /// A key as `wg genkey` prints it; None unless it is 44 characters of base64 for 32 bytes.
    pub fn from_base64(text: &str) -> Option<WgSecret> {
        unbase64(text).map(WgSecret)
    }
}

impl fmt::Debug for WgSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WgSecret(public {})", self.public_base64())
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as WireGuard writes keys. Hand-written: the
/// one place it is needed is 32-byte keys, not worth a dependency.
fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unbase64(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().as_bytes();
    // 32 bytes: 43 characters and one `=`.
    if text.len() != 44 || text[43] != b'=' {
        return None;
    }
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(33);
    for &c in &text[..43] {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    // The 2 bits left over must be zero in a canonical encoding.
    if bits != 0 {
        return None;
    }
    out.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_and_round_trips_keys() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        let key = WgSecret::generate();
        let text = key.to_base64();
        assert_eq!(text.len(), 44);
        assert_eq!(WgSecret::from_base64(&text), Some(key));
        assert_eq!(WgSecret::from_base64("not a key"), None);
        assert_eq!(WgSecret::from_base64(&text[..43]), None);
    }

    #[test]
    fn public_key_is_what_wg_pubkey_prints() {
        // RFC 7748 §6.1's Alice; `echo dwdt...LCo= | wg pubkey` prints the same.
        let secret = WgSecret::from_base64("dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=").unwrap();
        assert_eq!(
            secret.public_base64(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        assert!(!format!("{secret:?}").contains("dwdtCnMY"));
    }
}

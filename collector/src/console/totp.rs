//! TOTP second factor (RFC 6238: HMAC-SHA1, 30 s steps, 6 digits) and the base32
//! encoding authenticator apps use for the shared secret.

use hmac::{Hmac, Mac};
use rand::Rng;

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// Steps of clock drift accepted either side of now.
pub const DRIFT_STEPS: i64 = 1;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A fresh random 160-bit secret, base32 encoded (no padding).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill(&mut bytes);
    base32_encode(&bytes)
}

/// RFC 4648 base32 without padding.
pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes base32 (case-insensitive, spaces and padding ignored).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let value = BASE32
            .iter()
            .position(|&b| b as char == c.to_ascii_uppercase())? as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// The code for time step `step` (HOTP of the step counter, RFC 4226 truncation).
pub fn code_at_step(secret: &[u8], step: i64, digits: u32) -> u32 {
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[digest.len() - 1] & 0x0f) as usize;
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The time step of a unix time in seconds.
pub fn step_of(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The current 6-digit code as text (for tests and for showing during setup).
pub fn current_code(secret_base32: &str, unix_secs: i64) -> Option<String> {
    let secret = base32_decode(secret_base32)?;
    Some(format!(
        "{:0width$}",
        code_at_step(&secret, step_of(unix_secs), DIGITS),
        width = DIGITS as usize
    ))
}

/// Checks `code` against the secret at `unix_secs` (± [`DRIFT_STEPS`]). Returns the
/// matching step, which must be above `last_used_step` (a code is accepted once).
pub fn verify(secret_base32: &str, code: &str, unix_secs: i64, last_used_step: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let secret = base32_decode(secret_base32)?;
    let now = step_of(unix_secs);
    (now - DRIFT_STEPS..=now + DRIFT_STEPS)
        .filter(|step| *step > last_used_step)
        .find(|step| code_at_step(&secret, *step, DIGITS) == wanted)
}

/// `otpauth://` URI for authenticator apps.
pub fn provisioning_uri(secret_base32: &str, username: &str) -> String {
    format!(
        "otpauth://totp/Shaobing:{user}?secret={secret_base32}&issuer=Shaobing&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        user = username
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            })
            .collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        // RFC 6238 appendix B (8 digits).
        assert_eq!(code_at_step(secret, step_of(59), 8), 94_287_082);
        assert_eq!(code_at_step(secret, step_of(1_111_111_109), 8), 7_081_804);
        assert_eq!(code_at_step(secret, step_of(2_000_000_000), 8), 69_279_037);
        assert_eq!(code_at_step(secret, step_of(20_000_000_000), 8), 65_353_130);
    }

    #[test]
    fn base32_round_trip_matches_rfc4648() {
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI======").unwrap(), b"foobar");
        assert_eq!(base32_decode("mzxw6ytboi").unwrap(), b"foobar");
        assert!(base32_decode("not base32!").is_none());
        let secret = new_secret();
        assert_eq!(base32_decode(&secret).unwrap().len(), 20);
    }

    #[test]
    fn verify_accepts_drift_and_refuses_replay() {
        let secret = base32_encode(b"12345678901234567890");
        let now = 1_111_111_109;
        let code = current_code(&secret, now).unwrap();
        let step = verify(&secret, &code, now, 0).unwrap();
        assert_eq!(step, step_of(now));
        assert_eq!(verify(&secret, &code, now + 30, 0), Some(step));
        assert_eq!(verify(&secret, &code, now, step), None, "replay accepted");
        assert_eq!(
            verify(&secret, &code, now + 120, 0),
            None,
            "stale code accepted"
        );
        assert_eq!(verify(&secret, "12345", now, 0), None);
    }
}

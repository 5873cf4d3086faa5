//! Passwords: argon2id hashing and verification, the complexity policy, and random
//! one-time passwords for new accounts and resets.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;

use super::error::{ConsoleError, ConsoleResult};
use super::i18n::Lang;

/// Shortest password the policy accepts.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// argon2id cost parameters. The default is OWASP's recommendation (19 MiB, 2 passes);
/// tests use a cheap setting so debug builds stay fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
}

impl Default for PasswordCost {
    fn default() -> Self {
        PasswordCost {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
        }
    }
}

impl PasswordCost {
    /// The cheapest setting argon2 allows; for tests only.
    pub fn for_tests() -> Self {
        PasswordCost {
            memory_kib: 64,
            iterations: 1,
        }
    }
}

/// Hashes `password` with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str, cost: PasswordCost) -> ConsoleResult<String> {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .map_err(|e| ConsoleError::PasswordHash(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| ConsoleError::PasswordHash(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ConsoleError::PasswordHash(e.to_string()))
}

/// Whether `password` matches `phc_hash` (parameters are read from the hash).
pub fn verify_password(password: &str, phc_hash: &str) -> bool {
    match PasswordHash::new(phc_hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks the complexity policy (等保: length and mixed character classes).
/// Returns the reason in the operator's language when the password is refused.
pub fn check_policy(password: &str, username: &str, lang: Lang) -> Result<(), String> {
    let classes = [
        password.chars().any(|c| c.is_ascii_lowercase()),
        password.chars().any(|c| c.is_ascii_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|present| **present)
    .count();
    let too_short = password.chars().count() < MIN_PASSWORD_CHARS;
    let contains_name =
        !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase());
    if too_short || classes < 3 || contains_name {
        return Err(match lang {
            Lang::Zh => format!(
                "密码至少 {MIN_PASSWORD_CHARS} 位，包含大写字母、小写字母、数字、符号中的至少三类，且不含用户名"
            ),
            Lang::En => format!(
                "passwords need at least {MIN_PASSWORD_CHARS} characters from at least three of: upper case, lower case, digits, symbols, and must not contain the user name"
            ),
        });
    }
    Ok(())
}

/// A random password that satisfies the policy (for bootstrap, new accounts, resets).
pub fn random_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnpqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGITS: &[u8] = b"23456789";
    const SYMBOLS: &[u8] = b"-_.@#%+";
    let mut rng = rand::rng();
    let mut pick = |set: &[u8]| set[rng.random_range(0..set.len())] as char;
    let mut chars: Vec<char> = vec![pick(LOWER), pick(UPPER), pick(DIGITS), pick(SYMBOLS)];
    let all: Vec<u8> = [LOWER, UPPER, DIGITS].concat();
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    // Move the guaranteed classes away from the front.
    let mut rng = rand::rng();
    for i in (1..chars.len()).rev() {
        chars.swap(i, rng.random_range(0..=i));
    }
    chars.into_iter().collect()
}

/// A random token of `bytes` bytes, hex encoded (session ids, CSRF tokens, API tokens).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

/// SHA-256 of a secret token, hex encoded: what the database keeps instead of the token.
pub fn token_digest(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let hash = hash_password("Correct-Horse-9", PasswordCost::for_tests()).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("Correct-Horse-9", &hash));
        assert!(!verify_password("correct-horse-9", &hash));
        assert!(!verify_password("Correct-Horse-9", "not a hash"));
    }

    #[test]
    fn policy_refuses_short_simple_or_name_containing_passwords() {
        assert!(check_policy("Ab1-", "x", Lang::En).is_err());
        assert!(check_policy("abcdefghijkl", "x", Lang::En).is_err());
        assert!(check_policy("Admin-12345x", "admin", Lang::Zh).is_err());
        assert!(check_policy("Blue-Sky-2024", "alice", Lang::Zh).is_ok());
    }

    #[test]
    fn random_passwords_pass_the_policy_and_differ() {
        let a = random_password();
        let b = random_password();
        assert_ne!(a, b);
        assert_eq!(a.chars().count(), 16);
        assert!(check_policy(&a, "admin", Lang::En).is_ok(), "{a}");
    }
}

//! Secrets at the edge: argon2id for passwords, generated high-entropy secrets for
//! app passwords and API keys (stored as blake3 digests). Plaintext never leaves
//! this module except once, to the client that created it.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use ledger_events::model::CredentialKind;
use ledger_events::values::SecretHash;

/// A secret in memory that never prints itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Plaintext(String);

impl Plaintext {
    pub fn new(s: String) -> Self {
        Plaintext(s)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plaintext(<redacted>)")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not recoverable for a credential store.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Hashes a password with argon2id and the crate's default (OWASP) parameters,
/// recorded in the PHC string so they can be raised later. Slow by design: call
/// it off the async executor.
pub fn hash_password(password: &str) -> SecretHash {
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes is a valid salt length");
    let phc = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 accepts any password with default parameters")
        .to_string();
    phc.parse().expect("argon2id PHC strings are valid secret hashes")
}

/// Checks a password against its PHC hash.
pub fn verify_password(password: &str, hash: &SecretHash) -> bool {
    match PasswordHash::new(hash.as_str()) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The stored form of a generated secret.
pub fn digest_generated(secret: &str) -> SecretHash {
    format!("blake3:{}", blake3::hash(secret.as_bytes()).to_hex())
        .parse()
        .expect("a blake3 digest is a valid secret hash")
}

/// A new app password or API key: 256 random bits, prefixed so a leaked one is
/// recognisable (`lap_` app password, `lak_` API key).
pub fn generate(kind: CredentialKind) -> (Plaintext, SecretHash) {
    let prefix = match kind {
        CredentialKind::ApiKey => "lak_",
        _ => "lap_",
    };
    let hex: String = random_bytes::<32>().iter().map(|b| format!("{b:02x}")).collect();
    let secret = format!("{prefix}{hex}");
    let hash = digest_generated(&secret);
    (Plaintext(secret), hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse");
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong", &hash));
        assert_ne!(hash, hash_password("correct horse"), "salted");
    }

    #[test]
    fn generated_secrets_are_unique_and_stored_as_digests() {
        let (a, ha) = generate(CredentialKind::ApiKey);
        let (b, _) = generate(CredentialKind::ApiKey);
        assert_ne!(a, b);
        assert!(a.expose().starts_with("lak_") && a.expose().len() == 68);
        assert_eq!(ha, digest_generated(a.expose()));
        assert_eq!(format!("{a:?}"), "Plaintext(<redacted>)");
    }
}

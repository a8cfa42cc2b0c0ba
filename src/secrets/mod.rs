//! Secrets at the edge: argon2id for passwords, generated high-entropy secrets for
//! app passwords and API keys (stored as blake3 digests). Plaintext never leaves
//! this module except once, to the client that created it.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash};

mod argon2_gate;
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

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // The OS random source failing is not recoverable for a credential store.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

/// Hashes a password with argon2id and the crate's default (OWASP) parameters,
/// recorded in the PHC string so they can be raised later. Slow by design: call
/// it off the async executor. Waits for its turn at the process-wide gate
/// (see [`argon2_gate`]) as long as it takes: its callers are authorized
/// writes, bounded per request.
pub(crate) fn hash_password(password: &str) -> SecretHash {
    let mut turn = argon2_gate::Turn::take(false).expect("an unbounded wait always gets a turn");
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16 bytes is a valid salt length");
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut raw_salt).expect("a salt just encoded decodes");
    let params = argon2::Params::default();
    let mut out = [0u8; 32];
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, turn.memory(params.block_count()))
        .expect("argon2 accepts any password with default parameters");
    let output = argon2::password_hash::Output::new(&out).expect("32 bytes is a valid output length");
    let phc = format!(
        "$argon2id$v=19$m={},t={},p={}${}${output}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str()
    );
    phc.parse().expect("argon2id PHC strings are valid secret hashes")
}

/// What a password check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    Match,
    Mismatch,
    /// No turn at the argon2 gate within its wait: the login should be tried
    /// again shortly (it is not a failure).
    Busy,
}

/// Checks a password against its PHC hash (any argon2 variant and
/// parameters the PHC string names, up to four times the default memory).
/// Waits at most 2 s, behind at most 64 others, for a turn at the gate.
pub fn verify_password(password: &str, hash: &SecretHash) -> Checked {
    let Some(mut turn) = argon2_gate::Turn::take(true) else { return Checked::Busy };
    let mut matches = || -> Option<bool> {
        let parsed = PasswordHash::new(hash.as_str()).ok()?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map_or(Ok(argon2::Version::V0x13), argon2::Version::try_from).ok()?;
        let params = argon2::Params::try_from(&parsed).ok()?;
        if params.block_count() > 4 * argon2::Params::default().block_count() {
            return None;
        }
        let mut raw_salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut raw_salt).ok()?;
        let expected = parsed.hash?;
        let mut out = vec![0u8; expected.len()];
        let blocks = params.block_count();
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, turn.memory(blocks))
            .ok()?;
        Some(subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into())
    };
    if matches() == Some(true) { Checked::Match } else { Checked::Mismatch }
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
    let secret = format!("{prefix}{}", hex::encode(random_bytes::<32>()));
    let hash = digest_generated(&secret);
    (Plaintext(secret), hash)
}

/// The data directory's key for sealing secrets that must be recovered later
/// (TOTP seeds). It lives in its own file beside the store, never in the log, so
/// an exported log reveals nothing even to someone holding the whole export.
pub(crate) struct SealingKey([u8; 32]);

/// The sealing key's file in the data directory (32 bytes, mode 0600).
pub const SEALING_KEY_FILE: &str = "sealing.key";
const SEALED_PREFIX: &str = "xc1:";

impl SealingKey {
    /// Loads the key from `data_dir`, creating it (mode 0600) on first use.
    pub(crate) fn load_or_create(data_dir: &std::path::Path) -> std::io::Result<Self> {
        let path = data_dir.join(SEALING_KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] = bytes.try_into().map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a 32-byte key", path.display()),
                    )
                })?;
                Ok(SealingKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let key = random_bytes::<32>();
                write_private(&path, &key)?;
                Ok(SealingKey(key))
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn seal(&self, plaintext: &str) -> String {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&self.0.into());
        let nonce = random_bytes::<24>();
        let sealed =
            cipher.encrypt(&nonce.into(), plaintext.as_bytes()).expect("encryption of a short secret cannot fail");
        format!("{SEALED_PREFIX}{}{}", hex::encode(nonce), hex::encode(sealed))
    }

    pub(crate) fn unseal(&self, sealed: &str) -> Option<Plaintext> {
        use chacha20poly1305::aead::{Aead, KeyInit};
        let bytes = hex::decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, body) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().ok()?;
        let cipher = chacha20poly1305::XChaCha20Poly1305::new(&self.0.into());
        let plain = cipher.decrypt(&nonce.into(), body).ok()?;
        String::from_utf8(plain).ok().map(Plaintext)
    }
}

/// Writes a file only the owner can read.
pub(crate) fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The time step (RFC 6238 §4, the counter) whose code `code` is, for an
/// `otpauth://totp/` URI, allowing one step of clock skew either way (§5.2);
/// `None` when it is none of them.
pub(crate) fn totp_step(otp_auth: &str, code: &str, unix_seconds: u64) -> Option<u64> {
    let totp = usable_totp(otp_auth)?;
    let step = totp.step;
    let current = unix_seconds / step;
    // One step of skew either way; every candidate is compared, in constant time.
    let mut matched = None;
    for counter in [current.saturating_sub(1), current, current + 1] {
        let expected = totp.generate(counter * step);
        if bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes())) {
            matched = Some(counter);
        }
    }
    matched
}

/// Whether an `otpAuth` value is a usable TOTP URI.
pub(crate) fn valid_otp_auth(otp_auth: &str) -> bool {
    otp_auth.starts_with("otpauth://totp/") && usable_totp(otp_auth).is_some()
}

/// A TOTP generator for a URI whose parameters codes can be made with: 6 to 8
/// digits (RFC 4226 §5.3) and a step of 1 to 300 seconds. Others (a URI stored
/// before this check) never log in rather than fail inside the TOTP library.
fn usable_totp(otp_auth: &str) -> Option<totp_rs::TOTP> {
    let totp = totp_rs::TOTP::from_url_unchecked(otp_auth).ok()?;
    ((6..=8).contains(&totp.digits) && (1..=300).contains(&totp.step)).then_some(totp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse");
        assert!(hash.as_str().starts_with("$argon2id$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert_eq!(verify_password("correct horse", &hash), Checked::Match);
        assert_eq!(verify_password("wrong", &hash), Checked::Mismatch);
        assert_ne!(hash, hash_password("correct horse"), "salted");
    }

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("tr0ub4dor");
        let parsed = PasswordHash::new(ours.as_str()).unwrap();
        assert!(Argon2::default().verify_password(b"tr0ub4dor", &parsed).is_ok(), "the library accepts ours");
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs: SecretHash =
            Argon2::default().hash_password(b"tr0ub4dor", &salt).unwrap().to_string().parse().unwrap();
        assert_eq!(verify_password("tr0ub4dor", &theirs), Checked::Match, "we accept the library's");
        assert_eq!(verify_password("tr0ub4dor!", &theirs), Checked::Mismatch);
        let huge: SecretHash = theirs.as_str().replace("m=19456", "m=4000000").parse().unwrap();
        assert_eq!(verify_password("tr0ub4dor", &huge), Checked::Mismatch, "no hash makes us allocate gigabytes");
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

#[cfg(test)]
mod sealing_tests {
    use super::*;

    #[test]
    fn sealed_secrets_round_trip_only_with_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealingKey::load_or_create(dir.path()).unwrap();
        let sealed = key.seal("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP");
        assert!(!sealed.contains("JBSWY3DP"));
        assert_eq!(key.unseal(&sealed).unwrap().expose(), "otpauth://totp/x?secret=JBSWY3DPEHPK3PXP");
        let again = SealingKey::load_or_create(dir.path()).unwrap();
        assert!(again.unseal(&sealed).is_some(), "the key persists");
        let other = SealingKey::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.unseal(&sealed).is_none());
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push('0');
        assert!(key.unseal(&tampered).is_none() || tampered == sealed);
    }

    #[test]
    fn totp_codes_check_with_skew() {
        let uri = "otpauth://totp/ledger:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ledger";
        let totp = totp_rs::TOTP::from_url_unchecked(uri).unwrap();
        let now = 1_800_000_000;
        let code = totp.generate(now);
        assert_eq!(totp_step(uri, &code, now), Some(now / 30));
        assert_eq!(totp_step(uri, &code, now + 30), Some(now / 30), "one step late is accepted");
        assert_eq!(totp_step(uri, &code, now + 120), None, "four steps late is not");
        assert!(totp_step(uri, "000000", now).is_none() || totp.generate(now) == "000000");
        assert!(valid_otp_auth(uri));
        assert!(!valid_otp_auth("otpauth://totp/x?secret=!!"));
        let digits = "otpauth://totp/x?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&digits=100";
        assert!(!valid_otp_auth(digits), "a code of 100 digits cannot be made");
        assert_eq!(totp_step(digits, "123456", 1_800_000_000), None, "nor checked, without a panic");
    }
}

/// The lowest zxcvbn score (0–4) a new password must reach: 2, "somewhat
/// guessable", about 10^6 guesses or more. Online guessing is throttled by
/// the login limiter and every stored password is an argon2id hash, so this
/// refuses what a dictionary finds first (docs/auth.md, "Passwords").
pub(crate) const MIN_PASSWORD_SCORE: u8 = 2;

/// Refuses a weak password (`invalidProperties` on `secret`, as Stalwart's
/// `is_secure_password` does), with the estimator's advice.
pub(crate) fn check_strength(password: &str) -> Result<(), String> {
    let estimate = zxcvbn::zxcvbn(password, &[]);
    if u8::from(estimate.score()) >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    let mut why = "the password is too weak".to_owned();
    if let Some(feedback) = estimate.feedback() {
        if let Some(warning) = feedback.warning() {
            why.push_str(&format!(": {warning}"));
        }
        if let Some(tip) = feedback.suggestions().first() {
            why.push_str(&format!(" ({tip})"));
        }
    }
    Err(why)
}

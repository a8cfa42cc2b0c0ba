//! Signed notes (C2SP `signed-note`, Ed25519 signature type `0x01`), the
//! log's key formats, and checkpoints (C2SP `tlog-checkpoint`).
//!
//! - A note: text ending in `\n`, a blank line, then signature lines
//!   `— NAME base64(key id (4 bytes, BE) || signature)`.
//! - Key id: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`.
//! - Verifier key (what an auditor keeps): `NAME+HEXID+base64(0x01 || public key)`.
//! - Signer key (the key file): `PRIVATE+KEY+NAME+HEXID+base64(0x01 || seed)`,
//!   the format of Go's `golang.org/x/mod/sumdb/note`, so keys made by other
//!   transparency-log tools work here and the other way round.
//! - A checkpoint's text: origin, tree size (decimal), root hash (base64),
//!   each on its own line; the key's name is the origin.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use ledger_events::merkle::Hash;
use sha2::{Digest as _, Sha256};

/// The signature type byte of Ed25519 (C2SP signed-note).
const ED25519: u8 = 0x01;
/// The most bytes of a note this accepts.
const MAX_NOTE: usize = 1 << 20;
/// The most signature lines of a note this accepts (signed-note asks for at least 16).
const MAX_SIGNATURES: usize = 100;
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// What is wrong with a key, a note or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("malformed key: {0}")]
    Key(&'static str),
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    #[error("the note is not signed by the key {0}")]
    UnknownKey(String),
    #[error("the signature of {0} does not verify (the note was altered, or signed by another key)")]
    BadSignature(String),
    #[error("malformed checkpoint: {0}")]
    Checkpoint(&'static str),
}

/// A key name (a log's origin): non-empty, no space, no `+` (signed-note),
/// and, stricter than signed-note, printable ASCII only (`!`..=`~`): a name
/// is shown to auditors, and no control, bidi or invisible character can make
/// one log's name read as another's. An internationalized host goes in its
/// punycode form, as in a URL.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'+')
}

/// `SHA-256(name || 0x0A || 0x01 || public)[:4]`, big-endian.
fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ED25519]);
    h.update(public.as_bytes());
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The key material after `NAME+HEXID+`: base64 of the type byte and 32 bytes.
fn split_key(text: &str) -> Result<(&str, u32, [u8; 32]), NoteError> {
    let mut parts = text.splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::Key("expected NAME+KEYID+KEY"));
    };
    if !valid_name(name) {
        return Err(NoteError::Key("the name is empty, or not printable ASCII without spaces and +"));
    }
    if id.len() != 8 {
        return Err(NoteError::Key("the key id is not 8 hex digits"));
    }
    let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::Key("the key id is not 8 hex digits"))?;
    let bytes = BASE64.decode(material.trim_end()).map_err(|_| NoteError::Key("the key is not base64"))?;
    match bytes.split_first() {
        Some((&ED25519, key)) if key.len() == 32 => Ok((name, id, key.try_into().expect("32 bytes"))),
        Some((&ED25519, _)) => Err(NoteError::Key("an Ed25519 key has 32 bytes")),
        _ => Err(NoteError::Key("not an Ed25519 key (type 0x01)")),
    }
}

/// A log's public key, as an auditor keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses `NAME+HEXID+base64(0x01 || public key)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, id, bytes) = split_key(text.trim())?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| NoteError::Key("not an Ed25519 public key"))?;
        if key_id(name, &key) != id {
            return Err(NoteError::Key("the key id does not match the name and key"));
        }
        Ok(VerifierKey { name: name.to_owned(), id, key })
    }

    /// The key's name: the log's origin.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, 8 hex digits.
    pub fn id_hex(&self) -> String {
        format!("{:08x}", self.id)
    }

    /// The public key, base64 of its 32 bytes.
    pub fn public_base64(&self) -> String {
        BASE64.encode(self.key.as_bytes())
    }

    /// The verifier key text.
    pub fn encode(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, self.id_hex(), BASE64.encode(material))
    }

    /// The text of `note` if this key signed it. A signature line that names
    /// this key (name and id) but does not verify rejects the whole note;
    /// signatures of other keys are ignored (signed-note).
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        if note.len() > MAX_NOTE {
            return Err(NoteError::Malformed("larger than 1 MiB"));
        }
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed("a control character other than newline"));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        let Some(signatures) = signatures.strip_suffix('\n') else {
            return Err(NoteError::Malformed("the last signature line does not end with a newline"));
        };
        let mut verified = false;
        for (count, line) in signatures.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(NoteError::Malformed("more than 100 signatures"));
            }
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(NoteError::Malformed("a signature line does not start with an em dash and a space"));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed("a signature line has no signature"));
            };
            // Other signers' (witnesses') names only need signed-note's rule.
            if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
                return Err(NoteError::Malformed("a signature line's key name is not valid"));
            }
            let blob = BASE64.decode(blob).map_err(|_| NoteError::Malformed("a signature is not base64"))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed("a signature is shorter than its key id"));
            }
            let id = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]);
            if name != self.name || id != self.id {
                continue;
            }
            let signature = Signature::from_slice(&blob[4..]).map_err(|_| NoteError::BadSignature(self.encode()))?;
            self.key.verify_strict(text.as_bytes(), &signature).map_err(|_| NoteError::BadSignature(self.encode()))?;
            verified = true;
        }
        if verified { Ok(text) } else { Err(NoteError::UnknownKey(self.encode())) }
    }
}

impl VerifierKey {
    /// `note` as this key signed it: its text and this key's signature
    /// lines only (other signers' lines, unverified, are dropped), so it can
    /// be shown and kept. Refused beyond [`VerifierKey::open`]: text that is
    /// not printable ASCII lines (a checkpoint never holds other characters).
    pub fn own_note(&self, note: &str) -> Result<String, NoteError> {
        let text = self.open(note)?;
        if !text.bytes().all(|b| b == b'\n' || b == b' ' || b.is_ascii_graphic()) {
            return Err(NoteError::Malformed("the text holds characters other than printable ASCII"));
        }
        let prefix = format!("\u{2014} {} ", self.name);
        let mut own = format!("{text}\n");
        for line in note[text.len() + 1..].lines() {
            let Some(blob) = line.strip_prefix(&prefix) else { continue };
            let id =
                BASE64.decode(blob).ok().filter(|b| b.len() >= 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            if id == Some(self.id) {
                own.push_str(line);
                own.push('\n');
            }
        }
        Ok(own)
    }
}

/// The log's private key. Its seed is never logged or shown.
pub struct SignerKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({})", self.verifier().encode())
    }
}

impl SignerKey {
    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key("the name is empty, or not printable ASCII without spaces and +"));
        }
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|_| NoteError::Key("the system's random source failed"))?;
        Ok(SignerKey { name: name.to_owned(), key: SigningKey::from_bytes(&seed) })
    }

    /// Parses `PRIVATE+KEY+NAME+HEXID+base64(0x01 || seed)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let rest =
            text.trim().strip_prefix(PRIVATE_PREFIX).ok_or(NoteError::Key("does not start with PRIVATE+KEY+"))?;
        let (name, id, seed) = split_key(rest)?;
        let key = SigningKey::from_bytes(&seed);
        if key_id(name, &key.verifying_key()) != id {
            return Err(NoteError::Key("the key id does not match the name and key"));
        }
        Ok(SignerKey { name: name.to_owned(), key })
    }

    /// The key file's text (secret).
    pub fn encode(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        let verifier = self.verifier();
        format!("{PRIVATE_PREFIX}{}+{}+{}\n", self.name, verifier.id_hex(), BASE64.encode(material))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey { id: key_id(&self.name, &key), name: self.name.clone(), key }
    }

    /// `text` (ending in a newline) signed: the whole note.
    pub fn sign(&self, text: &str) -> String {
        debug_assert!(text.ends_with('\n') && !text.contains("\n\n"));
        let mut blob = self.verifier().id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        format!("{text}\n\u{2014} {} {}\n", self.name, BASE64.encode(blob))
    }
}

/// A checkpoint: the log's origin, its tree size and the root hash at that size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text (C2SP tlog-checkpoint), without extension lines.
    pub fn text(&self) -> String {
        format!("{}\n{}\n{}\n", self.origin, self.size, BASE64.encode(self.root))
    }

    /// Parses a checkpoint's note text (extension lines are ignored).
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(NoteError::Checkpoint("fewer than three lines"));
        };
        if origin.is_empty() {
            return Err(NoteError::Checkpoint("the origin is empty"));
        }
        let canonical = size == "0" || (!size.starts_with('0') && size.bytes().all(|b| b.is_ascii_digit()));
        let size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or(NoteError::Checkpoint("the tree size is not a decimal number without leading zeros"))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or(NoteError::Checkpoint("the root hash is not 32 bytes of base64"))?;
        Ok(Checkpoint { origin: origin.to_owned(), size, root })
    }

    /// Opens `note` with `key` and parses it; the origin must be the key's name.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Self, NoteError> {
        let checkpoint = Checkpoint::parse(key.open(note)?)?;
        if checkpoint.origin != key.name() {
            return Err(NoteError::Checkpoint("its origin is not the name of the log's key"));
        }
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note's documented example (note.go, note_test.go).
    const PETER_SIGNER: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const PETER_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_and_opens_the_go_sumdb_note_example_byte_for_byte() {
        let signer = SignerKey::parse(PETER_SIGNER).unwrap();
        assert_eq!(signer.verifier().encode(), PETER_VERIFIER);
        assert_eq!(signer.encode().trim_end(), PETER_SIGNER);
        assert_eq!(signer.sign(PETER_TEXT), PETER_NOTE);
        let verifier = VerifierKey::parse(PETER_VERIFIER).unwrap();
        assert_eq!(verifier.open(PETER_NOTE), Ok(PETER_TEXT));
    }

    #[test]
    fn altered_notes_and_other_keys_are_refused() {
        let verifier = VerifierKey::parse(PETER_VERIFIER).unwrap();
        let altered = PETER_NOTE.replace("cryptography", "cryptographY");
        assert!(matches!(verifier.open(&altered), Err(NoteError::BadSignature(_))));
        // Another key of the same name: its signature is unknown to this verifier.
        let other = SignerKey::generate("PeterNeumann").unwrap();
        assert!(matches!(verifier.open(&other.sign(PETER_TEXT)), Err(NoteError::UnknownKey(_))));
        // A known key's signature that fails rejects the note even beside a good one.
        let mut forged = PETER_NOTE.to_owned();
        let bad = PETER_NOTE.lines().last().unwrap().replace("x08go/ZJ", "x08go/ZK");
        forged.push_str(&format!("{bad}\n"));
        assert!(verifier.open(&forged).is_err());
        // An unknown key's extra signature is ignored.
        let cosigned = format!("{}\u{2014} witness.example {}\n", PETER_NOTE, BASE64.encode([7u8; 68]));
        assert_eq!(verifier.open(&cosigned), Ok(PETER_TEXT));
        for broken in [
            PETER_TEXT,
            &PETER_NOTE.replace('\u{2014}', "-"),
            &PETER_NOTE[..PETER_NOTE.len() - 1],
            &PETER_NOTE.replace("x08go", "x08g\u{1}"),
        ] {
            assert!(verifier.open(broken).is_err(), "{broken:?}");
        }
        for key in [
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3+AhpcMQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "PeterNeumann+c74f20a3",
            "",
        ] {
            assert!(VerifierKey::parse(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn checkpoints_round_trip_and_refuse_malformed_text() {
        let key = SignerKey::generate("ledger.example.org/accounts").unwrap();
        let checkpoint = Checkpoint { origin: key.name().to_owned(), size: 20852163, root: [7; 32] };
        let note = key.sign(&checkpoint.text());
        assert!(note.starts_with("ledger.example.org/accounts\n20852163\nBwcH"));
        assert_eq!(Checkpoint::open(&note, &key.verifier()), Ok(checkpoint.clone()));
        let other = SignerKey::generate("ledger.example.org/accounts").unwrap();
        assert!(Checkpoint::open(&note, &other.verifier()).is_err());
        for text in ["o\n", "o\n01\nBwcH\n", "o\n1\nshort\n", "\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"] {
            assert!(Checkpoint::parse(text).is_err(), "{text:?}");
        }
        // The origin must be the key's name.
        let elsewhere = Checkpoint { origin: "other.example/log".into(), ..checkpoint };
        assert!(Checkpoint::open(&key.sign(&elsewhere.text()), &key.verifier()).is_err());
    }
}

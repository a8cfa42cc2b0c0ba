//! Validated value types of the Account reference page; an event can only hold valid values.
//!
//! Each type validates in its constructor and again when deserialized, so a value
//! read back from the log is as trustworthy as one built by the decide layer.

use std::fmt;
use std::str::FromStr;

use serde_with::{DeserializeFromStr, SerializeDisplay};

/// Why a value was refused: what was expected, in words a JMAP client can show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn invalid(msg: impl Into<String>) -> InvalidValue {
    InvalidValue(msg.into())
}

/// `Display` of the string-backed value types: the string itself. Every value
/// type serializes through `Display` and deserializes through `FromStr`
/// (`SerializeDisplay`, `DeserializeFromStr`), so invalid stored values are
/// rejected on the way in.
macro_rules! display_as_str {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// Identifier of a ledger object (account, domain, credential). Ids come from one
/// counter in the projections, so they never repeat across types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct ObjectId(pub u64);

const ID_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl ObjectId {
    /// The JMAP wire form: lowercase base32 of the number, most significant digit first.
    pub fn to_jmap(self) -> String {
        let mut n = self.0;
        let mut out = Vec::with_capacity(13);
        loop {
            out.push(ID_ALPHABET[(n & 31) as usize]);
            n >>= 5;
            if n == 0 {
                break;
            }
        }
        out.reverse();
        String::from_utf8(out).unwrap_or_default()
    }

    /// Parses the JMAP wire form; `None` when it is not an id this ledger could have issued.
    pub fn from_jmap(s: &str) -> Option<Self> {
        if s.is_empty() || s.len() > 13 || (s.len() > 1 && s.starts_with('a')) {
            return None;
        }
        let mut n: u64 = 0;
        for b in s.bytes() {
            let digit = ID_ALPHABET.iter().position(|&a| a == b)? as u64;
            n = n.checked_mul(32)?.checked_add(digit)?;
        }
        Some(ObjectId(n))
    }

    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_jmap())
    }
}

impl FromStr for ObjectId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        ObjectId::from_jmap(s).ok_or_else(|| invalid(format!("not an id: {s:?}")))
    }
}

/// A foreign id the ledger does not own (tenants, roles, public keys): any JMAP `Id`
/// (RFC 8620 §1.2: 1–255 characters of the URL-safe base64 alphabet).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ExternalId {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let ok =
            !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok { Ok(ExternalId(s.to_owned())) } else { Err(invalid(format!("{s:?} is not a JMAP Id"))) }
    }
}
display_as_str!(ExternalId);

/// The local part of an address (RFC 5321 dot-atom), stored lowercase so that
/// uniqueness of name@domain is case-insensitive as mail delivery is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct EmailLocalPart(String);

impl EmailLocalPart {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EmailLocalPart {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        const SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~-";
        if s.is_empty() || s.len() > 64 {
            return Err(invalid("an email local part must be 1 to 64 characters"));
        }
        let atoms_ok = s
            .split('.')
            .all(|atom| !atom.is_empty() && atom.bytes().all(|b| b.is_ascii_alphanumeric() || SPECIALS.contains(&b)));
        if !atoms_ok {
            return Err(invalid(format!("{s:?} is not a valid email local part (RFC 5321 dot-atom)")));
        }
        Ok(EmailLocalPart(s.to_ascii_lowercase()))
    }
}
display_as_str!(EmailLocalPart);

/// A DNS domain name, stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct DomainName(String);

impl DomainName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DomainName {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let labels_ok = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if labels_ok {
            Ok(DomainName(s.to_ascii_lowercase()))
        } else {
            Err(invalid(format!("{s:?} is not a valid domain name")))
        }
    }
}
display_as_str!(DomainName);

/// A full address, `local@domain`, as derived by the ledger (never client-set).
pub fn email_address(local: &EmailLocalPart, domain: &DomainName) -> String {
    format!("{}@{}", local.as_str(), domain.as_str())
}

/// A locale such as `en_US`, `de` or `pt_BR`: a 2–3 letter language, optionally
/// `_` and a 2 letter region.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDisplay, DeserializeFromStr)]
pub struct Locale(String);

impl Locale {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Locale {
    fn default() -> Self {
        Locale("en_US".to_owned())
    }
}

impl FromStr for Locale {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let (lang, region) = match s.split_once('_') {
            Some((l, r)) => (l, Some(r)),
            None => (s, None),
        };
        let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
        if lang_ok && region_ok {
            Ok(Locale(s.to_owned()))
        } else {
            Err(invalid(format!("{s:?} is not a locale like en_US")))
        }
    }
}
display_as_str!(Locale);

/// An IANA time zone name known to the bundled tz database.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDisplay, DeserializeFromStr)]
pub struct TimeZoneName(String);

impl TimeZoneName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TimeZoneName {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        match jiff::tz::TimeZone::get(s) {
            Ok(tz) => Ok(TimeZoneName(tz.iana_name().unwrap_or(s).to_owned())),
            Err(_) => Err(invalid(format!("{s:?} is not an IANA time zone"))),
        }
    }
}
display_as_str!(TimeZoneName);

/// A point in time, UTC, millisecond precision, written as RFC 3339 with `Z`
/// (the JMAP `UTCDate` form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct UtcDateTime(i64);

impl UtcDateTime {
    pub fn from_millis(ms: i64) -> Self {
        UtcDateTime(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    fn to_timestamp(self) -> jiff::Timestamp {
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    }
}

impl fmt::Display for UtcDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whole seconds print without a fraction, as most JMAP servers do.
        let ts = self.to_timestamp();
        if self.0.rem_euclid(1000) == 0 {
            write!(f, "{}", ts.strftime("%Y-%m-%dT%H:%M:%SZ"))
        } else {
            write!(f, "{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
        }
    }
}

impl FromStr for UtcDateTime {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if !s.ends_with('Z') {
            return Err(invalid(format!("{s:?} is not a UTCDate (RFC 3339 ending in Z)")));
        }
        let ts: jiff::Timestamp =
            s.parse().map_err(|_| invalid(format!("{s:?} is not a UTCDate (RFC 3339 ending in Z)")))?;
        Ok(UtcDateTime(ts.as_millisecond()))
    }
}

/// An allowed source network for a credential: a CIDR range, or a single address
/// (stored as a host-length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct IpMask(ipnet::IpNet);

impl IpMask {
    pub fn net(&self) -> ipnet::IpNet {
        self.0
    }
}

impl FromStr for IpMask {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(IpMask(net.trunc()));
        }
        match s.parse::<std::net::IpAddr>() {
            Ok(addr) => Ok(IpMask(ipnet::IpNet::from(addr))),
            Err(_) => Err(invalid(format!("{s:?} is not an IP address or CIDR range"))),
        }
    }
}

impl fmt::Display for IpMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A permission name such as `sysAccountGet`: a camelCase identifier. The set is
/// open, as Stalwart's is large and grows; the auth layer gives names meaning.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, SerializeDisplay, DeserializeFromStr)]
pub struct Permission(String);

impl Permission {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Permission {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let ok = (1..=64).contains(&s.len())
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok { Ok(Permission(s.to_owned())) } else { Err(invalid(format!("{s:?} is not a permission name"))) }
    }
}
display_as_str!(Permission);

/// A secret already made safe to store: a PHC argon2id string or `blake3:<hex>`.
/// The decide layer never sees plaintext; the service hashes at the edge.
#[derive(Debug, Clone, PartialEq, Eq, SerializeDisplay, DeserializeFromStr)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SecretHash {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, InvalidValue> {
        let blake =
            s.strip_prefix("blake3:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if blake || s.starts_with("$argon2id$") {
            Ok(SecretHash(s.to_owned()))
        } else {
            Err(invalid("a stored secret must be an argon2id PHC string or a blake3 digest"))
        }
    }
}
display_as_str!(SecretHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_round_trip_and_reject_foreign_forms() {
        for n in [0u64, 1, 31, 32, 1_000_000, u64::MAX] {
            let id = ObjectId(n);
            assert_eq!(ObjectId::from_jmap(&id.to_jmap()), Some(id), "{n}");
        }
        assert_eq!(ObjectId::from_jmap("ab"), None, "leading zero digit is not canonical");
        assert_eq!(ObjectId::from_jmap("A"), None);
        assert_eq!(ObjectId::from_jmap(""), None);
        assert_eq!(ObjectId::from_jmap("zzzzzzzzzzzzz"), None, "overflows u64");
    }

    #[test]
    fn local_parts_follow_dot_atom_and_fold_case() {
        assert_eq!("Alice.Smith".parse::<EmailLocalPart>().unwrap().as_str(), "alice.smith");
        for bad in ["", ".a", "a.", "a..b", "a b", "a@b", &"x".repeat(65)] {
            assert!(bad.parse::<EmailLocalPart>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn locales_time_zones_and_dates_validate() {
        assert!("en_US".parse::<Locale>().is_ok());
        assert!("de".parse::<Locale>().is_ok());
        assert!("english".parse::<Locale>().is_err());
        assert!("en_us".parse::<Locale>().is_err());
        assert!("Africa/Abidjan".parse::<TimeZoneName>().is_ok());
        assert!("Mars/Olympus".parse::<TimeZoneName>().is_err());
        let t: UtcDateTime = "2026-11-22T10:00:00Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-22T10:00:00Z");
        assert!("2026-11-22T10:00:00+01:00".parse::<UtcDateTime>().is_err());
        assert!("yesterday".parse::<UtcDateTime>().is_err());
    }

    #[test]
    fn ip_masks_accept_cidr_and_bare_addresses() {
        assert_eq!("10.1.2.3/8".parse::<IpMask>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("::1".parse::<IpMask>().unwrap().to_string(), "::1/128");
        assert!("10.0.0.0/33".parse::<IpMask>().is_err());
    }
}

//! Property descriptions of JMAP objects in the vocabulary of Stalwart's schema
//! document (`fields.<schema>.properties`: `type` with its `format`,
//! `objectName`, `enumName`, `class`, `nullable`; `update`; `defaults`). Each
//! object lists its properties once ([`super::JmapObject::PROPERTIES`]); the
//! methods take from that list which properties exist, which are server-set and
//! which are fixed after creation, and the served schema is generated from it.
//! Source: Stalwart 0.16, `resources/schema/schema.json` and the object pages.

/// How a property may change (schema `update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Update {
    /// Set on create, changed by `/set` update.
    Mutable,
    /// Set on create, fixed afterwards.
    Immutable,
    /// Set by the server only; a client may send it back unchanged.
    ServerSet,
}

/// The `format` of a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StringFormat {
    String,
    EmailAddress,
    /// Served as Stalwart's `string`; the ledger checks it as a local part.
    EmailLocalPart,
    /// Served as Stalwart's `string`; the ledger checks it as a domain name.
    DomainName,
    /// A password or key: masked as `"****"` on `/get`.
    Secret,
    Uri,
    IpNetwork,
    /// Multi-line text.
    Text,
}

impl StringFormat {
    /// The format's name in Stalwart's schema (one of the client's closed set).
    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            StringFormat::String | StringFormat::EmailLocalPart | StringFormat::DomainName => "string",
            StringFormat::EmailAddress => "emailAddress",
            StringFormat::Secret => "secret",
            StringFormat::Uri => "uri",
            StringFormat::IpNetwork => "ipNetwork",
            StringFormat::Text => "text",
        }
    }
}

/// The `format` of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberFormat {
    UnsignedInteger,
    /// Bytes.
    Size,
    /// Milliseconds.
    Duration,
}

impl NumberFormat {
    /// The format's name in Stalwart's schema.
    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            NumberFormat::UnsignedInteger => "unsignedInteger",
            NumberFormat::Size => "size",
            NumberFormat::Duration => "duration",
        }
    }
}

/// A property's wire type (schema `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireType {
    /// `{"type": "id"}`: the object's own id, server-set.
    Id,
    String(StringFormat),
    Number(NumberFormat),
    /// `{"type": "boolean"}`.
    Boolean,
    /// `{"type": "utcDateTime"}`: RFC 3339 with `Z` (JMAP `UTCDate`).
    UtcDateTime,
    /// `{"type": "enum", "enumName": …}`.
    Enum(&'static str),
    /// `{"type": "objectId", "objectName": …}`: the id of another object.
    ObjectId(&'static str),
    /// `{"type": "object", "objectName": …}`: a nested object of that schema.
    Object(&'static str),
    /// `{"type": "objectList", "objectName": …}`.
    ObjectList(&'static str),
    /// `{"type": "set", "class": …}`.
    Set(&'static WireType),
    /// `{"type": "map", "keyClass": …, "valueClass": …}`.
    Map(&'static WireType, &'static WireType),
}

/// One `@type` of a multi-variant object (schema `schemas.<name>.variants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Variant {
    /// The `@type` value, `User`.
    pub(crate) name: &'static str,
    pub(crate) label: &'static str,
    /// The field set of the variant, `x:UserAccount`; `None` for a marker
    /// variant without fields (`{"@type": "Inherit"}`).
    pub(crate) schema: Option<&'static str>,
}

impl Variant {
    pub(crate) const fn new(name: &'static str, label: &'static str, schema: Option<&'static str>) -> Self {
        Variant { name, label, schema }
    }
}

/// One property of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Property {
    /// The wire name, e.g. `domainId`.
    pub(crate) name: &'static str,
    pub(crate) ty: WireType,
    /// Whether `null` is a value of it (`String?`, `Id<Tenant>?`).
    pub(crate) nullable: bool,
    pub(crate) update: Update,
    /// A create must give it.
    pub(crate) required: bool,
    /// The value a create that leaves it out gets, as JSON text (schema `defaults`).
    pub(crate) default: Option<&'static str>,
    /// The `@type` variants that have it; empty: every variant.
    pub(crate) variants: &'static [&'static str],
    pub(crate) description: &'static str,
}

impl Property {
    /// A mutable, optional, non-null property of every variant.
    pub(crate) const fn new(name: &'static str, ty: WireType, description: &'static str) -> Self {
        Property {
            name,
            ty,
            nullable: false,
            update: Update::Mutable,
            required: false,
            default: None,
            variants: &[],
            description,
        }
    }

    /// The object's `id`.
    pub(crate) const fn id() -> Self {
        Property::new("id", WireType::Id, "Identifier of the object").server_set()
    }

    pub(crate) const fn nullable(self) -> Self {
        Property { nullable: true, ..self }
    }

    pub(crate) const fn required(self) -> Self {
        Property { required: true, ..self }
    }

    pub(crate) const fn immutable(self) -> Self {
        Property { update: Update::Immutable, ..self }
    }

    pub(crate) const fn server_set(self) -> Self {
        Property { update: Update::ServerSet, ..self }
    }

    pub(crate) const fn default(self, json: &'static str) -> Self {
        Property { default: Some(json), ..self }
    }

    pub(crate) const fn only(self, variants: &'static [&'static str]) -> Self {
        Property { variants, ..self }
    }

    /// Whether objects of `variant` (`None`: no variants) have it.
    pub(crate) fn of(&self, variant: Option<&str>) -> bool {
        self.variants.is_empty() || variant.is_some_and(|v| self.variants.contains(&v))
    }

    /// Whether a client may set it in a create.
    pub(crate) fn client_set(&self) -> bool {
        self.update != Update::ServerSet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_one_thing_each() {
        const P: Property = Property::new("timeZone", WireType::Enum("TimeZone"), "Preferred time zone").nullable();
        assert!(P.nullable && P.update == Update::Mutable && !P.required && P.default.is_none());
        const Q: Property =
            Property::new("credentials", WireType::ObjectList("x:Credential"), "Credentials").only(&["User"]);
        assert!(Q.of(Some("User")) && !Q.of(Some("Group")) && !Q.of(None));
        assert!(P.of(Some("Group")) && P.of(None));
        assert!(!Property::id().client_set() && Property::id().update == Update::ServerSet);
        assert_eq!(
            Property::new("name", WireType::String(StringFormat::DomainName), "").immutable().update,
            Update::Immutable
        );
    }
}

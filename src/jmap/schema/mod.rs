//! The ledger's schema in Stalwart's vocabulary: the nested object types the
//! JMAP objects are made of (credentials, aliases, roles, permissions, …),
//! each described once, as the top-level objects describe themselves in
//! [`super::object::JmapObject::PROPERTIES`]. From these descriptions come the
//! wire forms of sets and object lists ([`wire`]) and the schema document
//! `GET /api/schema` serves ([`document`]).
//!
//! Names, types and update modes are Stalwart 0.16's (`resources/schema/
//! schema.json`, the object reference pages); what the ledger does not
//! implement is not listed.

pub(crate) mod document;
pub(crate) mod wire;

use super::object::property::{Property, StringFormat, Variant, WireType};

/// A nested object type: fields of a value inside an object (a credential,
/// `roles`, `permissions`), not an object with an id of its own.
pub(crate) struct Nested {
    /// `x:Credential`.
    pub(crate) name: &'static str,
    /// Its `@type`s; empty for a single-shape type (then its fields are
    /// `fields.<name>`).
    pub(crate) variants: &'static [Variant],
    /// Every field, once per variant set that has it (see [`Property::only`]).
    pub(crate) properties: &'static [Property],
}

const PERMISSION_SET: WireType = WireType::Set(&WireType::Enum("Permission"));
const SECONDARY: &[&str] = &["AppPassword", "ApiKey"];
const LISTED: &[&str] = &["Disable", "Replace"];
const MERGED: &[&str] = &["Merge", "Replace"];
const CUSTOM: &[&str] = &["Custom"];
const ENCRYPTED: &[&str] = &["Aes128", "Aes256"];

/// Every nested type, by name.
pub(crate) const NESTED: &[Nested] = &[
    Nested {
        name: "x:EmailAlias",
        variants: &[],
        properties: &[
            Property::new(
                "name",
                WireType::String(StringFormat::EmailLocalPart),
                "The local part of the email alias (the part before the @ symbol)",
            )
            .required(),
            Property::new("domainId", WireType::ObjectId("x:Domain"), "Identifier for the domain of the email alias")
                .required(),
            Property::new("enabled", WireType::Boolean, "Whether this email alias is enabled").default("true"),
            Property::new("description", WireType::String(StringFormat::String), "Description of the email alias")
                .nullable(),
        ],
    },
    Nested {
        name: "x:Credential",
        variants: &[
            Variant::new("Password", "Password for authenticating to the account", Some("x:PasswordCredential")),
            Variant::new("AppPassword", "App password for third-party applications", Some("x:SecondaryCredential")),
            Variant::new("ApiKey", "API key for programmatic access", Some("x:SecondaryCredential")),
        ],
        properties: &[
            Property::new(
                "credentialId",
                WireType::String(StringFormat::String),
                "Unique identifier for the credential",
            )
            .server_set(),
            Property::new("secret", WireType::String(StringFormat::Secret), "Secret value of the account")
                .required()
                .only(&["Password"]),
            Property::new("secret", WireType::String(StringFormat::Secret), "Secret value of the credential")
                .server_set()
                .only(SECONDARY),
            Property::new("otpAuth", WireType::String(StringFormat::Uri), "OTP authentication URI for the account")
                .nullable()
                .only(&["Password"]),
            Property::new("description", WireType::String(StringFormat::String), "Description of the credential")
                .only(SECONDARY),
            Property::new("createdAt", WireType::UtcDateTime, "Creation date of the credential")
                .server_set()
                .only(SECONDARY),
            Property::new(
                "permissions",
                WireType::Object("x:CredentialPermissions"),
                "List of permissions assigned to this credential",
            )
            .default(r#"{"@type":"Inherit"}"#)
            .only(SECONDARY),
            Property::new("expiresAt", WireType::UtcDateTime, "Expiration date of the credential").nullable(),
            Property::new(
                "allowedIps",
                WireType::Set(&WireType::String(StringFormat::IpNetwork)),
                "List of allowed IP addresses or CIDR ranges for this credential",
            )
            .default("{}"),
        ],
    },
    Nested {
        name: "x:CredentialPermissions",
        variants: &[
            Variant::new("Inherit", "Same permissions as account", None),
            Variant::new("Disable", "Disable some permissions", Some("x:CredentialPermissionsList")),
            Variant::new("Replace", "Replace all permissions", Some("x:CredentialPermissionsList")),
        ],
        properties: &[Property::new("permissions", PERMISSION_SET, "List of permissions to assign.").only(LISTED)],
    },
    Nested {
        name: "x:UserRoles",
        variants: &[
            Variant::new("User", "User role", None),
            Variant::new("Admin", "Administrator role", None),
            Variant::new("Custom", "Custom role", Some("x:CustomRoles")),
        ],
        properties: &[Property::new(
            "roleIds",
            WireType::Set(&WireType::ObjectId("x:Role")),
            "List of roles assigned to this principal.",
        )
        .only(CUSTOM)],
    },
    Nested {
        name: "x:Roles",
        variants: &[
            Variant::new("Default", "Default role", None),
            Variant::new("Custom", "Custom role", Some("x:CustomRoles")),
        ],
        properties: &[Property::new(
            "roleIds",
            WireType::Set(&WireType::ObjectId("x:Role")),
            "List of roles assigned to this principal.",
        )
        .only(CUSTOM)],
    },
    Nested {
        name: "x:Permissions",
        variants: &[
            Variant::new("Inherit", "Inherited permissions", None),
            Variant::new("Merge", "Permissions are combined with inherited permissions", Some("x:PermissionsList")),
            Variant::new("Replace", "Permissions replace all inherited permissions", Some("x:PermissionsList")),
        ],
        properties: &[
            Property::new("enabledPermissions", PERMISSION_SET, "List of permissions that are explicitly enabled.")
                .only(MERGED),
            Property::new(
                "disabledPermissions",
                PERMISSION_SET,
                "List of permissions that are explicitly disabled, even if they would be granted otherwise.",
            )
            .only(MERGED),
        ],
    },
    Nested {
        name: "x:EncryptionAtRest",
        variants: &[
            Variant::new("Disabled", "Disabled", None),
            Variant::new("Aes128", "AES-128", Some("x:EncryptionSettings")),
            Variant::new("Aes256", "AES-256", Some("x:EncryptionSettings")),
        ],
        properties: &[
            Property::new("publicKey", WireType::ObjectId("x:PublicKey"), "Public key used for encrypting emails")
                .required()
                .only(ENCRYPTED),
            Property::new("encryptOnAppend", WireType::Boolean, "Whether to encrypt emails when they are appended")
                .default("false")
                .only(ENCRYPTED),
            Property::new(
                "allowSpamTraining",
                WireType::Boolean,
                "Whether to allow training the spam classifier with plaintext emails before encryption",
            )
            .default("false")
            .only(ENCRYPTED),
        ],
    },
];

/// The nested type of that name.
pub(crate) fn nested(name: &str) -> Option<&'static Nested> {
    NESTED.iter().find(|n| n.name == name)
}

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

use super::object::property::{NumberFormat, Property, StringFormat, Variant, WireType};

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

const AUTOMATIC: &[&str] = &["Automatic"];

/// The nested types of `x:Domain`'s management fields.
pub(crate) const DOMAIN_NESTED: &[Nested] = &[
    Nested {
        name: "x:SubAddressing",
        variants: &[
            Variant::new("Enabled", "Enable sub-addressing", None),
            Variant::new("Disabled", "Disable sub-addressing", None),
        ],
        properties: &[],
    },
    Nested {
        name: "x:CertificateManagement",
        variants: &[
            Variant::new("Manual", "Manual TLS certificate management", None),
            Variant::new("Automatic", "ACME TLS certificate management", Some("x:CertificateManagementProperties")),
        ],
        properties: &[
            Property::new(
                "acmeProviderId",
                WireType::ObjectId("x:AcmeProvider"),
                "Identifier for the ACME provider managing certificates for this domain",
            )
            .required()
            .only(AUTOMATIC),
            Property::new(
                "subjectAlternativeNames",
                WireType::Set(&WireType::String(StringFormat::String)),
                "Additional hostnames to include in the certificate as Subject Alternative Names (SANs)",
            )
            .default("[]")
            .only(AUTOMATIC),
        ],
    },
    Nested {
        name: "x:DkimManagement",
        variants: &[
            Variant::new("Automatic", "Automatic DKIM management", Some("x:DkimManagementProperties")),
            Variant::new("Manual", "Manual DKIM management", None),
        ],
        properties: &[
            Property::new(
                "algorithms",
                WireType::Set(&WireType::Enum("DkimSignatureType")),
                "List of signing algorithms to use when generating new DKIM keys",
            )
            .only(AUTOMATIC),
            Property::new(
                "deleteAfter",
                WireType::Number(NumberFormat::Duration),
                "How long to retain old DKIM keys after rotation before deleting them",
            )
            .only(AUTOMATIC),
            Property::new(
                "retireAfter",
                WireType::Number(NumberFormat::Duration),
                "How long to keep the old key's DNS record published after rotation",
            )
            .only(AUTOMATIC),
            Property::new("rotateAfter", WireType::Number(NumberFormat::Duration), "How often to rotate DKIM keys")
                .only(AUTOMATIC),
            Property::new(
                "selectorTemplate",
                WireType::String(StringFormat::String),
                "Template for generating DKIM selectors during key rotation",
            )
            .only(AUTOMATIC),
        ],
    },
    Nested {
        name: "x:DnsManagement",
        variants: &[
            Variant::new("Manual", "Manual DNS management", None),
            Variant::new("Automatic", "Automatic DNS management", Some("x:DnsManagementProperties")),
        ],
        properties: &[
            Property::new(
                "dnsServerId",
                WireType::ObjectId("x:DnsServer"),
                "Identifier for the DNS server provider managing DNS records for this domain",
            )
            .required()
            .only(AUTOMATIC),
            Property::new(
                "origin",
                WireType::String(StringFormat::String),
                "Origin domain used to determine the correct DNS zone for managing records",
            )
            .nullable()
            .only(AUTOMATIC),
            Property::new(
                "publishRecords",
                WireType::Set(&WireType::Enum("DnsRecordType")),
                "Which DNS record types should be automatically published and kept in sync",
            )
            .only(AUTOMATIC),
        ],
    },
];

/// The nested type of that name.
pub(crate) fn nested(name: &str) -> Option<&'static Nested> {
    NESTED.iter().chain(DOMAIN_NESTED).find(|n| n.name == name)
}

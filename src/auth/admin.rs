//! The fallback administrator: lives outside the log, has every permission.

use std::path::Path;

use ledger_events::values::SecretHash;

use crate::secrets::{self, Plaintext};

/// The administrator's hash in the data directory.
pub(crate) const ADMIN_HASH_FILE: &str = "admin.hash";

/// The administrator's password hash, and the password itself when it was just
/// generated (to be shown once).
pub(crate) struct AdminSecret {
    pub hash: SecretHash,
    pub generated: Option<Plaintext>,
}

/// Uses `password` when given; otherwise the hash kept in the data directory;
/// otherwise generates a strong password and keeps only its hash there.
pub(crate) fn load_or_create(data_dir: &Path, password: Option<&str>) -> std::io::Result<AdminSecret> {
    if let Some(password) = password.filter(|p| !p.is_empty()) {
        return Ok(AdminSecret { hash: secrets::hash_password(password), generated: None });
    }
    let path = data_dir.join(ADMIN_HASH_FILE);
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            let hash = stored.trim().parse().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
            })?;
            Ok(AdminSecret { hash, generated: None })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)?;
            let (generated, _) = secrets::generate(ledger_events::model::CredentialKind::AppPassword);
            let password = Plaintext::new(generated.expose()[4..36].to_owned());
            let hash = secrets::hash_password(password.expose());
            secrets::write_private(&path, hash.as_str().as_bytes())?;
            Ok(AdminSecret { hash, generated: Some(password) })
        }
        Err(e) => Err(e),
    }
}

//! Password hashing: Argon2id with a random salt per password, stored as a
//! PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). The parameters
//! travel inside the string, so stronger defaults later still verify old
//! hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// Hashes `password` (slow by design: tens of milliseconds; call it off
/// the async runtime's worker threads).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| format!("cannot encode a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `phc` (false for a string
/// that does not parse). Slow by design, like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_hides_it() {
        let h = hash_password("Milvus-secret").expect("hash");
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(!h.contains("Milvus-secret"));
        assert!(verify_password("Milvus-secret", &h));
        assert!(!verify_password("milvus-secret", &h));
        assert!(!verify_password("Milvus-secret", "not a hash"));
        // Salted: the same password hashes differently each time.
        assert_ne!(h, hash_password("Milvus-secret").expect("hash"));
    }
}

//! The front door's credential check: [`Guard::authenticate`] turns an
//! `authorization` header into a [`Caller`] (or refuses it), and
//! [`Guard::authorize`] decides whether that caller may do what a request
//! needs. Argon2 verification is slow by design, so a successful one is
//! cached: keyed by user and a keyed BLAKE2b digest of the password (the
//! password itself is never kept), valid while the user's stored hash is
//! the one it was verified against — a password change or a deleted user
//! invalidates it at once.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use blake2::{Blake2b512, Digest};
use parking_lot::Mutex;
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::model::{Need, SecurityState};
use crate::password::verify_password;

/// Where the guard reads the current users and roles (coord's replicated
/// metadata, as this process sees it).
pub type SecuritySource = Arc<dyn Fn() -> Arc<SecurityState> + Send + Sync>;

/// Who is calling: an authenticated user, or anyone (auth off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off: every request is allowed.
    Anyone,
    User(String),
}

impl Caller {
    /// The user name (`None` with auth off).
    pub fn user(&self) -> Option<&str> {
        match self {
            Caller::Anyone => None,
            Caller::User(u) => Some(u),
        }
    }
}

/// Why a request was not authenticated (gRPC UNAUTHENTICATED, HTTP 401).
/// The messages are Milvus's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing authorization in header")]
    Missing,
    #[error("invalid token format")]
    Malformed,
    #[error("auth check failure, please check username and password are correct")]
    BadCredentials,
}

/// Why an authenticated caller was refused (gRPC PERMISSION_DENIED, HTTP
/// 403), in Milvus's words: `PrivilegeInsert: permission deny to alice in
/// the `default` database`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Privilege{privilege}: permission deny to {user} in the `default` database")]
pub struct Denied {
    pub privilege: String,
    pub user: String,
}

/// How many cached verifications a guard keeps (cleared when full).
const CACHE_ENTRIES: usize = 16_384;
/// How many Argon2 verifications run at once: failed logins cannot take
/// every core.
const CONCURRENT_VERIFICATIONS: usize = 2;

struct Cached {
    digest: [u8; 64],
    phc: String,
}

/// The credential check of one front door.
pub struct Guard {
    enabled: bool,
    source: SecuritySource,
    key: [u8; 32],
    cache: Mutex<HashMap<String, Cached>>,
    verifying: Semaphore,
    /// Verified against for unknown users, so a wrong user name costs as
    /// much as a wrong password.
    decoy: String,
}

impl Guard {
    /// A guard that checks credentials against `source` when `enabled`;
    /// with auth off every caller is [`Caller::Anyone`].
    pub fn new(enabled: bool, source: SecuritySource) -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let decoy = if enabled {
            crate::password::hash_password("quiver-decoy-password").unwrap_or_default()
        } else {
            String::new()
        };
        Self {
            enabled,
            source,
            key,
            cache: Mutex::new(HashMap::new()),
            verifying: Semaphore::new(CONCURRENT_VERIFICATIONS),
            decoy,
        }
    }

    /// A guard with auth off.
    pub fn off() -> Self {
        Self::new(false, Arc::new(|| Arc::new(SecurityState::default())))
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The users and roles as this process sees them now.
    pub fn security(&self) -> Arc<SecurityState> {
        (self.source)()
    }

    /// Checks a Milvus `authorization` value (base64 of `user:password`).
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Caller, AuthError> {
        if !self.enabled {
            return Ok(Caller::Anyone);
        }
        let raw = authorization.ok_or(AuthError::Missing)?;
        let decoded = BASE64
            .decode(raw.trim_ascii())
            .map_err(|_| AuthError::Malformed)?;
        let token = String::from_utf8(decoded).map_err(|_| AuthError::Malformed)?;
        self.check_token(&token).await
    }

    /// Checks `user:password` as it is (HTTP `Bearer`).
    pub async fn check_token(&self, token: &str) -> Result<Caller, AuthError> {
        if !self.enabled {
            return Ok(Caller::Anyone);
        }
        let (user, password) = token.split_once(':').ok_or(AuthError::Malformed)?;
        self.check(user, password).await
    }

    /// Checks one user and password.
    pub async fn check(&self, user: &str, password: &str) -> Result<Caller, AuthError> {
        let digest = self.digest(user, password);
        let phc = self
            .security()
            .users
            .get(user)
            .map(|u| u.password_hash.clone());
        if let Some(phc) = &phc
            && self
                .cache
                .lock()
                .get(user)
                .is_some_and(|c| c.digest == digest && c.phc == *phc)
        {
            return Ok(Caller::User(user.to_string()));
        }
        let _permit = self
            .verifying
            .acquire()
            .await
            .map_err(|_| AuthError::BadCredentials)?;
        let known = phc.is_some();
        let target = phc.clone().unwrap_or_else(|| self.decoy.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &target))
            .await
            .unwrap_or(false);
        if !(ok && known) {
            return Err(AuthError::BadCredentials);
        }
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(
            user.to_string(),
            Cached {
                digest,
                phc: phc.unwrap_or_default(),
            },
        );
        Ok(Caller::User(user.to_string()))
    }

    /// Whether `caller` may do what `need` says (always, with auth off).
    pub fn authorize(&self, caller: &Caller, need: &Need) -> Result<(), Denied> {
        match caller {
            Caller::Anyone => Ok(()),
            Caller::User(user) if self.security().allows(user, need) => Ok(()),
            Caller::User(user) => Err(Denied {
                privilege: need.privilege.to_string(),
                user: user.clone(),
            }),
        }
    }

    fn digest(&self, user: &str, password: &str) -> [u8; 64] {
        let mut h = Blake2b512::new();
        h.update(self.key);
        h.update((user.len() as u64).to_le_bytes());
        h.update(user.as_bytes());
        h.update(password.as_bytes());
        h.finalize().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SecurityOp;
    use crate::password::hash_password;
    use parking_lot::RwLock;

    fn guard_over(state: Arc<RwLock<Arc<SecurityState>>>) -> Guard {
        Guard::new(true, Arc::new(move || state.read().clone()))
    }

    fn with_user(user: &str, password: &str) -> SecurityState {
        let mut s = SecurityState::default();
        s.apply(&SecurityOp::CreateUser {
            name: user.into(),
            password_hash: hash_password(password).expect("hash"),
            if_absent: false,
        })
        .expect("create");
        s
    }

    #[tokio::test]
    async fn credentials_are_checked_and_a_password_change_invalidates_the_cache() {
        let state = Arc::new(RwLock::new(Arc::new(with_user("alice", "first-pass"))));
        let guard = guard_over(state.clone());
        let header = |t: &str| BASE64.encode(t);
        let ok = guard
            .authenticate(Some(header("alice:first-pass").as_bytes()))
            .await;
        assert_eq!(ok, Ok(Caller::User("alice".into())));
        // Cached now; still right.
        assert!(guard.check("alice", "first-pass").await.is_ok());
        assert_eq!(
            guard.check("alice", "wrong-pass").await,
            Err(AuthError::BadCredentials)
        );
        assert_eq!(
            guard.check("mallory", "first-pass").await,
            Err(AuthError::BadCredentials)
        );
        assert_eq!(guard.authenticate(None).await, Err(AuthError::Missing));
        assert_eq!(
            guard.authenticate(Some(b"%%%")).await,
            Err(AuthError::Malformed)
        );
        assert_eq!(
            guard
                .authenticate(Some(header("no-colon").as_bytes()))
                .await,
            Err(AuthError::Malformed)
        );
        // The password changes: the cached verification no longer counts.
        let mut s = (**state.read()).clone();
        s.apply(&SecurityOp::SetPassword {
            name: "alice".into(),
            password_hash: hash_password("second-pass").expect("hash"),
            expect_hash: None,
        })
        .expect("set");
        *state.write() = Arc::new(s);
        assert_eq!(
            guard.check("alice", "first-pass").await,
            Err(AuthError::BadCredentials)
        );
        assert!(guard.check("alice", "second-pass").await.is_ok());
        // Deleted: refused although cached.
        let mut s = (**state.read()).clone();
        s.apply(&SecurityOp::DeleteUser {
            name: "alice".into(),
        })
        .expect("delete");
        *state.write() = Arc::new(s);
        assert!(guard.check("alice", "second-pass").await.is_err());
    }

    #[tokio::test]
    async fn auth_off_lets_anyone_in() {
        let guard = Guard::off();
        assert_eq!(guard.authenticate(None).await, Ok(Caller::Anyone));
        assert!(
            guard
                .authorize(&Caller::Anyone, &Need::global("DropCollection"))
                .is_ok()
        );
        let denied = Guard::new(true, Arc::new(|| Arc::new(SecurityState::default())))
            .authorize(&Caller::User("bob".into()), &Need::on("Insert", ["books"]));
        assert_eq!(
            denied.map_err(|d| d.to_string()),
            Err("PrivilegeInsert: permission deny to bob in the `default` database".into())
        );
    }
}

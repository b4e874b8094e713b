//! Signing in to the console: a user's password, or a member's phone and
//! a one-time code sent to it; either gives a session.
//!
//! Guarantees:
//! - Passwords are kept as argon2id hashes (PHC strings) and checked
//!   outside any transaction; a wrong one counts against the user, and
//!   [`LoginPolicy::max_failed`] in a row lock the user out for
//!   [`LoginPolicy::lockout_secs`], the right password included. A name
//!   no user signs in with (none has it, or its user is revoked or has no
//!   password) costs the same hash and locks after as many wrong
//!   passwords, counted in memory ([`crate::strangers`]), and a locked name's
//!   answer costs the hash too: neither the answer nor its time tells
//!   which names are users'.
//! - A session id is 32 random bytes, kept as its SHA-256; it expires
//!   [`LoginPolicy::session_secs`] after sign-in, ends at sign-out, and
//!   ends with its user's revocation or new password (a member's, when the
//!   member is blocked). It carries a CSRF token that every request that
//!   may change something must echo.
//! - A one-time code is six random digits, kept as a hash with the phone,
//!   good once, for [`CODE_SECS`], for [`CODE_ATTEMPTS`] guesses; no more
//!   than [`CODES_PER_WINDOW`] are sent to one phone in [`CODE_WINDOW`]
//!   seconds. Asking for a code for a phone no member has answers as for
//!   one that has (nothing is sent), the limit included, so it tells
//!   nothing either.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{random_secret, token_key, Access, Role, User};
use crate::admin::not_found;
use crate::codec::Record;
use crate::error::{EngineError, Result};
use crate::model::contact::normal_phone;
use crate::model::{Member, MemberId, Status, UnixTime};
use crate::notice::{self, NoticeKind};
use crate::storage::{abort, Durable, Table};

/// A one-time code is good this long.
pub const CODE_SECS: i64 = 300;
/// Guesses a code allows before it is void.
pub const CODE_ATTEMPTS: u32 = 5;
/// Codes sent to one phone within [`CODE_WINDOW`] at most.
pub const CODES_PER_WINDOW: usize = 3;
pub const CODE_WINDOW: i64 = 900;

/// The shortest password a user may set.
pub const MIN_PASSWORD: usize = 10;

/// How sign-ins are limited.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    pub session_secs: i64,
    pub max_failed: u32,
    pub lockout_secs: i64,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            session_secs: 8 * 3600,
            max_failed: 5,
            lockout_secs: 900,
        }
    }
}

/// A signed-in session as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The user's name, or `member:ID` for a member signed in by code.
    pub actor: String,
    pub role: Role,
    pub created: UnixTime,
    pub expires: UnixTime,
    /// What every changing request of the session must send back.
    pub csrf: String,
}

impl Record for Session {}

/// A pending one-time code, by phone.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LoginCode {
    member: MemberId,
    /// SHA-256 of phone ‖ code.
    hash: [u8; 32],
    expires: UnixTime,
    attempts: u32,
    /// When codes were sent, within the last window.
    sent: Vec<UnixTime>,
}

impl Record for LoginCode {}

/// What a sign-in came to.
#[derive(Debug)]
pub enum SignIn {
    /// Signed in: the session id (shown once, for the cookie) and session.
    Session(String, Session),
    /// Wrong name, password or code.
    Refused,
    /// Too many wrong passwords: refused until then.
    Locked(UnixTime),
}

fn code_hash(phone: &str, code: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(phone.as_bytes());
    h.update([0]);
    h.update(code.as_bytes());
    h.finalize().into()
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| EngineError::Invalid(format!("password: {e}")))
}

/// Whether `password` matches the stored hash (a hash that does not parse
/// matches nothing).
fn password_ok(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash nobody's password matches, checked when the name is unknown so
/// a wrong name costs what a wrong password does.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never set").unwrap_or_default())
}

fn new_session(actor: String, role: Role, now: UnixTime, p: &LoginPolicy) -> (String, Session) {
    let id = random_secret("css_");
    let csrf = random_secret("")[..32].to_owned();
    let s = Session {
        actor,
        role,
        created: now,
        expires: now.plus(p.session_secs),
        csrf,
    };
    (id, s)
}

impl Access<'_> {
    /// Sets (or replaces) a user's console password.
    pub fn set_password(&self, name: &str, password: &str) -> Result<Durable<()>> {
        if password.chars().count() < MIN_PASSWORD {
            return Err(EngineError::Invalid(format!(
                "a password has at least {MIN_PASSWORD} characters"
            )));
        }
        let hash = hash_password(password)?;
        self.core
            .store
            .transaction_durable(|tx| {
                let Some(mut u) = tx.get::<User>(Table::Users, name.as_bytes())? else {
                    return abort(not_found("user", name));
                };
                u.password = Some(hash.clone());
                u.failed_logins = 0;
                u.locked_until = None;
                tx.put(Table::Users, name.as_bytes(), &u)
            })?
            .wait()?;
        // Whoever signed in with the old password (a leaked one, which is
        // why passwords are reset) is signed out.
        self.end_sessions_of(name)
    }

    /// Ends every session of `actor`; once that is durable, the answer.
    fn end_sessions_of(&self, actor: &str) -> Result<Durable<()>> {
        let keys: Vec<Vec<u8>> = self
            .core
            .store
            .scan::<Session>(Table::Sessions, b"")
            .filter_map(|r| match r {
                Ok((k, s)) if s.actor == actor => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        self.core.store.transaction_durable(|tx| {
            for k in &keys {
                tx.remove(Table::Sessions, k)?;
            }
            Ok(())
        })
    }

    /// Signs a user in with its password.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
        now: UnixTime,
        p: &LoginPolicy,
    ) -> Result<Durable<SignIn>> {
        let user: Option<User> = self.user(name)?;
        let stored = user
            .as_ref()
            .filter(|u| u.revoked.is_none())
            .and_then(|u| u.password.clone());
        let Some(stored) = stored else {
            let _ = password_ok(decoy(), password);
            let answer = match self
                .core
                .strangers
                .failed(name, now, p.max_failed, p.lockout_secs)
            {
                Some(until) => SignIn::Locked(until),
                None => SignIn::Refused,
            };
            return self.nothing(answer);
        };
        if let Some(until) = user.as_ref().and_then(|u| u.locked_until) {
            if until > now {
                let _ = password_ok(decoy(), password);
                return self.nothing(SignIn::Locked(until));
            }
        }
        let right = password_ok(&stored, password);
        let session = right.then(|| {
            let role = user.as_ref().map_or(Role::Admin, |u| u.role);
            new_session(name.to_owned(), role, now, p)
        });
        self.core.store.transaction_durable(|tx| {
            let Some(mut u) = tx.get::<User>(Table::Users, name.as_bytes())? else {
                return Ok(SignIn::Refused);
            };
            // Another sign-in may have changed the record since it was read
            // above: what counts is the record now.
            if u.revoked.is_some() || u.password.as_deref() != Some(stored.as_str()) {
                return Ok(SignIn::Refused);
            }
            if let Some(until) = u.locked_until.filter(|&until| until > now) {
                return Ok(SignIn::Locked(until));
            }
            let outcome = match &session {
                Some((id, s)) => {
                    u.failed_logins = 0;
                    u.locked_until = None;
                    tx.put(Table::Sessions, &token_key(id), s)?;
                    SignIn::Session(id.clone(), s.clone())
                }
                None => {
                    u.failed_logins += 1;
                    if u.failed_logins >= p.max_failed {
                        u.failed_logins = 0;
                        u.locked_until = Some(now.plus(p.lockout_secs));
                    }
                    SignIn::Refused
                }
            };
            tx.put(Table::Users, name.as_bytes(), &u)?;
            Ok(outcome)
        })
    }

    /// An answer that wrote nothing, durable at once.
    fn nothing(&self, s: SignIn) -> Result<Durable<SignIn>> {
        self.core
            .store
            .transaction_durable(|_| Ok(()))
            .map(|d| d.map(|()| s))
    }

    /// The session an id stands for, if it has not expired and its user
    /// (for a user's session) is not revoked.
    pub fn session(&self, id: &str, now: UnixTime) -> Result<Option<Session>> {
        let Some(s) = self
            .core
            .store
            .get::<Session>(Table::Sessions, &token_key(id))?
        else {
            return Ok(None);
        };
        if s.expires <= now {
            return Ok(None);
        }
        let live = match s.role {
            // A member blocked since signing in is signed out.
            Role::Member { member } => self.member_active(member)?,
            _ => self.user(&s.actor)?.is_some_and(|u| u.revoked.is_none()),
        };
        Ok(live.then_some(s))
    }

    /// Whether member `id` exists and is active (may sign in).
    fn member_active(&self, id: MemberId) -> Result<bool> {
        Ok(self
            .core
            .store
            .get::<Member>(Table::Members, &id.0.to_be_bytes())?
            .is_some_and(|m| m.status == Status::Active))
    }

    /// Forgets sessions past their expiry, codes past their send window
    /// and idempotency keys past [`crate::idempotency::KEEP_SECS`], so no
    /// table grows with every sign-in or call. Returns how many records
    /// went.
    pub fn forget_expired(&self, now: UnixTime) -> Result<usize> {
        let keys = crate::idempotency::forget(&self.core.store, now)?;
        let sessions: Vec<Vec<u8>> = self
            .core
            .store
            .scan::<Session>(Table::Sessions, b"")
            .filter_map(|r| match r {
                Ok((k, s)) if s.expires <= now => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        let codes: Vec<Vec<u8>> = self
            .core
            .store
            .scan::<LoginCode>(Table::LoginCodes, b"")
            .filter_map(|r| match r {
                Ok((k, c))
                    if c.expires <= now && c.sent.iter().all(|t| t.0 <= now.0 - CODE_WINDOW) =>
                {
                    Some(Ok(k))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        if sessions.is_empty() && codes.is_empty() {
            return Ok(keys);
        }
        // Removed only if still expired: a session or code renewed since
        // the scan stays.
        self.core.store.transaction(|tx| {
            let mut gone = 0;
            for k in &sessions {
                if tx
                    .get::<Session>(Table::Sessions, k)?
                    .is_some_and(|s| s.expires <= now)
                {
                    tx.remove(Table::Sessions, k)?;
                    gone += 1;
                }
            }
            for k in &codes {
                let stale = tx.get::<LoginCode>(Table::LoginCodes, k)?.is_some_and(|c| {
                    c.expires <= now && c.sent.iter().all(|t| t.0 <= now.0 - CODE_WINDOW)
                });
                if stale {
                    tx.remove(Table::LoginCodes, k)?;
                    gone += 1;
                }
            }
            Ok(gone + keys)
        })
    }

    /// Ends a session.
    pub fn sign_out(&self, id: &str) -> Result<Durable<()>> {
        self.core
            .store
            .transaction_durable(|tx| tx.remove(Table::Sessions, &token_key(id)))
    }

    /// Sends a one-time code to the active member with this phone, through
    /// the notice outbox. Answers the same whether or not there is one;
    /// [`EngineError::TooMany`] once the phone had its codes for the window.
    pub fn send_code(&self, phone: &str, now: UnixTime) -> Result<Durable<()>> {
        let phone = normal_phone(phone);
        if phone.len() < 8 {
            return Err(EngineError::Invalid(
                "a phone number has at least 8 digits".into(),
            ));
        }
        // Members are found by phone with a scan; the per-address limit on
        // this route bounds what that costs.
        let member: Option<Member> = self
            .core
            .store
            .scan::<Member>(Table::Members, b"")
            .map(|r| r.map(|(_, m)| m))
            .find(|r| {
                r.as_ref().map_or(true, |m| {
                    m.status == Status::Active && normal_phone(&m.phone) == phone
                })
            })
            .transpose()?;
        let code = {
            use rand::Rng;
            format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
        };
        self.core.store.transaction_durable(|tx| {
            let mut sent: Vec<UnixTime> = tx
                .get::<LoginCode>(Table::LoginCodes, phone.as_bytes())?
                .map(|c| c.sent)
                .unwrap_or_default();
            sent.retain(|t| t.0 > now.0 - CODE_WINDOW);
            if sent.len() >= CODES_PER_WINDOW {
                return abort(EngineError::TooMany(
                    "login codes for this phone; try again later".into(),
                ));
            }
            sent.push(now);
            // A number no active member has keeps its sends too, under a
            // void code no one can use: the limit then answers alike
            // whether or not the number is a member's, and tells no one
            // which numbers are.
            let Some(member) = &member else {
                let void = LoginCode {
                    member: MemberId(0),
                    hash: [0; 32],
                    expires: now,
                    attempts: CODE_ATTEMPTS,
                    sent,
                };
                return tx.put(Table::LoginCodes, phone.as_bytes(), &void);
            };
            let record = LoginCode {
                member: member.id,
                hash: code_hash(&phone, &code),
                expires: now.plus(CODE_SECS),
                attempts: 0,
                sent,
            };
            tx.put(Table::LoginCodes, phone.as_bytes(), &record)?;
            notice::enqueue(
                tx,
                now,
                member,
                NoticeKind::LoginCode { code: code.clone() },
            )?;
            Ok(())
        })
    }

    /// Signs a member in with the code sent to its phone: good once.
    pub fn sign_in_with_code(
        &self,
        phone: &str,
        code: &str,
        now: UnixTime,
        p: &LoginPolicy,
    ) -> Result<Durable<SignIn>> {
        let phone = normal_phone(phone);
        let given = code_hash(&phone, code.trim());
        self.core.store.transaction_durable(|tx| {
            let Some(mut c) = tx.get::<LoginCode>(Table::LoginCodes, phone.as_bytes())? else {
                return Ok(SignIn::Refused);
            };
            let void = c.expires <= now || c.attempts >= CODE_ATTEMPTS;
            let right = !void && super::constant_time_eq(&c.hash, &given);
            if !right {
                if !void {
                    c.attempts += 1;
                }
                tx.put(Table::LoginCodes, phone.as_bytes(), &c)?;
                return Ok(SignIn::Refused);
            }
            // Used: void from now on (the record stays for the send limit).
            c.attempts = CODE_ATTEMPTS;
            tx.put(Table::LoginCodes, phone.as_bytes(), &c)?;
            // A code sent before the member was blocked signs no one in.
            let active = tx
                .get::<Member>(Table::Members, &c.member.0.to_be_bytes())?
                .is_some_and(|m| m.status == Status::Active);
            if !active {
                return Ok(SignIn::Refused);
            }
            let role = Role::Member { member: c.member };
            let (id, s) = new_session(format!("member:{}", c.member.0), role, now, p);
            tx.put(Table::Sessions, &token_key(&id), &s)?;
            Ok(SignIn::Session(id, s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iranian_mobile_numbers_in_any_form_are_one_number() {
        assert_eq!(normal_phone("۰۹۱۲ ۰۰۰ ۰۰۰۱"), "09120000001");
        assert_eq!(normal_phone("+٩٨ ٩١٢٠٠٠٠٠٠١"), "09120000001");
        for p in [
            "09121234567",
            "+989121234567",
            "00989121234567",
            "0912 123 4567",
        ] {
            assert_eq!(normal_phone(p), "09121234567", "{p}");
        }
    }

    /// An engine on a memory ledger with one user, `sam`, whose password
    /// is "long enough password", made at the time it returns.
    fn engine_with_sam() -> (crate::Engine, UnixTime) {
        let store = crate::Store::memory().unwrap();
        let engine = crate::Engine::new(
            store,
            crate::CardHasher::new(&[7; 32]),
            crate::EngineConfig::default(),
        );
        let a = engine.access();
        let now = UnixTime(1_700_000_000);
        a.add_user("sam", Role::Support, None, now)
            .unwrap()
            .wait()
            .unwrap();
        a.set_password("sam", "long enough password")
            .unwrap()
            .wait()
            .unwrap();
        (engine, now)
    }

    /// What each of `tries` wrong passwords for `name` is answered, then
    /// the right one (`"long enough password"`), a second apart.
    fn answers(a: &Access<'_>, name: &str, tries: u32, now: UnixTime) -> Vec<&'static str> {
        let p = LoginPolicy::default();
        (0..=tries)
            .map(|i| {
                let password = if i == tries {
                    "long enough password"
                } else {
                    "wrong password, sorry"
                };
                match a.sign_in(name, password, now.plus(i64::from(i)), &p) {
                    Ok(d) => match d.wait() {
                        Ok(SignIn::Session(..)) => "session",
                        Ok(SignIn::Refused) => "refused",
                        Ok(SignIn::Locked(_)) => "locked",
                        Err(e) => panic!("{e}"),
                    },
                    Err(e) => panic!("{e}"),
                }
            })
            .collect()
    }

    #[test]
    fn a_name_no_user_has_locks_as_a_users_name_does() {
        let (engine, now) = engine_with_sam();
        let a = engine.access();
        let max = LoginPolicy::default().max_failed;
        let user = answers(&a, "sam", max + 1, now);
        let mut expected = vec!["refused"; max as usize];
        expected.extend(["locked", "locked"]);
        assert_eq!(user, expected, "the right password is locked out too");
        assert_eq!(answers(&a, "nobody", max + 1, now), user);
        // Once the lock runs out, the right password signs the user in.
        let later = now.plus(LoginPolicy::default().lockout_secs + 60);
        assert_eq!(answers(&a, "sam", 0, later), ["session"]);
        assert_eq!(answers(&a, "nobody", 0, later), ["refused"]);
    }

    #[test]
    fn expired_sessions_are_forgotten_and_live_ones_kept() {
        let (engine, now) = engine_with_sam();
        let a = engine.access();
        let short = LoginPolicy {
            session_secs: 10,
            ..LoginPolicy::default()
        };
        let sign = |at: UnixTime| match a.sign_in("sam", "long enough password", at, &short) {
            Ok(d) => match d.wait().unwrap() {
                SignIn::Session(id, _) => id,
                other => panic!("{other:?}"),
            },
            Err(e) => panic!("{e}"),
        };
        let old = sign(now);
        let young = sign(now.plus(5));
        assert_eq!(a.forget_expired(now.plus(11)).unwrap(), 1);
        assert!(a.session(&old, now).unwrap().is_none(), "forgotten");
        assert!(a.session(&young, now.plus(11)).unwrap().is_some());
    }

    #[test]
    fn a_password_hash_matches_its_password_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(password_ok(&h, "correct horse battery"));
        assert!(!password_ok(&h, "correct horse battery!"));
        assert!(!password_ok("not a hash", "x"));
    }
}

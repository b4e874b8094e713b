//! Who may act, and what they did: users with one role each, the API
//! tokens that stand for them, and the append-only, hash-chained log of
//! every operator action.
//!
//! **Users** are keyed by name. A role carries its scope ([`Role::Merchant`]
//! holds the merchant, [`Role::Member`] the member), so a scoped user
//! without a scope cannot be written down.
//!
//! **Tokens** are 32 random bytes, shown once; the ledger keeps only their
//! SHA-256. A token has 256 bits of entropy, so a fast hash is as strong as
//! a slow one here (argon2 is for passwords, which are guessable). A token
//! is refused once it expires, once it is revoked, and once its user is:
//! every check reads both records, so a revocation holds from the next
//! request on, on every node.
//!
//! **The action log** is a chain: entry `n` stores the SHA-256 of entry
//! `n − 1`, and its own hash covers every field and that link. The head
//! (last sequence number and hash) is one record written by every append,
//! so two appends on any number of nodes serialize on it (a conflict runs
//! one again) and the chain has no fork and no gap. An entry edited,
//! removed or inserted afterwards breaks a link [`Access::verify_log`]
//! (and so the ledger audit) reports.
//!
//! **Sign-ins** (passwords, sessions, one-time codes for members) are in
//! [`login`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use clubswitch_wire::MerchantId;

use crate::codec::Record;
use crate::core::Core;
use crate::error::{EngineError, Result};
use crate::model::{MemberId, UnixTime};
use crate::storage::{abort, Durable, Table};

pub mod login;

pub use crate::model::contact::{mobile, normal_phone};
pub use login::{LoginPolicy, Session, SignIn};

/// What a user may do: an operator role, or one scoped to a merchant or a
/// member.
///
/// Stored with bincode, so externally tagged (serde's default); the API
/// shows it as [`Role::name`] and the scope beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads; blocks and unblocks cards and terminals; edits members. No
    /// money moves, no keys.
    Support,
    /// Settlement, payouts and reports. No card or key operations.
    Finance,
    /// One merchant's terminals, rules, programme, reports and customers.
    Merchant { merchant: MerchantId },
    /// Balance look-ups at one merchant.
    Cashier { merchant: MerchantId },
    /// One member's own cards, balances and history.
    Member { member: MemberId },
}

impl Role {
    /// The role's name, without its scope.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Finance => "finance",
            Role::Merchant { .. } => "merchant",
            Role::Cashier { .. } => "cashier",
            Role::Member { .. } => "member",
        }
    }

    /// The merchant a merchant or cashier is bound to.
    pub fn merchant(&self) -> Option<&MerchantId> {
        match self {
            Role::Merchant { merchant } | Role::Cashier { merchant } => Some(merchant),
            _ => None,
        }
    }

    /// The member a member user is.
    pub fn member(&self) -> Option<MemberId> {
        match self {
            Role::Member { member } => Some(*member),
            _ => None,
        }
    }

    /// The role with its scope, as the action log and listings show it:
    /// `merchant:MER000000000001`, `member:42`, `admin`.
    pub fn label(&self) -> String {
        match self {
            Role::Merchant { merchant } | Role::Cashier { merchant } => {
                format!("{}:{}", self.name(), merchant.as_str())
            }
            Role::Member { member } => format!("member:{}", member.0),
            _ => self.name().to_owned(),
        }
    }
}

/// A person or system that signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub created: UnixTime,
    /// Set once: a revoked user's tokens and sessions are all refused.
    pub revoked: Option<UnixTime>,
    /// An argon2id hash (PHC string) of the console password, if any.
    pub password: Option<String>,
    /// Wrong passwords since the last right one.
    pub failed_logins: u32,
    /// Refused sign-ins until then, after too many wrong passwords.
    pub locked_until: Option<UnixTime>,
    /// The language the user chose to read the console in; none chosen
    /// yet, the console's default (format version 4).
    pub language: Option<Language>,
}

impl Record for User {
    fn upgrade(version: u8, body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
        match version {
            1..=3 => crate::codec::with_tail(body, &None::<Language>),
            _ => Ok(std::borrow::Cow::Borrowed(body)),
        }
    }
}

pub use crate::model::Language;

/// An API token as the ledger keeps it (keyed by its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: String,
    pub created: UnixTime,
    pub expires: Option<UnixTime>,
    pub revoked: Option<UnixTime>,
}

impl Record for TokenRecord {}

impl TokenRecord {
    /// A new, unrevoked token of user `name`.
    fn new(name: &str, now: UnixTime, expires: Option<UnixTime>) -> TokenRecord {
        TokenRecord {
            user: name.to_owned(),
            created: now,
            expires,
            revoked: None,
        }
    }
}

/// One recorded action: what was done, its place in the log and its link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionEntry {
    pub seq: u64,
    pub action: NewAction,
    /// The hash of the entry before (zeros for the first).
    pub prev: [u8; 32],
    /// SHA-256 over every field above.
    pub hash: [u8; 32],
}

impl Record for ActionEntry {}

/// An action to record; the log gives it its place and hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAction {
    pub at: UnixTime,
    /// The user's name (`admin.token` for the bootstrap credential; `-`
    /// when no credential was accepted).
    pub actor: String,
    /// [`Role::label`] of the actor, or `-`.
    pub role: String,
    /// Where the request came from (address and port).
    pub source: String,
    pub request_id: String,
    /// Method and route, e.g. `POST /v1/cards/{hash}/{action}`.
    pub action: String,
    /// The concrete path acted on, e.g. `/v1/cards/ab12…/top-up`.
    pub target: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// What was asked (the request body, secrets and card numbers removed).
    pub before: String,
    /// What came of it (the answer's body, likewise).
    pub after: String,
}

/// The head of the action log: the last entry's number and hash.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: [u8; 32],
}

impl Record for Head {}

/// Which entries [`Access::log`] returns.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub actor: Option<String>,
    /// Entries whose target contains this text.
    pub target: Option<String>,
    pub from: Option<UnixTime>,
    pub to: Option<UnixTime>,
    /// The newest this many (default 100).
    pub limit: Option<usize>,
}

const HEAD_KEY: &[u8] = b"H";
const ENTRY_PREFIX: u8 = b'E';

fn entry_key(seq: u64) -> [u8; 9] {
    let mut k = [ENTRY_PREFIX; 9];
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The longest a user name may be.
pub const MAX_NAME: usize = 64;

/// Users, tokens and the action log.
pub struct Access<'a> {
    core: &'a Core,
}

impl<'a> Access<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Access { core }
    }
}

/// A token's (or session id's) ledger key: its SHA-256.
fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `prefix` and 64 hex digits of randomness from the OS.
fn random_secret(prefix: &str) -> String {
    use rand::RngCore;
    let mut raw = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("{prefix}{}", hex::encode(raw))
}

/// A new API token.
fn new_token() -> String {
    random_secret("cst_")
}

/// Names the switch itself acts under in the action log: no user has one.
pub const RESERVED_NAMES: [&str; 2] = ["admin.token", "-"];

fn valid_name(name: &str) -> Result<()> {
    if RESERVED_NAMES.contains(&name) {
        return Err(EngineError::Invalid(format!("{name:?} is reserved")));
    }
    let ok = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "user name must be 1 to {MAX_NAME} letters, digits or . _ - @, starting with a letter or digit"
        )))
    }
}

impl Access<'_> {
    /// Adds a user and its first token (returned in clear, this once).
    pub fn add_user(
        &self,
        name: &str,
        role: Role,
        expires: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Durable<(User, String)>> {
        valid_name(name)?;
        if let Some(m) = role.merchant() {
            if self
                .core
                .store
                .get::<crate::model::Merchant>(Table::Merchants, m.as_bytes())?
                .is_none()
            {
                return Err(crate::admin::not_found("merchant", m));
            }
        }
        if let Some(m) = role.member() {
            if !self
                .core
                .store
                .contains(Table::Members, &m.0.to_be_bytes())?
            {
                return Err(crate::admin::not_found("member", m.0));
            }
        }
        let user = User {
            name: name.to_owned(),
            role,
            created: now,
            revoked: None,
            password: None,
            failed_logins: 0,
            locked_until: None,
            language: None,
        };
        let token = new_token();
        let record = TokenRecord::new(name, now, expires);
        let stored = self.core.store.transaction_durable(|tx| {
            if tx.contains(Table::Users, name.as_bytes())? {
                return abort(EngineError::Exists {
                    what: "user",
                    key: name.to_owned(),
                });
            }
            tx.put(Table::Users, name.as_bytes(), &user)?;
            tx.put(Table::Tokens, &token_key(&token), &record)
        })?;
        Ok(stored.map(|()| (user, token)))
    }

    /// Another token for an active user (returned in clear, this once).
    pub fn new_token(
        &self,
        name: &str,
        expires: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<Durable<String>> {
        let token = new_token();
        let record = TokenRecord::new(name, now, expires);
        let stored = self.core.store.transaction_durable(|tx| {
            match tx.get::<User>(Table::Users, name.as_bytes())? {
                Some(u) if u.revoked.is_none() => {}
                Some(_) => return abort(EngineError::Invalid(format!("user {name} is revoked"))),
                None => return abort(crate::admin::not_found("user", name)),
            }
            tx.put(Table::Tokens, &token_key(&token), &record)
        })?;
        Ok(stored.map(|()| token))
    }

    /// Revokes a user: every token of theirs is refused from now on.
    pub fn revoke_user(&self, name: &str, now: UnixTime) -> Result<Durable<User>> {
        self.core.store.transaction_durable(|tx| {
            let Some(mut u) = tx.get::<User>(Table::Users, name.as_bytes())? else {
                return abort(crate::admin::not_found("user", name));
            };
            u.revoked.get_or_insert(now);
            tx.put(Table::Users, name.as_bytes(), &u)?;
            Ok(u)
        })
    }

    /// Keeps the language `name` chose, for its next sign-in anywhere.
    pub fn set_language(&self, name: &str, language: Language) -> Result<Durable<()>> {
        self.core.store.transaction_durable(|tx| {
            let Some(mut u) = tx.get::<User>(Table::Users, name.as_bytes())? else {
                return abort(crate::admin::not_found("user", name));
            };
            if u.language != Some(language) {
                u.language = Some(language);
                tx.put(Table::Users, name.as_bytes(), &u)?;
            }
            Ok(())
        })
    }

    pub fn user(&self, name: &str) -> Result<Option<User>> {
        self.core.store.get(Table::Users, name.as_bytes())
    }

    pub fn users(&self) -> Result<Vec<User>> {
        self.core.store.values(Table::Users, b"")
    }

    /// The user a token stands for, if the token is known, unexpired and
    /// unrevoked and its user is not revoked.
    pub fn authenticate(&self, token: &str, now: UnixTime) -> Result<Option<User>> {
        let Some(t) = self
            .core
            .store
            .get::<TokenRecord>(Table::Tokens, &token_key(token))?
        else {
            return Ok(None);
        };
        if t.revoked.is_some() || t.expires.is_some_and(|e| e <= now) {
            return Ok(None);
        }
        Ok(self.user(&t.user)?.filter(|u| u.revoked.is_none()))
    }

    /// Appends an action to the log, durably.
    pub fn record(&self, a: &NewAction) -> Result<Durable<ActionEntry>> {
        self.core.store.transaction_durable(|tx| {
            let head: Head = tx.get(Table::ActionLog, HEAD_KEY)?.unwrap_or_default();
            let mut e = ActionEntry {
                seq: head.seq + 1,
                action: a.clone(),
                prev: head.hash,
                hash: [0; 32],
            };
            e.hash = entry_hash(&e).or_else(abort)?;
            tx.put(Table::ActionLog, &entry_key(e.seq), &e)?;
            tx.put(
                Table::ActionLog,
                HEAD_KEY,
                &Head {
                    seq: e.seq,
                    hash: e.hash,
                },
            )?;
            Ok(e)
        })
    }

    /// Entries matching `f`, newest first.
    pub fn log(&self, f: &LogFilter) -> Result<Vec<ActionEntry>> {
        let limit = f.limit.unwrap_or(100);
        let mut out = Vec::new();
        let all: Vec<ActionEntry> = self.core.store.values(Table::ActionLog, &[ENTRY_PREFIX])?;
        for e in all.into_iter().rev() {
            if out.len() >= limit {
                break;
            }
            let a = &e.action;
            let keep = f.actor.as_ref().is_none_or(|actor| &a.actor == actor)
                && f.target
                    .as_ref()
                    .is_none_or(|t| a.target.contains(t.as_str()))
                && f.from.is_none_or(|from| a.at >= from)
                && f.to.is_none_or(|to| a.at <= to);
            if keep {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Walks the whole chain: every entry's hash, every link, no gap, and
    /// the head on the last. Returns what is broken, in words.
    pub fn verify_log(&self) -> Result<(u64, Vec<String>)> {
        let mut violations = Vec::new();
        let mut prev = [0u8; 32];
        let mut expect = 1u64;
        for r in self
            .core
            .store
            .scan::<ActionEntry>(Table::ActionLog, &[ENTRY_PREFIX])
        {
            let (key, e) = r?;
            if key[..] != entry_key(e.seq)[..] || e.seq != expect {
                violations.push(format!(
                    "action log: entry {} found where {expect} belongs",
                    e.seq
                ));
            }
            if e.prev != prev {
                violations.push(format!(
                    "action log: entry {} does not follow the entry before it",
                    e.seq
                ));
            }
            if entry_hash(&e)? != e.hash {
                violations.push(format!(
                    "action log: entry {} was changed after it was written",
                    e.seq
                ));
            }
            prev = e.hash;
            expect = e.seq + 1;
        }
        let head: Head = self
            .core
            .store
            .get(Table::ActionLog, HEAD_KEY)?
            .unwrap_or_default();
        if head.seq != expect - 1 || head.hash != prev {
            violations.push(format!(
                "action log: the head names entry {} but the chain ends at {}",
                head.seq,
                expect - 1
            ));
        }
        Ok((expect - 1, violations))
    }
}

/// Compares two secrets in time that depends on their length only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 over the entry's fields (with `hash` zeroed) and its link, in
/// bincode's fixed-width layout whatever the record format: every stored
/// hash depends on it, so it must not follow the format's changes.
fn entry_hash(e: &ActionEntry) -> Result<[u8; 32]> {
    let mut unhashed = e.clone();
    unhashed.hash = [0; 32];
    let body = bincode::serialize(&unhashed).map_err(|err| EngineError::Corrupt {
        what: "action entry",
        reason: err.to_string(),
    })?;
    Ok(Sha256::digest(&body).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CardHasher, Engine, EngineConfig, Store};

    fn engine() -> Engine {
        let store = Store::memory().unwrap();
        Engine::new(store, CardHasher::new(&[7; 32]), EngineConfig::default())
    }

    #[test]
    fn a_user_written_before_languages_reads_with_none_chosen_and_keeps_its_choice() {
        // A version-3 body: the user as it was, without the language.
        #[derive(Serialize)]
        struct V3<'a> {
            name: &'a str,
            role: Role,
            created: UnixTime,
            revoked: Option<UnixTime>,
            password: Option<String>,
            failed_logins: u32,
            locked_until: Option<UnixTime>,
        }
        let mut raw = vec![3];
        bincode::serialize_into(
            &mut raw,
            &V3 {
                name: "desk",
                role: Role::Support,
                created: UnixTime(1),
                revoked: None,
                password: None,
                failed_logins: 2,
                locked_until: None,
            },
        )
        .unwrap();
        let u: User = crate::codec::from_slice(&raw).unwrap();
        assert_eq!(
            (u.name.as_str(), u.failed_logins, u.language),
            ("desk", 2, None)
        );

        let e = engine();
        e.access()
            .add_user("desk", Role::Support, None, UnixTime(1))
            .unwrap()
            .wait()
            .unwrap();
        e.access()
            .set_language("desk", Language::English)
            .unwrap()
            .wait()
            .unwrap();
        let kept = e.access().user("desk").unwrap().unwrap();
        assert_eq!(kept.language, Some(Language::English));
        assert!(e
            .access()
            .set_language("nobody", Language::Persian)
            .is_err());
    }

    fn action(n: u16) -> NewAction {
        NewAction {
            at: UnixTime(1_700_000_000),
            actor: "alice".into(),
            role: "admin".into(),
            action: "POST /v1/members".into(),
            target: "/v1/members".into(),
            status: n,
            ..NewAction::default()
        }
    }

    #[test]
    fn an_edited_entry_breaks_the_chain() {
        let engine = engine();
        let access = engine.access();
        for n in 0..5 {
            access.record(&action(200 + n)).unwrap().wait().unwrap();
        }
        assert_eq!(access.verify_log().unwrap(), (5, vec![]));
        let mut e: ActionEntry = engine
            .core()
            .store
            .get(Table::ActionLog, &entry_key(3))
            .unwrap()
            .unwrap();
        e.action.actor = "mallory".into();
        engine
            .core()
            .store
            .put(Table::ActionLog, &entry_key(3), &e)
            .unwrap();
        let (_, broken) = access.verify_log().unwrap();
        assert_eq!(
            broken,
            vec!["action log: entry 3 was changed after it was written".to_owned()]
        );
    }

    #[test]
    fn a_removed_entry_breaks_the_chain() {
        let engine = engine();
        let access = engine.access();
        for n in 0..4 {
            access.record(&action(200 + n)).unwrap().wait().unwrap();
        }
        engine
            .core()
            .store
            .transaction(|tx| tx.remove(Table::ActionLog, &entry_key(2)))
            .unwrap();
        let (_, broken) = access.verify_log().unwrap();
        assert!(broken.iter().any(|v| v.contains("entry 3")), "{broken:?}");
    }

    #[test]
    fn a_revoked_user_or_token_or_an_expired_token_is_refused_at_once() {
        let engine = engine();
        let access = engine.access();
        let now = UnixTime(1_700_000_000);
        let (_, token) = access
            .add_user("sam", Role::Support, None, now)
            .unwrap()
            .wait()
            .unwrap();
        assert_eq!(
            access.authenticate(&token, now).unwrap().unwrap().name,
            "sam"
        );
        assert!(access.authenticate("cst_guess", now).unwrap().is_none());
        let short = access
            .new_token("sam", Some(now.plus(60)), now)
            .unwrap()
            .wait()
            .unwrap();
        assert!(access.authenticate(&short, now.plus(59)).unwrap().is_some());
        assert!(access.authenticate(&short, now.plus(60)).unwrap().is_none());
        access.revoke_user("sam", now).unwrap().wait().unwrap();
        assert!(access.authenticate(&token, now).unwrap().is_none());
        assert!(access.new_token("sam", None, now).is_err());
    }

    #[test]
    fn a_scoped_role_names_an_existing_merchant_or_member() {
        let engine = engine();
        let now = UnixTime(1_700_000_000);
        let missing = Role::Member {
            member: MemberId(999),
        };
        assert!(matches!(
            engine.access().add_user("m", missing, None, now),
            Err(EngineError::NotFound { .. })
        ));
        for bad in ["", "-", "admin.token", ".hidden", "a b"] {
            assert!(
                matches!(
                    engine.access().add_user(bad, Role::Admin, None, now),
                    Err(EngineError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
    }
}

//! The admin API's route table: every route, who may call it, and its
//! handler, in one place. The router is built from this table and the
//! access check ([`super::access::guard`]) reads its rules from it, so a
//! route cannot exist without a declared rule.
//!
//! Admin may do everything (it is in every role set). Read the roles as
//! the issue that defined them: support reads, blocks and unblocks, edits
//! members, moves no money; finance settles and reports, touches no card
//! or key; a merchant sees and runs its own merchant; a cashier looks up
//! balances; a member sees itself.

use super::access::{Roles, Route, Rule, Scope};
use super::{audit, backup, cards, loyalty, members, merchants, reports, settlements, terminals};
use super::{login, users};

const ADMIN: Roles = Roles::ADMIN;
const SUPPORT: Roles = Roles::SUPPORT;
const FINANCE: Roles = Roles::FINANCE;
const MERCHANT: Roles = Roles::MERCHANT;
const CASHIER: Roles = Roles::CASHIER;
const MEMBER: Roles = Roles::MEMBER;

/// Operator roles only: no scoped caller.
const fn ops(r: Roles) -> Rule {
    Rule::Fixed(r, Scope::None)
}

const fn scoped(r: Roles, s: Scope) -> Rule {
    Rule::Fixed(r, s)
}

/// What support may do to a card; the rest (expiry, limits, link, renew,
/// top-up) is admin's.
const CARD_ACTIONS: &[(&str, Roles)] = &[("block", SUPPORT), ("unblock", SUPPORT)];

/// Support and a terminal's own merchant may block, unblock and unlock it;
/// key rotation is admin's.
const TERMINAL_ACTIONS: &[(&str, Roles)] = &[
    ("block", SUPPORT.or(MERCHANT)),
    ("unblock", SUPPORT.or(MERCHANT)),
    ("unlock", SUPPORT.or(MERCHANT)),
];

/// Every route of the admin API.
pub fn table() -> Vec<Route> {
    use Scope::*;
    vec![
        // Who am I, and what may each role do.
        Route::get("/v1/whoami", scoped(Roles::ANYONE, Own), users::whoami),
        Route::get("/v1/access", scoped(Roles::ANYONE, Own), users::access),
        // Signing in to the console, and out.
        Route::post("/v1/login", Rule::Public, login::sign_in),
        Route::post("/v1/login/code", Rule::Public, login::send_code),
        Route::post("/v1/login/verify", Rule::Public, login::sign_in_with_code),
        Route::post("/v1/logout", scoped(Roles::ANYONE, Own), login::sign_out),
        // Users and the action log.
        Route::get("/v1/users", ops(ADMIN), users::list_users),
        Route::post("/v1/users", ops(ADMIN), users::add_user),
        Route::post("/v1/users/{name}/revoke", ops(ADMIN), users::revoke_user),
        Route::post("/v1/users/{name}/tokens", ops(ADMIN), users::new_token),
        Route::post("/v1/users/{name}/password", ops(ADMIN), login::set_password),
        Route::get("/v1/audit-log", ops(SUPPORT), users::audit_log),
        // The ledger audit and backups.
        Route::get("/v1/audit", ops(SUPPORT.or(FINANCE)), audit::audit),
        Route::post("/v1/backup", ops(ADMIN), backup::backup),
        // Merchants and their discount rules.
        Route::get(
            "/v1/merchants",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            merchants::list_merchants,
        ),
        Route::post("/v1/merchants", ops(ADMIN), merchants::put_merchant),
        Route::get(
            "/v1/merchants/{id}/rules",
            scoped(SUPPORT.or(MERCHANT), MerchantPath),
            merchants::list_rules,
        ),
        Route::post(
            "/v1/merchants/{id}/rules",
            scoped(MERCHANT, MerchantPath),
            merchants::add_rule,
        ),
        Route::get(
            "/v1/merchants/{id}/program",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), MerchantPath),
            loyalty::get_program,
        ),
        Route::put(
            "/v1/merchants/{id}/program",
            scoped(MERCHANT, MerchantPath),
            loyalty::put_program,
        ),
        // Terminals.
        Route::get(
            "/v1/terminals",
            scoped(SUPPORT.or(MERCHANT), Own),
            terminals::list_terminals,
        ),
        Route::post("/v1/terminals", ops(ADMIN), terminals::add_terminal),
        Route::post(
            "/v1/terminals/{id}/{action}",
            Rule::ByAction(TERMINAL_ACTIONS, TerminalPath),
            terminals::terminal_action,
        ),
        Route::get(
            "/v1/terminals/{id}/history",
            scoped(SUPPORT.or(MERCHANT), TerminalPath),
            terminals::terminal_history,
        ),
        // Members.
        Route::post("/v1/members", ops(SUPPORT), members::add_member),
        Route::get(
            "/v1/members/{id}",
            scoped(SUPPORT.or(MEMBER), MemberPath),
            members::get_member,
        ),
        Route::put("/v1/members/{id}", ops(SUPPORT), members::update_member),
        Route::get(
            "/v1/members/{id}/loyalty",
            scoped(SUPPORT.or(MEMBER), MemberPath),
            loyalty::member_loyalty,
        ),
        Route::post("/v1/members/{id}/convert", ops(ADMIN), loyalty::convert),
        Route::post("/v1/members/{id}/referral", ops(SUPPORT), loyalty::refer),
        // Cards and store credit.
        Route::post("/v1/cards", ops(ADMIN), cards::issue_card),
        Route::post("/v1/cards/batch", ops(ADMIN), cards::issue_batch),
        Route::post(
            "/v1/cards/find",
            scoped(SUPPORT.or(CASHIER), Own),
            cards::find_card,
        ),
        Route::get(
            "/v1/cards/{hash}",
            scoped(SUPPORT.or(MEMBER), CardPath),
            cards::get_card,
        ),
        Route::get(
            "/v1/cards/{hash}/history",
            scoped(SUPPORT.or(MEMBER), CardPath),
            cards::card_history,
        ),
        Route::post(
            "/v1/cards/{hash}/{action}",
            Rule::ByAction(CARD_ACTIONS, None),
            cards::card_action,
        ),
        Route::post("/v1/store-credit", ops(ADMIN), cards::grant_store_credit),
        // Settlement and reports.
        Route::get(
            "/v1/settlements",
            scoped(FINANCE.or(MERCHANT), Own),
            settlements::list_settlements,
        ),
        Route::post("/v1/settlements", ops(FINANCE), settlements::run_settlement),
        Route::get(
            "/v1/reports",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            reports::report,
        ),
        // Loyalty.
        Route::post("/v1/loyalty/review", ops(ADMIN), loyalty::review),
        Route::post("/v1/loyalty/daily", ops(ADMIN), loyalty::daily),
        Route::get(
            "/v1/loyalty/report",
            ops(SUPPORT.or(FINANCE)),
            loyalty::loyalty_report,
        ),
        Route::get(
            "/v1/segments",
            scoped(SUPPORT.or(MERCHANT), MerchantQuery),
            loyalty::segments,
        ),
        Route::get("/v1/draws", ops(SUPPORT), loyalty::list_draws),
        Route::post("/v1/draws", ops(ADMIN), loyalty::run_draw),
        Route::get("/v1/draws/{id}/verify", ops(SUPPORT), loyalty::verify_draw),
        Route::get(
            "/v1/coalitions",
            ops(SUPPORT.or(FINANCE)),
            loyalty::list_coalitions,
        ),
        Route::put("/v1/coalitions", ops(ADMIN), loyalty::put_coalition),
        Route::get("/v1/coalitions/clearing", ops(FINANCE), loyalty::clearing),
        Route::get("/v1/notices", ops(SUPPORT), loyalty::notices),
    ]
}

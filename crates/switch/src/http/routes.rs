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

use super::access::{Roles, Route, Rule, Scope, CARD_ACTIONS, TERMINAL_ACTIONS};
use super::{
    audit, backup, campaigns, cards, coalitions, draws, loyalty, members, merchants, notices,
    payouts, reports, settlements, templates, terminals,
};
use super::{gateway, login, users};

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

/// Every route of the admin API, and the console's pages.
pub fn table() -> Vec<Route> {
    let mut t = api();
    t.extend(super::console::pages());
    t
}

/// The admin API's routes.
fn api() -> Vec<Route> {
    use Scope::*;
    vec![
        // Who am I, and what may each role do.
        Route::get("/v1/whoami", scoped(Roles::ANYONE, Own), users::whoami)
            .answers::<users::WhoAmI>()
            .doc("The caller: name, role, scope"),
        Route::get("/v1/access", scoped(Roles::ANYONE, Own), users::access)
            .answers_list::<super::access::AccessView>()
            .doc("Every route and the roles that may call it"),
        Route::get("/v1/openapi.json", Rule::Public, users::openapi)
            .answers::<super::openapi::Description>()
            .doc("This description of the admin API (OpenAPI 3.1)"),
        // Signing in to the console, and out.
        Route::post("/v1/login", Rule::SignIn, login::sign_in)
            .body::<login::PasswordIn>()
            .answers::<login::SessionView>()
            .doc("Sign in with a password: a session cookie and its CSRF token"),
        Route::post("/v1/login/code", Rule::SignIn, login::send_code)
            .body::<login::PhoneIn>()
            .answers::<login::CodeSent>()
            .doc("Send a one-time code to a member's phone"),
        Route::post("/v1/login/verify", Rule::SignIn, login::sign_in_with_code)
            .body::<login::CodeIn>()
            .answers::<login::SessionView>()
            .doc("Sign a member in with the code sent to its phone"),
        Route::post("/v1/logout", scoped(Roles::ANYONE, Own), login::sign_out)
            .answers::<login::SignedOut>()
            .doc("End the caller's session"),
        // Users and the action log.
        Route::get("/v1/users", ops(ADMIN), users::list_users)
            .answers_list::<users::UserView>()
            .doc("Users (never their tokens)"),
        Route::post("/v1/users", ops(ADMIN), users::add_user)
            .body::<users::UserIn>()
            .answers::<users::UserView>()
            .doc("Add a user; the answer holds its token, shown once"),
        Route::post("/v1/users/{name}/revoke", ops(ADMIN), users::revoke_user)
            .answers::<users::UserView>()
            .doc("Revoke a user: its tokens and sessions are refused from the next request on"),
        Route::post("/v1/users/{name}/tokens", ops(ADMIN), users::new_token)
            .body::<users::TokenIn>()
            .answers::<users::TokenView>()
            .doc("Another token for a user, shown once"),
        Route::post("/v1/users/{name}/password", ops(ADMIN), login::set_password)
            .body::<login::NewPasswordIn>()
            .answers::<login::PasswordSet>()
            .doc("Set a user's console password"),
        Route::get("/v1/audit-log", ops(SUPPORT), users::audit_log)
            .answers_list::<users::ActionView>()
            .doc("The action log, newest first (?actor, ?target, ?from, ?to, ?limit)"),
        // The ledger audit and backups.
        Route::get("/v1/audit", ops(SUPPORT.or(FINANCE)), audit::audit)
            .answers::<clubswitch_engine::AuditReport>()
            .doc("The ledger's invariants, the archive files and the action log's chain"),
        Route::post("/v1/backup", ops(ADMIN), backup::backup)
            .body::<backup::BackupIn>()
            .answers::<backup::BackupView>()
            .doc("An online backup into a new directory on the switch's machine"),
        // Merchants and their discount rules.
        Route::get(
            "/v1/merchants",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            merchants::list_merchants,
        )
        .answers_list::<merchants::MerchantView>()
        .doc("Merchants (a merchant: its own)"),
        Route::post("/v1/merchants", ops(ADMIN), merchants::put_merchant)
            .body::<merchants::MerchantIn>()
            .answers::<merchants::MerchantView>()
            .doc("Add or update a merchant"),
        Route::get(
            "/v1/merchants/{id}/rules",
            scoped(SUPPORT.or(MERCHANT), MerchantPath),
            merchants::list_rules,
        )
        .answers_list::<clubswitch_engine::RuleRecord>()
        .doc("A merchant's discount rules"),
        Route::post(
            "/v1/merchants/{id}/rules",
            scoped(MERCHANT, MerchantPath),
            merchants::add_rule,
        )
        .answers::<merchants::RuleAdded>()
        .doc("Add a discount rule (a DiscountRule object)"),
        Route::get(
            "/v1/merchants/{id}/program",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), MerchantPath),
            loyalty::get_program,
        )
        .answers::<clubswitch_engine::Program>()
        .doc("A merchant's loyalty programme"),
        Route::put(
            "/v1/merchants/{id}/program",
            scoped(MERCHANT, MerchantPath),
            loyalty::put_program,
        )
        .answers::<clubswitch_engine::Program>()
        .doc("Set a merchant's loyalty programme"),
        // Terminals.
        Route::get(
            "/v1/terminals",
            scoped(SUPPORT.or(MERCHANT), Own),
            terminals::list_terminals,
        )
        .answers_list::<terminals::TerminalView>()
        .doc("Terminals (a merchant: its own)"),
        Route::post("/v1/terminals", ops(ADMIN), terminals::add_terminal)
            .body::<terminals::TerminalIn>()
            .answers::<terminals::TerminalView>()
            .doc("Register a terminal; the answer holds its key, shown once"),
        Route::post(
            "/v1/terminals/{id}/{action}",
            Rule::ByAction(TERMINAL_ACTIONS, TerminalPath),
            terminals::terminal_action,
        )
        .answers::<terminals::TerminalView>()
        .doc("block, unblock, unlock or rotate-key a terminal"),
        Route::get(
            "/v1/terminals/{id}/history",
            scoped(SUPPORT.or(MERCHANT), TerminalPath),
            terminals::terminal_history,
        )
        .answers_list::<super::TxnView>()
        .doc("A terminal's transactions"),
        // Members.
        Route::post("/v1/members", ops(SUPPORT), members::add_member)
            .body::<members::MemberIn>()
            .answers::<members::MemberView>()
            .doc("Add a member"),
        Route::get(
            "/v1/members/{id}",
            scoped(SUPPORT.or(MEMBER), MemberPath),
            members::get_member,
        )
        .answers::<members::MemberView>()
        .doc("A member"),
        Route::put("/v1/members/{id}", ops(SUPPORT), members::update_member)
            .body::<members::MemberIn>()
            .answers::<members::MemberView>()
            .doc("Update a member"),
        Route::post(
            "/v1/members/{id}/marketing",
            scoped(SUPPORT.or(MEMBER), MemberPath),
            members::set_marketing,
        )
        .body::<members::MarketingIn>()
        .answers::<members::MemberView>()
        .doc("Opt a member out of marketing messages, or back in"),
        Route::post("/v1/imports/members", ops(SUPPORT), members::import_members)
            .body::<members::ImportIn>()
            .answers::<members::Imported>()
            .doc("Enrol up to 10,000 members at once, all or none"),
        Route::post("/v1/inbound/sms", ops(SUPPORT), members::inbound_sms)
            .body::<members::InboundSms>()
            .answers::<members::InboundDone>()
            .doc("The SMS gateway's inbound texts: opt-out and opt-in keywords"),
        Route::get(
            "/v1/members/{id}/loyalty",
            scoped(SUPPORT.or(MEMBER), MemberPath),
            loyalty::member_loyalty,
        )
        .answers::<loyalty::MemberLoyaltyView>()
        .doc("A member's standing, points and credit"),
        Route::post("/v1/members/{id}/convert", ops(ADMIN), loyalty::convert)
            .keyed()
            .body::<loyalty::ConvertIn>()
            .answers::<loyalty::Converted>()
            .doc("Convert points into store credit"),
        Route::post("/v1/members/{id}/referral", ops(SUPPORT), loyalty::refer)
            .body::<loyalty::ReferIn>()
            .answers::<loyalty::Referred>()
            .doc("Record a referral"),
        // Cards and store credit.
        Route::post("/v1/cards", ops(ADMIN), cards::issue_card)
            .body::<cards::CardIn>()
            .answers::<cards::CardView>()
            .doc("Issue a card"),
        Route::post("/v1/cards/batch", ops(ADMIN), cards::issue_batch)
            .body::<cards::BatchIn>()
            .answers::<cards::BatchIssued>()
            .doc("Issue a batch of club cards (personalization records)"),
        Route::post(
            "/v1/cards/find",
            scoped(SUPPORT.or(CASHIER), Own),
            cards::find_card,
        )
        .body::<cards::PanIn>()
        .answers::<cards::CardView>()
        .doc("Find a card by its number"),
        Route::get(
            "/v1/cards/{hash}",
            scoped(SUPPORT.or(MEMBER), CardPath),
            cards::get_card,
        )
        .answers::<cards::CardView>()
        .doc("A card and its balance"),
        Route::get(
            "/v1/cards/{hash}/history",
            scoped(SUPPORT.or(MEMBER), CardPath),
            cards::card_history,
        )
        .answers_list::<super::TxnView>()
        .doc("A card's transactions"),
        Route::post(
            "/v1/cards/{hash}/{action}",
            Rule::ByAction(CARD_ACTIONS, None),
            cards::card_action,
        )
        .answers::<cards::CardView>()
        .keyed()
        .doc("block, unblock, expiry, limits, link, renew or top-up a card"),
        Route::post("/v1/store-credit", ops(ADMIN), cards::grant_store_credit)
            .body::<cards::CreditIn>()
            .answers::<cards::CreditView>()
            .keyed()
            .doc("Grant store credit to a member at a merchant"),
        Route::post("/v1/gateways/{name}/top-up", Rule::Gateway, gateway::top_up)
            .body::<gateway::CallbackIn>()
            .answers::<gateway::CallbackView>()
            .doc("A payment gateway's signed top-up callback (HMAC, see the runbook)"),
        Route::post("/v1/refunds", scoped(CASHIER, MerchantBody), cards::refund)
            .body::<cards::RefundIn>()
            .answers::<cards::RefundView>()
            .keyed()
            .doc("Refund a confirmed purchase at the desk (a cashier: at its merchant)"),
        Route::post("/v1/points", ops(ADMIN), loyalty::grant_points)
            .body::<loyalty::PointsIn>()
            .answers::<loyalty::PointsView>()
            .keyed()
            .doc("Grant a member points at a merchant (negative: take back)"),
        // Settlement and reports.
        Route::get(
            "/v1/settlements",
            scoped(FINANCE.or(MERCHANT), Own),
            settlements::list_settlements,
        )
        .answers_list::<clubswitch_engine::settlement::BatchView>()
        .doc("Settlement batches (?format=csv; a merchant: its own)"),
        Route::post("/v1/payouts", ops(FINANCE), payouts::create_payout)
            .answers::<payouts::Made>()
            .keyed()
            .doc("Make a payout of every settled batch not yet paid or on its way"),
        Route::get("/v1/payouts", ops(FINANCE), payouts::list_payouts)
            .answers_list::<payouts::PayoutView>()
            .doc("Every payout"),
        Route::get("/v1/payouts/{id}", ops(FINANCE), payouts::get_payout)
            .answers::<payouts::PayoutView>()
            .doc("A payout (?format=pain001 for the bank's ISO 20022 file, or csv)"),
        Route::post("/v1/payouts/reconcile", ops(FINANCE), payouts::reconcile)
            .answers::<clubswitch_engine::payout::Reconciled>()
            .keyed()
            .doc("Read the bank's statement (camt.053 XML, or CSV end_to_end_id,status,reason)"),
        Route::get(
            "/v1/payouts/outstanding",
            scoped(FINANCE.or(MERCHANT), Own),
            payouts::outstanding,
        )
        .answers_list::<clubswitch_engine::payout::Outstanding>()
        .doc("What is still owed to each merchant (a merchant: itself)"),
        Route::get(
            "/v1/payouts/statement",
            scoped(FINANCE.or(MERCHANT), MerchantQuery),
            payouts::statement,
        )
        .answers::<clubswitch_engine::payout::Statement>()
        .doc("A merchant's statement for a period: batches and their transfers (?merchant, ?from, ?to)"),
        Route::post("/v1/settlements", ops(FINANCE), settlements::run_settlement)
            .body::<settlements::SettleIn>()
            .answers::<settlements::SettlementRun>()
            .doc("Run a settlement and write its files"),
        Route::get(
            "/v1/reports",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            reports::report,
        )
        .answers::<reports::ReportView>()
        .doc("Sales, discounts, fees and refunds for a period (?from, ?to, ?by)"),
        Route::get(
            "/v1/reports/history",
            scoped(SUPPORT.or(FINANCE).or(MERCHANT), Own),
            reports::history,
        )
        .answers::<reports::HistoryView>()
        .doc("Any period from the daily rollups, archived history included (?from, ?to, ?period, ?by, ?merchant, ?compare=last-year)"),
        // Loyalty.
        Route::post("/v1/loyalty/review", ops(ADMIN), loyalty::review)
            .answers_or_null::<loyalty::ReviewView>()
            .doc("Run the loyalty review now"),
        Route::post("/v1/loyalty/daily", ops(ADMIN), loyalty::daily)
            .answers_or_null::<loyalty::DailyView>()
            .doc("Run the daily pass now (null if it is done for today)"),
        Route::get(
            "/v1/loyalty/report",
            ops(SUPPORT.or(FINANCE)),
            loyalty::loyalty_report,
        )
        .answers::<clubswitch_engine::loyalty::LoyaltyReport>()
        .doc("Points and credit issued, redeemed, outstanding"),
        Route::get(
            "/v1/segments",
            scoped(SUPPORT.or(MERCHANT), MerchantQuery),
            loyalty::segments,
        )
        .answers_list::<clubswitch_engine::loyalty::Segment>()
        .doc("Members with their RFM scores (?merchant, ?group, ?format=csv)"),
        // The words of member notices.
        Route::get(
            "/v1/templates",
            scoped(SUPPORT.or(MERCHANT), MerchantQuery),
            templates::list,
        )
        .answers_list::<templates::TemplateView>()
        .doc("Every event's notice template in fa and en as it applies (?merchant)"),
        Route::put(
            "/v1/templates/{event}/{lang}",
            scoped(SUPPORT.or(MERCHANT), MerchantQuery),
            templates::put,
        )
        .body::<templates::TemplateIn>()
        .answers::<templates::TemplateView>()
        .doc("Write a notice template, the network's or ?merchant's; \"\" forgets it"),
        // Campaign messages.
        Route::get(
            "/v1/campaigns",
            scoped(SUPPORT.or(MERCHANT), Own),
            campaigns::list,
        )
        .answers_list::<campaigns::CampaignView>()
        .doc("Campaigns, newest first, with their figures"),
        Route::post(
            "/v1/campaigns",
            scoped(SUPPORT.or(MERCHANT), MerchantBody),
            campaigns::create,
        )
        .body::<campaigns::CampaignIn>()
        .answers::<campaigns::CampaignView>()
        .doc("Send a message to an audience, now or at a time"),
        Route::post(
            "/v1/campaigns/preview",
            scoped(SUPPORT.or(MERCHANT), MerchantBody),
            campaigns::preview,
        )
        .body::<campaigns::PreviewIn>()
        .answers::<campaigns::PreviewView>()
        .doc("Who an audience reaches, the text for a sample member, its SMS parts and cost"),
        Route::get(
            "/v1/campaigns/{id}",
            scoped(SUPPORT.or(MERCHANT), CampaignPath),
            campaigns::show,
        )
        .answers::<campaigns::CampaignView>()
        .doc("A campaign and its figures: queued, sent, failed, opted out, cost"),
        Route::post(
            "/v1/campaigns/{id}/cancel",
            scoped(SUPPORT.or(MERCHANT), CampaignPath),
            campaigns::cancel,
        )
        .answers::<campaigns::CampaignView>()
        .doc("Stop a campaign: what was not sent is dropped"),
        Route::get(
            "/v1/draws",
            scoped(SUPPORT.or(MERCHANT), Own),
            draws::list_draws,
        )
        .answers_list::<draws::DrawView>()
        .doc("Lucky draws"),
        Route::post(
            "/v1/draws",
            scoped(MERCHANT, MerchantBody),
            draws::run_draw,
        )
        .body::<draws::DrawIn>()
        .answers::<draws::DrawView>()
        .keyed()
        .doc("Run a lucky draw"),
        Route::get(
            "/v1/draws/{id}/verify",
            scoped(SUPPORT.or(MERCHANT), DrawPath),
            draws::verify_draw,
        )
        .answers::<draws::DrawVerified>()
        .doc("Run a draw's published algorithm again from its seed"),
        Route::get(
            "/v1/coalitions",
            ops(SUPPORT.or(FINANCE)),
            coalitions::list_coalitions,
        )
        .answers_list::<coalitions::CoalitionView>()
        .doc("Coalitions"),
        Route::put("/v1/coalitions", ops(ADMIN), coalitions::put_coalition)
            .body::<coalitions::CoalitionIn>()
            .answers::<coalitions::CoalitionView>()
            .doc("Create or replace a coalition"),
        Route::get("/v1/coalitions/clearing", ops(FINANCE), coalitions::clearing)
            .answers_list::<clubswitch_engine::loyalty::Owed>()
            .doc("Who owes whom for coalition credit"),
        Route::get("/v1/notices", ops(SUPPORT), notices::notices)
            .answers::<notices::NoticesView>()
            .doc("Member notices waiting for delivery (login codes withheld)"),
    ]
}

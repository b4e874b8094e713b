//! `clubswitch admin …`: operator commands, sent to the running daemon's
//! admin API (the embedded ledger admits one process, so the daemon does the
//! work).

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::error::SwitchError;

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The admin API.
    #[arg(
        long,
        env = "CLUBSWITCH_ADMIN_URL",
        default_value = "http://127.0.0.1:5859"
    )]
    url: String,
    /// File holding the bearer token (CLUBSWITCH_ADMIN_TOKEN wins).
    #[arg(long, default_value = "data/admin.token")]
    token_file: PathBuf,
    #[command(subcommand)]
    cmd: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Merchants: add or update, list, add a discount rule (JSON), list
    /// rules, loyalty programme.
    Merchant {
        #[command(subcommand)]
        cmd: MerchantCmd,
    },
    /// Terminals: register (prints the key once), list, block, unblock,
    /// unlock, rotate-key, history.
    Terminal {
        #[command(subcommand)]
        cmd: TerminalCmd,
    },
    /// Members: add, show, loyalty standing, convert points, record a
    /// referral.
    Member {
        #[command(subcommand)]
        cmd: MemberCmd,
    },
    /// Campaign messages: preview an audience, create (now or --at), list,
    /// show with figures, cancel.
    Campaign {
        #[command(subcommand)]
        cmd: CampaignCmd,
    },
    /// The words of member notices: list every event's template as it
    /// applies, set one, reset one to the next one down.
    Template {
        #[command(subcommand)]
        cmd: TemplateCmd,
    },
    /// Payouts of settled batches to merchants' banks, and reconciliation.
    Settlement {
        #[command(subcommand)]
        cmd: SettlementCmd,
    },
    /// Cards: issue, batch, find, block, unblock, expiry, renew, top-up, link, history.
    Card {
        #[command(subcommand)]
        cmd: CardCmd,
    },
    /// Grant store credit to a member at a merchant.
    Credit {
        #[arg(long)]
        member: u64,
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        amount: u64,
    },
    /// Run a settlement (cut-off: now, or a Unix time) and write its files.
    Settle {
        #[arg(long)]
        cutoff: Option<i64>,
    },
    /// List settlement batches (JSON, or CSV with --csv).
    Settlements {
        #[arg(long)]
        csv: bool,
    },
    /// Sales, discounts, fees and refunds for a period, by merchant or terminal.
    Report {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "merchant")]
        by: String,
    },
    /// Any period from the daily rollups, archived history included: by
    /// day, month, year, jalali-month or jalali-year, this year against
    /// last with --compare.
    History {
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "month")]
        period: String,
        #[arg(long, default_value = "merchant")]
        by: String,
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long)]
        compare: bool,
    },
    /// Check the ledger's invariants on the running switch.
    Audit,
    /// Copy the ledger and its archive files, consistent at one instant,
    /// into a new directory on the switch's machine while it runs
    /// (`clubswitch restore` puts it back; the master key is not in it).
    Backup {
        #[arg(long)]
        out: PathBuf,
    },
    /// Users of the admin API and console: add (prints the token once),
    /// list, revoke, a new token.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// The action log, newest first: who did what, when, from where.
    AuditLog {
        #[arg(long)]
        actor: Option<String>,
        /// A part of the path acted on, e.g. a terminal id.
        #[arg(long)]
        target: Option<String>,
        /// YYYY-MM-DD (UTC), inclusive.
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Any admin API call: a method, a path and an optional JSON body.
    Call {
        method: String,
        path: String,
        body: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Adds a user; prints its token, shown this once.
    Add {
        #[arg(long)]
        name: String,
        /// admin, support, finance, merchant, cashier or member.
        #[arg(long)]
        role: String,
        /// The merchant of a merchant or cashier.
        #[arg(long)]
        merchant: Option<String>,
        /// The member id of a member.
        #[arg(long)]
        member: Option<u64>,
        /// The token's lifetime in days (default: until revoked).
        #[arg(long)]
        expires_days: Option<u32>,
        /// Also set a console password, read from standard input.
        #[arg(long)]
        password: bool,
    },
    /// Set a user's console password, read from standard input.
    Password {
        name: String,
    },
    List,
    /// Revokes a user: its tokens are refused from the next request on.
    Revoke {
        name: String,
    },
    /// A new token for a user, shown this once.
    Token {
        name: String,
        #[arg(long)]
        expires_days: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MerchantCmd {
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 0)]
        fee_bps: u32,
        #[arg(long, default_value = "gross")]
        fee_base: String,
        #[arg(long, default_value = "")]
        settlement_account: String,
    },
    List,
    /// Add a discount rule given as JSON (see protocol-spec and README).
    Rule {
        merchant: String,
        json: String,
    },
    Rules {
        merchant: String,
    },
    /// Set a merchant's loyalty programme, given as JSON (runbook:
    /// Loyalty), or show it without JSON.
    Program {
        merchant: String,
        json: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TerminalCmd {
    Add {
        #[arg(long)]
        id: String,
        #[arg(long)]
        merchant: String,
    },
    List,
    Block {
        id: String,
    },
    Unblock {
        id: String,
    },
    Unlock {
        id: String,
    },
    RotateKey {
        id: String,
    },
    History {
        id: String,
    },
}

/// Who a campaign goes to: every condition given must hold.
#[derive(Debug, clap::Args)]
pub struct AudienceArgs {
    /// Customers of this merchant (a merchant's user: its own).
    #[arg(long)]
    merchant: Option<String>,
    /// RFM segment: champions, loyal, new, at_risk, lost or regular.
    #[arg(long)]
    segment: Option<String>,
    #[arg(long)]
    tier: Option<String>,
    #[arg(long)]
    group: Option<String>,
    /// No purchase for at least this many days.
    #[arg(long)]
    inactive_days: Option<u32>,
    /// Born in this month (1-12).
    #[arg(long)]
    birthday_month: Option<u8>,
}

impl AudienceArgs {
    fn json(&self) -> Value {
        json!({
            "merchant": self.merchant, "segment": self.segment, "tier": self.tier,
            "group": self.group, "inactive_days": self.inactive_days,
            "birthday_month": self.birthday_month,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum TemplateCmd {
    /// Every event's template in fa and en, the network's or a merchant's.
    List {
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Write a template: EVENT (receipt, expiry_warning, birthday,
    /// repurchase, …) and LANG (fa or en).
    Set {
        event: String,
        lang: String,
        #[arg(long)]
        text: String,
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Forget a template: the network's (or the default) applies again.
    Reset {
        event: String,
        lang: String,
        #[arg(long)]
        merchant: Option<String>,
    },
}

/// `?merchant=M`, or nothing.
fn merchant_query(merchant: &Option<String>) -> String {
    merchant
        .as_deref()
        .map(|m| format!("?merchant={}", query_escape(m)))
        .unwrap_or_default()
}

#[derive(Debug, Subcommand)]
pub enum CampaignCmd {
    /// How many members an audience reaches now, and the text written for
    /// a sample member with its SMS parts and cost.
    Preview {
        #[command(flatten)]
        audience: AudienceArgs,
        #[arg(long, default_value = "")]
        text_fa: String,
        #[arg(long, default_value = "")]
        text_en: String,
    },
    /// Send a message to an audience: placeholders {{ name }}, {{ tier }},
    /// {{ merchant }}, {{ points }}, {{ credit }}, {{ today }}.
    Create {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        audience: AudienceArgs,
        #[arg(long)]
        text_fa: String,
        #[arg(long, default_value = "")]
        text_en: String,
        /// Unix seconds: not before then (default: now).
        #[arg(long)]
        at: Option<i64>,
    },
    List,
    Show {
        id: u64,
    },
    Cancel {
        id: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    Add {
        #[arg(long)]
        name: String,
        /// An Iranian mobile number in any form (09…, +989…, 00989…,
        /// Persian digits too); kept as 09 and nine digits.
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long, default_value = "bronze")]
        tier: String,
        /// Member groups (repeat the flag for several).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// MM-DD, YYYY-MM-DD or a Jalali YYYY/MM/DD (the year is not
        /// kept), for the birthday greeting.
        #[arg(long)]
        birthday: Option<String>,
        /// The language of the member's messages: fa or en.
        #[arg(long)]
        language: Option<String>,
    },
    /// Enrol members from a CSV file:
    /// name,phone,tier,groups,language,marketing,joined (groups separated
    /// by ";", marketing "no" to enrol opted out, joined YYYY-MM-DD for
    /// their anniversaries; a header line starting "name" is skipped). Sent 10,000 at a time, each
    /// batch all or none.
    Import {
        file: PathBuf,
    },
    /// Stop marketing messages to a member (--off), or restart them
    /// (--on); receipts and expiry notices always go.
    Marketing {
        id: u64,
        #[arg(long, conflicts_with = "on", required_unless_present = "on")]
        off: bool,
        #[arg(long)]
        on: bool,
    },
    Show {
        id: u64,
    },
    /// Tier, VIP, referral code, points and store credit by merchant, and
    /// what of them expires when.
    Loyalty {
        id: u64,
    },
    /// Turn points at a merchant into store credit (all, or --points).
    Convert {
        id: u64,
        #[arg(long)]
        merchant: String,
        #[arg(long)]
        points: Option<u64>,
    },
    /// Record who referred a member (before their first purchase).
    Refer {
        id: u64,
        #[arg(long)]
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CardCmd {
    /// Issue a club card or enrol a bank card; the number is read from
    /// standard input so it stays out of shell history.
    Issue {
        #[arg(long, default_value = "club")]
        kind: String,
        #[arg(long)]
        member: Option<u64>,
        #[arg(long)]
        expiry: Option<String>,
    },
    /// Issue a batch of club cards; prints personalization records for the printer.
    Batch {
        #[arg(long)]
        bin: String,
        #[arg(long)]
        count: u32,
        #[arg(long, default_value_t = 0)]
        start: u64,
        #[arg(long)]
        expiry: Option<String>,
    },
    /// Find a card by number (read from standard input).
    Find,
    Show {
        hash: String,
    },
    Block {
        hash: String,
    },
    Unblock {
        hash: String,
    },
    Expiry {
        hash: String,
        expiry: String,
    },
    /// Renew onto a new number (read from standard input), balances carried over.
    Renew {
        hash: String,
        #[arg(long)]
        expiry: Option<String>,
    },
    TopUp {
        hash: String,
        #[arg(long)]
        amount: u64,
    },
    Link {
        hash: String,
        #[arg(long)]
        member: u64,
    },
    History {
        hash: String,
    },
}

fn read_pan() -> Result<String, SwitchError> {
    let mut s = String::new();
    std::io::stdin()
        .read_line(&mut s)
        .map_err(SwitchError::Stdin)?;
    Ok(s.trim().to_owned())
}

fn parse_json(s: &str) -> Result<Value, SwitchError> {
    serde_json::from_str(s).map_err(SwitchError::NotJson)
}

#[derive(Subcommand, Debug)]
pub enum SettlementCmd {
    /// A payout file for the bank: of payout PAYOUT (its id), or, without
    /// it, of a new payout of every settled batch not yet paid or on its
    /// way (returned ones included). Printed in the format asked.
    Payout {
        #[arg(value_name = "PAYOUT")]
        batch: Option<u64>,
        #[arg(long, default_value = "json", value_parser = ["json", "csv", "pain001"])]
        format: String,
    },
    /// Read the bank's statement (camt.053 XML, or a CSV of
    /// end_to_end_id,status,reason) and mark transfers paid or returned.
    Reconcile { file: std::path::PathBuf },
    /// What is still owed to each merchant.
    Outstanding,
}

/// Payout commands: a new payout's id comes from the first call.
fn settlement(base: &str, token: &str, cmd: SettlementCmd) -> Result<(), SwitchError> {
    match cmd {
        SettlementCmd::Payout { batch, format } => {
            let id = match batch {
                Some(id) => id,
                None => {
                    let made: Value = serde_json::from_str(&fetch(
                        base,
                        token,
                        "POST",
                        "/v1/payouts",
                        Body::Json(json!({})),
                    )?)
                    .unwrap_or(Value::Null);
                    match made["payout"]["id"].as_u64() {
                        Some(id) => id,
                        None => {
                            eprintln!("nothing to pay: every settled batch is paid or on its way");
                            return Ok(());
                        }
                    }
                }
            };
            call(
                base,
                token,
                "GET",
                &format!("/v1/payouts/{id}?format={format}"),
                None,
            )
        }
        SettlementCmd::Reconcile { file } => {
            let raw = std::fs::read(&file).map_err(|source| SwitchError::Io {
                path: file.clone(),
                source,
            })?;
            print_answer(fetch(
                base,
                token,
                "POST",
                "/v1/payouts/reconcile",
                Body::Raw(raw),
            )?);
            Ok(())
        }
        SettlementCmd::Outstanding => call(base, token, "GET", "/v1/payouts/outstanding", None),
    }
}

pub fn run(a: AdminArgs) -> Result<(), SwitchError> {
    let token = match std::env::var(crate::config::ADMIN_TOKEN_ENV) {
        Ok(t) => t,
        Err(_) => {
            std::fs::read_to_string(&a.token_file).map_err(|source| SwitchError::AdminToken {
                path: a.token_file.clone(),
                source,
            })?
        }
    };
    // A call made after the main one succeeded (a password after its user).
    let mut then: Option<(String, Value)> = None;
    let (method, path, body): (&str, String, Option<Value>) = match a.cmd {
        AdminCommand::Settlement { cmd } => return settlement(&a.url, &token, cmd),
        AdminCommand::Settle { cutoff } => return settle(&a.url, &token, cutoff),
        AdminCommand::Template { cmd } => match cmd {
            TemplateCmd::List { merchant } => (
                "GET",
                format!("/v1/templates{}", merchant_query(&merchant)),
                None,
            ),
            TemplateCmd::Set {
                event,
                lang,
                text,
                merchant,
            } => (
                "PUT",
                format!("/v1/templates/{event}/{lang}{}", merchant_query(&merchant)),
                Some(json!({ "text": text })),
            ),
            TemplateCmd::Reset {
                event,
                lang,
                merchant,
            } => (
                "PUT",
                format!("/v1/templates/{event}/{lang}{}", merchant_query(&merchant)),
                Some(json!({ "text": "" })),
            ),
        },
        AdminCommand::Campaign { cmd } => match cmd {
            CampaignCmd::Preview {
                audience,
                text_fa,
                text_en,
            } => {
                let mut body = audience.json();
                body["text_fa"] = json!(text_fa);
                body["text_en"] = json!(text_en);
                ("POST", "/v1/campaigns/preview".into(), Some(body))
            }
            CampaignCmd::Create {
                name,
                audience,
                text_fa,
                text_en,
                at,
            } => {
                let mut body = audience.json();
                body["name"] = json!(name);
                body["text_fa"] = json!(text_fa);
                body["text_en"] = json!(text_en);
                body["at"] = json!(at);
                ("POST", "/v1/campaigns".into(), Some(body))
            }
            CampaignCmd::List => ("GET", "/v1/campaigns".into(), None),
            CampaignCmd::Show { id } => ("GET", format!("/v1/campaigns/{id}"), None),
            CampaignCmd::Cancel { id } => ("POST", format!("/v1/campaigns/{id}/cancel"), None),
        },
        AdminCommand::Merchant { cmd } => match cmd {
            MerchantCmd::Add {
                id,
                name,
                fee_bps,
                fee_base,
                settlement_account,
            } => (
                "POST",
                "/v1/merchants".into(),
                Some(
                    json!({ "id": id, "name": name, "fee_bps": fee_bps, "fee_base": fee_base, "settlement_account": settlement_account }),
                ),
            ),
            MerchantCmd::List => ("GET", "/v1/merchants".into(), None),
            MerchantCmd::Rule { merchant, json } => (
                "POST",
                format!("/v1/merchants/{merchant}/rules"),
                Some(parse_json(&json)?),
            ),
            MerchantCmd::Rules { merchant } => {
                ("GET", format!("/v1/merchants/{merchant}/rules"), None)
            }
            MerchantCmd::Program {
                merchant,
                json: Some(json),
            } => (
                "PUT",
                format!("/v1/merchants/{merchant}/program"),
                Some(parse_json(&json)?),
            ),
            MerchantCmd::Program {
                merchant,
                json: None,
            } => ("GET", format!("/v1/merchants/{merchant}/program"), None),
        },
        AdminCommand::Terminal { cmd } => match cmd {
            TerminalCmd::Add { id, merchant } => (
                "POST",
                "/v1/terminals".into(),
                Some(json!({ "id": id, "merchant": merchant })),
            ),
            TerminalCmd::List => ("GET", "/v1/terminals".into(), None),
            TerminalCmd::Block { id } => ("POST", format!("/v1/terminals/{id}/block"), None),
            TerminalCmd::Unblock { id } => ("POST", format!("/v1/terminals/{id}/unblock"), None),
            TerminalCmd::Unlock { id } => ("POST", format!("/v1/terminals/{id}/unlock"), None),
            TerminalCmd::RotateKey { id } => {
                ("POST", format!("/v1/terminals/{id}/rotate-key"), None)
            }
            TerminalCmd::History { id } => ("GET", format!("/v1/terminals/{id}/history"), None),
        },
        AdminCommand::Member { cmd } => match cmd {
            MemberCmd::Add {
                name,
                phone,
                tier,
                groups,
                birthday,
                language,
            } => (
                "POST",
                "/v1/members".into(),
                Some(
                    json!({ "name": name, "phone": phone, "tier": tier, "groups": groups, "birthday": birthday, "language": language }),
                ),
            ),
            MemberCmd::Import { file } => return import_members(&a.url, &token, &file),
            MemberCmd::Marketing { id, on, .. } => (
                "POST",
                format!("/v1/members/{id}/marketing"),
                Some(json!({ "marketing": on })),
            ),
            MemberCmd::Show { id } => ("GET", format!("/v1/members/{id}"), None),
            MemberCmd::Loyalty { id } => ("GET", format!("/v1/members/{id}/loyalty"), None),
            MemberCmd::Convert {
                id,
                merchant,
                points,
            } => (
                "POST",
                format!("/v1/members/{id}/convert"),
                Some(json!({ "merchant": merchant, "points": points })),
            ),
            MemberCmd::Refer { id, code } => (
                "POST",
                format!("/v1/members/{id}/referral"),
                Some(json!({ "code": code })),
            ),
        },
        AdminCommand::Card { cmd } => match cmd {
            CardCmd::Issue {
                kind,
                member,
                expiry,
            } => (
                "POST",
                "/v1/cards".into(),
                Some(
                    json!({ "pan": read_pan()?, "kind": kind, "member": member, "expiry": expiry }),
                ),
            ),
            CardCmd::Batch {
                bin,
                count,
                start,
                expiry,
            } => (
                "POST",
                "/v1/cards/batch".into(),
                Some(json!({ "bin": bin, "count": count, "start": start, "expiry": expiry })),
            ),
            CardCmd::Find => (
                "POST",
                "/v1/cards/find".into(),
                Some(json!({ "pan": read_pan()? })),
            ),
            CardCmd::Show { hash } => ("GET", format!("/v1/cards/{hash}"), None),
            CardCmd::Block { hash } => ("POST", format!("/v1/cards/{hash}/block"), None),
            CardCmd::Unblock { hash } => ("POST", format!("/v1/cards/{hash}/unblock"), None),
            CardCmd::Expiry { hash, expiry } => (
                "POST",
                format!("/v1/cards/{hash}/expiry"),
                Some(json!({ "expiry": expiry })),
            ),
            CardCmd::Renew { hash, expiry } => (
                "POST",
                format!("/v1/cards/{hash}/renew"),
                Some(json!({ "pan": read_pan()?, "expiry": expiry })),
            ),
            CardCmd::TopUp { hash, amount } => (
                "POST",
                format!("/v1/cards/{hash}/top-up"),
                Some(json!({ "amount": amount })),
            ),
            CardCmd::Link { hash, member } => (
                "POST",
                format!("/v1/cards/{hash}/link"),
                Some(json!({ "member": member })),
            ),
            CardCmd::History { hash } => ("GET", format!("/v1/cards/{hash}/history"), None),
        },
        AdminCommand::Credit {
            member,
            merchant,
            amount,
        } => (
            "POST",
            "/v1/store-credit".into(),
            Some(json!({ "member": member, "merchant": merchant, "amount": amount })),
        ),
        AdminCommand::Settlements { csv } => (
            "GET",
            format!("/v1/settlements{}", if csv { "?format=csv" } else { "" }),
            None,
        ),
        AdminCommand::Report { from, to, by } => {
            let mut q = format!("?by={by}");
            if let Some(f) = from {
                q.push_str(&format!("&from={f}"));
            }
            if let Some(t) = to {
                q.push_str(&format!("&to={t}"));
            }
            ("GET", format!("/v1/reports{q}"), None)
        }
        AdminCommand::History {
            from,
            to,
            period,
            by,
            merchant,
            compare,
        } => {
            let mut q = format!("?period={}&by={}", query_escape(&period), query_escape(&by));
            for (k, v) in [("from", from), ("to", to), ("merchant", merchant)] {
                if let Some(v) = v {
                    q.push_str(&format!("&{k}={}", query_escape(&v)));
                }
            }
            if compare {
                q.push_str("&compare=last-year");
            }
            ("GET", format!("/v1/reports/history{q}"), None)
        }
        AdminCommand::Audit => ("GET", "/v1/audit".into(), None),
        AdminCommand::Backup { out } => {
            let dir = crate::backup::absolute(&out)?;
            (
                "POST",
                "/v1/backup".into(),
                Some(json!({ "dir": dir.display().to_string() })),
            )
        }
        AdminCommand::User { cmd } => match cmd {
            UserCmd::Add {
                name,
                role,
                merchant,
                member,
                expires_days,
                password,
            } => {
                if password {
                    let p = read_password()?;
                    then = Some((
                        format!("/v1/users/{name}/password"),
                        json!({ "password": p }),
                    ));
                }
                (
                    "POST",
                    "/v1/users".into(),
                    Some(json!({
                        "name": name, "role": role, "merchant": merchant, "member": member,
                        "expires_days": expires_days,
                    })),
                )
            }
            UserCmd::Password { name } => (
                "POST",
                format!("/v1/users/{name}/password"),
                Some(json!({ "password": read_password()? })),
            ),
            UserCmd::List => ("GET", "/v1/users".into(), None),
            UserCmd::Revoke { name } => ("POST", format!("/v1/users/{name}/revoke"), None),
            UserCmd::Token { name, expires_days } => (
                "POST",
                format!("/v1/users/{name}/tokens"),
                Some(json!({ "expires_days": expires_days })),
            ),
        },
        AdminCommand::AuditLog {
            actor,
            target,
            from,
            to,
            limit,
        } => {
            let limit = limit.map(|l| l.to_string());
            let q: Vec<String> = [
                ("actor", actor),
                ("target", target),
                ("from", from),
                ("to", to),
                ("limit", limit),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={}", query_escape(&v))))
            .collect();
            ("GET", format!("/v1/audit-log?{}", q.join("&")), None)
        }
        AdminCommand::Call { method, path, body } => {
            let body = body.as_deref().map(parse_json).transpose()?;
            let m: &'static str = match method.to_ascii_uppercase().as_str() {
                "GET" => "GET",
                "POST" => "POST",
                "PUT" => "PUT",
                other => return Err(SwitchError::Method(other.to_owned())),
            };
            (m, path, body)
        }
    };
    call(&a.url, &token, method, &path, body)?;
    if let Some((path, body)) = then {
        call(&a.url, &token, "POST", &path, Some(body))?;
    }
    Ok(())
}

/// A password from the first line of standard input.
fn read_password() -> Result<String, SwitchError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(SwitchError::Stdin)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Members per import call (the API's limit).
const IMPORT_BATCH: usize = 10_000;

/// The fields of one CSV line: commas separate, double quotes enclose a
/// field that holds commas, `""` inside quotes is a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields.into_iter().map(|f| f.trim().to_owned()).collect()
}

/// One member of an import file, as the API takes it.
fn member_of_line(fields: &[String]) -> Value {
    let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    let groups: Vec<&str> = field(3)
        .split(';')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    let marketing = !matches!(
        field(5).to_lowercase().as_str(),
        "no" | "false" | "0" | "off"
    );
    let tier = match field(2) {
        "" => "bronze".to_owned(),
        t => t.to_lowercase(),
    };
    let joined = Some(field(6)).filter(|j| !j.is_empty());
    json!({ "name": field(0), "phone": field(1), "tier": tier, "groups": groups,
            "language": field(4), "marketing": marketing, "joined": joined })
}

/// Enrols the members of a CSV file, a batch at a time; a bad line stops
/// the import at its batch (the batches before it stay enrolled).
fn import_members(base: &str, token: &str, file: &std::path::Path) -> Result<(), SwitchError> {
    let text = std::fs::read_to_string(file).map_err(|source| SwitchError::Io {
        path: file.to_owned(),
        source,
    })?;
    let members: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(csv_fields)
        .filter(|f| !f.first().is_some_and(|h| h.eq_ignore_ascii_case("name")))
        .map(|f| member_of_line(&f))
        .collect();
    let mut done = 0usize;
    for batch in members.chunks(IMPORT_BATCH) {
        let answer = fetch(
            base,
            token,
            "POST",
            "/v1/imports/members",
            Body::Json(json!({ "members": batch })),
        )
        .map_err(|e| match e {
            SwitchError::AdminStatus { code, message } => SwitchError::AdminStatus {
                code,
                message: format!("after {done} enrolled, lines from {}: {message}", done + 1),
            },
            e => e,
        })?;
        let ids = serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v["ids"].as_array().map(Vec::len))
            .unwrap_or(0);
        done += ids;
    }
    println!("{}", json!({ "enrolled": done }));
    Ok(())
}

/// What a call sends.
enum Body {
    None,
    Json(Value),
    /// A file as it is (a bank statement).
    Raw(Vec<u8>),
}

/// Runs a settlement and prints its answer. A run the switch's stop ended
/// early is said on standard error: its batches are settled and filed,
/// and the next run settles the rest.
fn settle(base: &str, token: &str, cutoff: Option<i64>) -> Result<(), SwitchError> {
    let body = Body::Json(json!({ "cutoff": cutoff }));
    let text = fetch(base, token, "POST", "/v1/settlements", body)?;
    let stopped = serde_json::from_str::<Value>(&text).is_ok_and(|v| v["complete"] == false);
    print_answer(text);
    if stopped {
        eprintln!(
            "the switch began to stop during the run: the batches above are settled and filed; run `admin settle` again to settle the rest"
        );
    }
    Ok(())
}

/// One admin API call; prints its answer.
fn call(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(), SwitchError> {
    let body = body.map_or(Body::None, Body::Json);
    print_answer(fetch(base, token, method, path, body)?);
    Ok(())
}

/// Prints an answer: JSON pretty, anything else as it is.
fn print_answer(text: String) {
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or(text)),
        Err(_) => print!("{text}"),
    }
}

/// One admin API call; returns its answer's text.
fn fetch(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Body,
) -> Result<String, SwitchError> {
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let req = ureq::request(method, &url).set("Authorization", &format!("Bearer {}", token.trim()));
    let resp = match body {
        Body::None => req.call(),
        Body::Json(b) => req.send_json(b),
        Body::Raw(b) => req
            .set("Content-Type", "application/octet-stream")
            .send_bytes(&b),
    };
    match resp {
        Ok(r) => {
            // A settlement of a busy day lists every item: no size limit
            // (ureq's `into_string` stops at 10 MB).
            let mut text = String::new();
            r.into_reader()
                .read_to_string(&mut text)
                .map_err(SwitchError::HttpBody)?;
            Ok(text)
        }
        Err(ureq::Error::Status(code, r)) => {
            let text = r.into_string().unwrap_or_default();
            let msg = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            Err(SwitchError::AdminStatus { code, message: msg })
        }
        Err(e) => Err(SwitchError::Http {
            what: url,
            source: Box::new(e),
        }),
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn query_escape(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

//! Payout files for the bank, and the bank's statement back.
//!
//! A payout (see `clubswitch_engine::payout`) is written as an ISO 20022
//! customer credit transfer initiation, `pain.001.001.09` (valid against
//! the published schema: CI checks it), or as a CSV: one credit transfer
//! per settled batch, from the operator's account (`[settlement.debtor]`)
//! to the merchant's IBAN, with an end-to-end id naming the payout and the
//! batch. The bank's answer is read from an ISO 20022 statement,
//! `camt.053.001.08` (booked debits with our end-to-end ids are paid;
//! booked returns, with their reason, are returned), or from a CSV of
//! results (`end_to_end_id,status,reason`).

use std::collections::HashMap;

use clubswitch_engine::payout::{BankOutcome, BankResult, Payout, PayoutItem};
use clubswitch_engine::settlement::csv_field;
use clubswitch_engine::UnixTime;
use clubswitch_wire::MerchantId;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::{Reader, Writer};
use serde::{Deserialize, Serialize};

/// The operator's account payouts are paid from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debtor {
    /// The operator's name, as the bank knows it.
    pub name: String,
    pub iban: String,
    /// The bank's BIC; absent: "NOTPROVIDED", as ISO 20022 allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bic: Option<String>,
}

/// Why a payout file or a statement could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PayoutError {
    #[error("settlement.debtor is not configured: a payout file needs the operator's account")]
    NoDebtor,
    #[error("writing the payout file: {0}")]
    Write(#[from] std::io::Error),
    #[error("the statement cannot be read: {0}")]
    Statement(String),
}

/// What a payout file says of each merchant besides its IBAN.
pub type MerchantNames = HashMap<MerchantId, String>;

/// The payout as `pain.001.001.09`, to be executed on local day
/// `execution_day`.
pub fn pain001(
    p: &Payout,
    items: &[PayoutItem],
    debtor: &Debtor,
    names: &MerchantNames,
    execution_day: i64,
) -> Result<String, PayoutError> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let msg_id = format!("CLUBSWITCH-PAYOUT-{}", p.id);
    let count = items.len().to_string();
    let total = items.iter().map(|i| i.amount).sum::<i64>().to_string();
    let created = p.created.to_rfc3339();
    // ISODateTime without the zone letter is local; with "Z" it is UTC.
    let execution = clubswitch_engine::iso_date(execution_day);
    w.create_element("Document")
        .with_attribute(("xmlns", "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"))
        .write_inner_content(|w| {
            w.create_element("CstmrCdtTrfInitn")
                .write_inner_content(|w| {
                    w.create_element("GrpHdr").write_inner_content(|w| {
                        text(w, "MsgId", &msg_id)?;
                        text(w, "CreDtTm", &created)?;
                        text(w, "NbOfTxs", &count)?;
                        text(w, "CtrlSum", &total)?;
                        w.create_element("InitgPty")
                            .write_inner_content(|w| text(w, "Nm", &max_text(&debtor.name, 140)))?;
                        Ok(())
                    })?;
                    w.create_element("PmtInf").write_inner_content(|w| {
                        text(w, "PmtInfId", &msg_id)?;
                        text(w, "PmtMtd", "TRF")?;
                        text(w, "NbOfTxs", &count)?;
                        text(w, "CtrlSum", &total)?;
                        w.create_element("ReqdExctnDt")
                            .write_inner_content(|w| text(w, "Dt", &execution))?;
                        w.create_element("Dbtr")
                            .write_inner_content(|w| text(w, "Nm", &max_text(&debtor.name, 140)))?;
                        account(w, "DbtrAcct", &debtor.iban)?;
                        w.create_element("DbtrAgt").write_inner_content(|w| {
                            w.create_element("FinInstnId").write_inner_content(
                                |w| match &debtor.bic {
                                    Some(bic) => text(w, "BICFI", bic),
                                    None => w
                                        .create_element("Othr")
                                        .write_inner_content(|w| text(w, "Id", "NOTPROVIDED"))
                                        .map(|_| ()),
                                },
                            )?;
                            Ok(())
                        })?;
                        for i in items {
                            transfer(w, i, names)?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
            Ok(())
        })?;
    String::from_utf8(w.into_inner())
        .map_err(|e| PayoutError::Write(std::io::Error::other(e.to_string())))
}

fn transfer(w: &mut Writer<Vec<u8>>, i: &PayoutItem, names: &MerchantNames) -> std::io::Result<()> {
    let merchant = i.merchant.as_str().trim();
    let name = names
        .get(&i.merchant)
        .map_or(merchant, String::as_str)
        .to_owned();
    w.create_element("CdtTrfTxInf").write_inner_content(|w| {
        w.create_element("PmtId")
            .write_inner_content(|w| text(w, "EndToEndId", &i.end_to_end))?;
        w.create_element("Amt").write_inner_content(|w| {
            w.create_element("InstdAmt")
                .with_attribute(("Ccy", "IRR"))
                .write_text_content(BytesText::new(&i.amount.to_string()))
                .map(|_| ())
        })?;
        w.create_element("Cdtr")
            .write_inner_content(|w| text(w, "Nm", &max_text(&name, 140)))?;
        account(w, "CdtrAcct", &i.iban)?;
        w.create_element("RmtInf").write_inner_content(|w| {
            text(
                w,
                "Ustrd",
                &format!("clubswitch settlement batch {} {merchant}", i.batch),
            )
        })?;
        Ok(())
    })?;
    Ok(())
}

fn account(w: &mut Writer<Vec<u8>>, tag: &str, iban: &str) -> std::io::Result<()> {
    w.create_element(tag).write_inner_content(|w| {
        w.create_element("Id")
            .write_inner_content(|w| text(w, "IBAN", iban))
            .map(|_| ())
    })?;
    Ok(())
}

fn text(w: &mut Writer<Vec<u8>>, tag: &str, value: &str) -> std::io::Result<()> {
    w.create_element(tag)
        .write_text_content(BytesText::new(value))
        .map(|_| ())
}

/// `s` cut to `max` characters (ISO 20022 text limits).
fn max_text(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The payout as CSV, one transfer per line, amounts in rials.
pub fn csv(items: &[PayoutItem], names: &MerchantNames) -> String {
    let mut out = String::from("end_to_end_id,batch,merchant,name,iban,amount,returned_before\n");
    for i in items {
        let merchant = i.merchant.as_str().trim();
        let name = names.get(&i.merchant).map_or("", String::as_str);
        let returns: Vec<&str> = i.returns.iter().map(|r| r.reason.as_str()).collect();
        out.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            i.end_to_end,
            i.batch,
            merchant,
            csv_field(name),
            csv_field(&i.iban),
            i.amount,
            csv_field(&returns.join("; "))
        ));
    }
    out
}

/// The results in a bank statement: `camt.053` XML, or a CSV of results.
pub fn read_statement(raw: &[u8]) -> Result<Vec<BankResult>, PayoutError> {
    let start = raw.iter().position(|b| !b.is_ascii_whitespace());
    match start.map(|i| raw[i]) {
        Some(b'<') => read_camt053(raw),
        Some(_) => read_csv(raw),
        None => Err(PayoutError::Statement("it is empty".into())),
    }
}

/// `end_to_end_id,status,reason` per line (a header line is skipped);
/// status `paid` or `returned`.
fn read_csv(raw: &[u8]) -> Result<Vec<BankResult>, PayoutError> {
    let text = std::str::from_utf8(raw)
        .map_err(|_| PayoutError::Statement("the CSV is not UTF-8".into()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (n == 0 && line.starts_with("end_to_end_id")) {
            continue;
        }
        let mut f = line.splitn(3, ',').map(str::trim);
        let (Some(id), Some(status)) = (f.next(), f.next()) else {
            return Err(PayoutError::Statement(format!(
                "line {}: end_to_end_id,status[,reason]",
                n + 1
            )));
        };
        let outcome = match status.to_ascii_lowercase().as_str() {
            "paid" => BankOutcome::Paid,
            "returned" => BankOutcome::Returned {
                reason: f.next().unwrap_or("").trim_matches('"').to_owned(),
            },
            other => {
                return Err(PayoutError::Statement(format!(
                    "line {}: status {other:?}: paid or returned",
                    n + 1
                )))
            }
        };
        out.push(BankResult {
            end_to_end: id.to_owned(),
            outcome,
        });
    }
    Ok(out)
}

/// One entry of a statement, as read.
#[derive(Default)]
struct Entry {
    debit: bool,
    booked: bool,
    details: Vec<Details>,
}

#[derive(Default)]
struct Details {
    end_to_end: Option<String>,
    return_code: Option<String>,
    return_info: Vec<String>,
}

/// Booked debits carrying one of our end-to-end ids are paid; booked
/// entries with return information are returned, with the reason code and
/// any additional text. Pending entries and everything else are left out.
fn read_camt053(raw: &[u8]) -> Result<Vec<BankResult>, PayoutError> {
    let mut reader = Reader::from_reader(raw);
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut in_statement = false;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| PayoutError::Statement(e.to_string()))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match name.as_str() {
                    "BkToCstmrStmt" => in_statement = true,
                    "Ntry" => entries.push(Entry::default()),
                    "TxDtls" => {
                        if let Some(e) = entries.last_mut() {
                            e.details.push(Details::default());
                        }
                    }
                    _ => {}
                }
                path.push(name);
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| PayoutError::Statement(e.to_string()))?
                    .into_owned();
                let Some(entry) = entries.last_mut() else {
                    continue;
                };
                let tail: Vec<&str> = path.iter().rev().take(3).map(String::as_str).collect();
                match tail.as_slice() {
                    ["CdtDbtInd", "Ntry", ..] => entry.debit = value == "DBIT",
                    ["Cd", "Sts", "Ntry"] => entry.booked = value == "BOOK",
                    // camt.053 before version 6 had the status as text.
                    ["Sts", "Ntry", ..] => entry.booked = value == "BOOK",
                    ["EndToEndId", "Refs", "TxDtls"] => {
                        if let Some(d) = entry.details.last_mut() {
                            d.end_to_end = Some(value);
                        }
                    }
                    ["Cd", "Rsn", "RtrInf"] | ["Prtry", "Rsn", "RtrInf"] => {
                        if let Some(d) = entry.details.last_mut() {
                            d.return_code = Some(value);
                        }
                    }
                    ["AddtlInf", "RtrInf", ..] => {
                        if let Some(d) = entry.details.last_mut() {
                            d.return_info.push(value);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !in_statement {
        return Err(PayoutError::Statement(
            "not a camt.053 bank-to-customer statement (no BkToCstmrStmt)".into(),
        ));
    }
    let mut out = Vec::new();
    for e in entries.into_iter().filter(|e| e.booked) {
        for d in e.details {
            let Some(end_to_end) = d.end_to_end.filter(|id| id != "NOTPROVIDED") else {
                continue;
            };
            let outcome = match (d.return_code, e.debit) {
                (Some(code), _) => {
                    let mut reason = code;
                    for info in d.return_info {
                        reason.push(' ');
                        reason.push_str(&info);
                    }
                    BankOutcome::Returned { reason }
                }
                (None, true) => BankOutcome::Paid,
                (None, false) => continue,
            };
            out.push(BankResult {
                end_to_end,
                outcome,
            });
        }
    }
    Ok(out)
}

/// The day a payout made at `now` is to be executed: today, local.
pub fn execution_day(now: UnixTime, utc_offset: i64) -> i64 {
    now.local_day(utc_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2026-12-03T08:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>1</Id>
      <Acct><Id><IBAN>IR000000000000000000000099</IBAN></Id></Acct>
      <Ntry>
        <Amt Ccy="IRR">99000</Amt><CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls><Refs><EndToEndId>C5-3</EndToEndId></Refs></TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="IRR">49500</Amt><CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>C5-4</EndToEndId></Refs>
          <RtrInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Closed account</AddtlInf></RtrInf>
        </TxDtls></NtryDtls>
      </Ntry>
      <Ntry>
        <Amt Ccy="IRR">1</Amt><CdtDbtInd>DBIT</CdtDbtInd>
        <Sts><Cd>PDNG</Cd></Sts>
        <NtryDtls><TxDtls><Refs><EndToEndId>C5-5</EndToEndId></Refs></TxDtls></NtryDtls>
      </Ntry>
    </Stmt>
  </BkToCstmrStmt>
</Document>"#;

    #[test]
    fn a_camt053_statement_reads_as_booked_payments_and_returns_with_their_reason() {
        let results = read_statement(CAMT.as_bytes()).unwrap();
        assert_eq!(
            results,
            vec![
                BankResult {
                    end_to_end: "C5-3".into(),
                    outcome: BankOutcome::Paid
                },
                BankResult {
                    end_to_end: "C5-4".into(),
                    outcome: BankOutcome::Returned {
                        reason: "AC04 Closed account".into()
                    }
                },
            ]
        );
    }

    #[test]
    fn a_csv_of_results_reads_and_a_wrong_status_is_refused() {
        let csv = "end_to_end_id,status,reason\nC1-2,paid\nC1-3,returned,AC01 wrong IBAN\n";
        let r = read_statement(csv.as_bytes()).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r[1].outcome,
            BankOutcome::Returned {
                reason: "AC01 wrong IBAN".into()
            }
        );
        assert!(read_statement(b"C1-2,maybe\n").is_err());
        assert!(read_statement(b"<Document/>").is_err());
        assert!(read_statement(b"  ").is_err());
    }
}

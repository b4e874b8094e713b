//! The whole request handler driven by arbitrary bytes, for the fuzz target
//! `handler` and the proptest that runs the same in CI.
//!
//! The bytes choose a message for one of the demo terminals (or an unknown
//! one): MTI, processing code, amounts, merchant, currency, card block,
//! references to earlier approvals, network codes and extra fields of any
//! kind, then MAC it with the terminal's key so the input reaches the flows
//! (one in 32 has its MAC broken). Every answer must be a well-formed,
//! correctly MACed response to the request, and the ledger's audit must
//! pass whenever it is checked.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use clubswitch::config::Config;
use clubswitch::handler::Switch;
use clubswitch::master::MasterKey;
use clubswitch_engine::UnixTime;
use clubswitch_wire::{
    decode, Amount, AuthId, CardAad, CardData, Currency, MerchantId, Message, Mti, NetworkCode,
    OriginalData, ProcessingCode, Rrn, Stan, TerminalId, TerminalKeys, Tmk, TransmissionTime,
};

const MASTER: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct Term {
    id: TerminalId,
    keys: TerminalKeys,
    merchant: MerchantId,
    /// DE 11 and DE 7 of recent requests, for DE 90.
    recent: Vec<(Stan, TransmissionTime)>,
    /// Recent approved purchase requests, for confirms, undos and refunds.
    approvals: Vec<Approval>,
}

#[derive(Clone, Copy)]
struct Approval {
    rrn: Rrn,
    auth_id: AuthId,
    stan: Stan,
    transmitted: TransmissionTime,
    code: ProcessingCode,
    amount: u64,
}

/// Keeps the last 64.
fn remember<T>(v: &mut Vec<T>, x: T) {
    if v.len() == 64 {
        v.remove(0);
    }
    v.push(x);
}

pub struct Harness {
    switch: Arc<Switch>,
    rt: tokio::runtime::Runtime,
    terms: Vec<Term>,
    cards: Vec<String>,
    pub runs: u64,
}

/// Reads choices from the input; past its end every read is zero.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }

    fn digits(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| b'0' + self.byte() % 10).collect()
    }
}

impl Harness {
    /// A switch on a fresh ledger in `dir`, seeded with the demo data set;
    /// terminals are never locked, so a broken MAC does not end the run.
    pub fn new(dir: &Path) -> Harness {
        let _ = std::fs::remove_dir_all(dir);
        let mut cfg = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        cfg.security.lockout_after = 0;
        let master = MasterKey::from_hex(MASTER).expect("master key");
        let engine = clubswitch::boot::open_engine(&cfg, &master).expect("engine");
        let demo = clubswitch::demo::seed(&engine, &master, dir, &cfg.holds).expect("demo data");
        let demo: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(demo).expect("demo.json"))
                .expect("demo.json");
        let mut terms: Vec<Term> = demo["terminals"]
            .as_array()
            .expect("terminals")
            .iter()
            .map(|t| Term {
                id: t["id"].as_str().and_then(|s| s.parse().ok()).expect("id"),
                keys: TerminalKeys::derive(
                    &t["tmk"].as_str().and_then(Tmk::from_hex).expect("tmk"),
                ),
                merchant: t["merchant"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("merchant"),
                recent: Vec::new(),
                approvals: Vec::new(),
            })
            .collect();
        terms.push(Term {
            id: "TERM9999".parse().expect("id"),
            keys: TerminalKeys::derive(&Tmk::from_bytes([7; 32])),
            merchant: terms[0].merchant,
            recent: Vec::new(),
            approvals: Vec::new(),
        });
        let cards = demo["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .filter_map(|c| c["pan"].as_str().map(str::to_owned))
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Harness {
            switch: Arc::new(Switch::new(engine, master, cfg)),
            rt,
            terms,
            cards,
            runs: 0,
        }
    }

    /// One message built from `data`, handled, and its answer checked.
    pub fn run(&mut self, data: &[u8]) {
        self.runs += 1;
        let mut input = Input(data);
        let t = input.below(self.terms.len());
        let mti = match input.below(10) {
            0..=2 => Mti::AUTH_REQUEST,
            3 | 4 => Mti::CONFIRM_ADVICE,
            5 => Mti::FINANCIAL_REQUEST,
            6 => Mti::REVERSAL_REQUEST,
            7 => Mti::REVERSAL_ADVICE,
            8 => Mti::NETWORK_REQUEST,
            _ => {
                let d = input.digits(4);
                Mti::new([d[0], d[1], d[2], d[3]]).unwrap_or(Mti::AUTH_REQUEST)
            }
        };
        let mut m = Message::new(mti);
        let now = UnixTime::now().0;
        let skew = match input.below(16) {
            15 => i64::from(input.u32() as i32),
            _ => i64::from(input.byte() % 4),
        };
        let transmitted = TransmissionTime::from_unix(now + skew);
        let stan = Stan::new(u32::from(input.byte()) * 4 + input.below(4) as u32)
            .unwrap_or_else(|| unreachable!("below 1,000,000"));
        m.set_transmission_time(transmitted);
        m.set_stan(stan);
        m.set_terminal_id(self.terms[t].id);

        // A follow-up to an earlier approval of this terminal, consistent
        // with it, or every field chosen on its own.
        let approvals = &self.terms[t].approvals;
        let follow_up = matches!(
            mti,
            Mti::FINANCIAL_REQUEST
                | Mti::CONFIRM_ADVICE
                | Mti::REVERSAL_REQUEST
                | Mti::REVERSAL_ADVICE
        ) && !approvals.is_empty()
            && input.below(4) != 3;
        if follow_up {
            let a = approvals[input.below(approvals.len())];
            let code = match (mti, a.code) {
                (Mti::FINANCIAL_REQUEST, ProcessingCode::StorePurchase) => {
                    ProcessingCode::StoreRefund
                }
                (Mti::FINANCIAL_REQUEST, _) => ProcessingCode::ClubRefund,
                (_, code) => code,
            };
            m.set_processing_code(code);
            let less = u64::from(input.byte()) * u64::from(input.byte());
            m.set_amount(Amount::new(a.amount.saturating_sub(less).max(1)).unwrap_or(Amount::ZERO));
            m.set_merchant_id(self.terms[t].merchant);
            m.set_rrn(a.rrn);
            m.set_auth_id(a.auth_id);
            m.set_original_data(&OriginalData {
                mti: Mti::AUTH_REQUEST,
                stan: a.stan,
                transmitted: a.transmitted,
            });
        } else {
            self.independent_fields(&mut input, t, &mut m);
        }
        if mti == Mti::NETWORK_REQUEST {
            match input.below(5) {
                0 => m.set_network_code(NetworkCode::SignOn),
                1 => m.set_network_code(NetworkCode::SignOff),
                2 => m.set_network_code(NetworkCode::Echo),
                3 => m.set_network_code(NetworkCode::KeyChange),
                _ => {
                    let _ = m.set(70, input.digits(3));
                }
            }
        }
        for _ in 0..input.below(4) {
            let n = 2 + input.below(127) as u8;
            // Not the MAC fields, and not DE 41: the message stays this
            // terminal's.
            if !matches!(n, 41 | 64 | 65 | 128) {
                let _ = m.set(n, input.bytes(40));
            }
        }
        match input.below(8) {
            0..=5 => {
                let pan = match input.below(8) {
                    0..=4 => self.cards[input.below(self.cards.len())]
                        .clone()
                        .into_bytes(),
                    5 | 6 => {
                        // A bank card of the demo BIN range, enrolled or not.
                        let body = format!("603799{}", String::from_utf8_lossy(&input.digits(9)));
                        clubswitch::demo::luhn_complete(&body)
                            .unwrap_or(body)
                            .into_bytes()
                    }
                    _ => {
                        let len = 12 + input.below(8);
                        input.digits(len)
                    }
                };
                if let (Ok(card), Ok(aad)) = (CardData::from_plaintext(&pan), CardAad::of(&m)) {
                    let _ = m.set(120, self.terms[t].keys.seal_card(&card, &aad).into_bytes());
                }
            }
            6 => {}
            _ => {
                let _ = m.set(120, input.bytes(80));
            }
        }
        // A stray field may have replaced DE 11 or DE 7: the answer and
        // later references go by what is sent.
        let sent_stan = m.stan();
        let (stan, transmitted) = (
            sent_stan.clone().unwrap_or(stan),
            m.transmission_time().unwrap_or(transmitted),
        );
        if mti == Mti::AUTH_REQUEST {
            remember(&mut self.terms[t].recent, (stan, transmitted));
        }

        let signer = self.terms[t].keys.clone();
        let raw = signer.sign(&mut m);
        let tampered = input.below(32) == 31;
        let raw = if tampered {
            let mut v = raw.to_vec();
            let i = input.below(v.len());
            v[i] ^= 1 | input.byte();
            Bytes::from(v)
        } else {
            raw
        };

        let switch = Arc::clone(&self.switch);
        let answer = self.rt.block_on(async move { switch.handle(raw).await });
        let Some(answer) = answer else {
            // Only what is not a readable request may go unanswered.
            assert!(
                tampered || mti.response().is_none(),
                "a request went unanswered"
            );
            return;
        };
        let resp = decode(&answer).expect("the answer decodes");
        assert!(resp.response_code().is_ok(), "the answer has a valid DE 39");
        if t < self.terms.len() - 1 && !tampered {
            assert_eq!(Some(resp.mti()), mti.response(), "the answer's MTI");
            if sent_stan.is_ok() {
                assert_eq!(resp.stan(), sent_stan, "the answer's DE 11");
            }
            signer.verify(&answer, &resp).expect("the answer is MACed");
            let approved = resp.response_code() == Ok(clubswitch_wire::ResponseCode::Approved);
            if let (true, Mti::AUTH_REQUEST, Ok(Some(code)), Ok(rrn), Ok(auth_id), Ok(amount)) = (
                approved,
                mti,
                m.processing_code(),
                resp.rrn(),
                resp.auth_id(),
                m.amount(),
            ) {
                let a = Approval {
                    rrn,
                    auth_id,
                    stan,
                    transmitted,
                    code,
                    amount: amount.value(),
                };
                remember(&mut self.terms[t].approvals, a);
            }
            if mti == Mti::NETWORK_REQUEST
                && resp.response_code() == Ok(clubswitch_wire::ResponseCode::Approved)
            {
                if let (Some(block), Ok(aad)) = (resp.get(120), CardAad::of(&resp)) {
                    let new = signer.unwrap_key(block, &aad).expect("the new key opens");
                    self.terms[t].keys = TerminalKeys::derive(&new);
                }
            }
        }
    }

    /// DE 3, 4, 42, 49, 37, 38 and 90 each chosen on its own.
    fn independent_fields(&self, input: &mut Input<'_>, t: usize, m: &mut Message) {
        match input.below(9) {
            8 => {
                let _ = m.set(3, input.digits(6));
            }
            i => m.set_processing_code(ProcessingCode::ALL[i % ProcessingCode::ALL.len()]),
        }
        match input.below(8) {
            0..=4 => m.set_amount(
                Amount::new(1_000 + u64::from(input.u32() % 3_000_000)).unwrap_or(Amount::ZERO),
            ),
            5 => {}
            6 => m.set_amount(Amount::ZERO),
            _ => {
                let _ = m.set(4, input.bytes(12));
            }
        }
        match input.below(8) {
            0..=4 => m.set_merchant_id(self.terms[t].merchant),
            5 => m.set_merchant_id(self.terms[(t + 2) % self.terms.len()].merchant),
            6 => {}
            _ => {
                let _ = m.set(42, input.bytes(15));
            }
        }
        match input.below(4) {
            0 | 1 => {}
            2 => m.set_currency(Currency::IRR),
            _ => {
                let _ = m.set(49, input.digits(3));
            }
        }
        if input.below(2) == 0 {
            let n = u64::from(input.u32()) % (self.runs + 1) + 1;
            m.set_rrn(Rrn::from_sequence(n));
            if input.below(4) != 0 {
                m.set_auth_id(AuthId::from_number(n));
            }
        }
        let recent = &self.terms[t].recent;
        if !recent.is_empty() && input.below(2) == 0 {
            let (stan, transmitted) = recent[input.below(recent.len())];
            m.set_original_data(&OriginalData {
                mti: Mti::AUTH_REQUEST,
                stan,
                transmitted,
            });
        }
    }

    /// The ledger's invariants.
    pub fn audit(&self) {
        let report = self.switch.engine.audit().ledger().expect("audit runs");
        assert!(report.ok(), "audit: {:?}", report.violations);
    }
}

//! Interop with a peer implementation: pyiso8583 with its unmodified
//! `default` spec, Python's HMAC and the `cryptography` package's AES-GCM.
//!
//! Runs `tests/interop/peer.py` with the interpreter in `CLUBSWITCH_PYTHON`
//! (`.ci/run` installs one in a virtual environment) or `python3`. Without a
//! Python that has both packages the test is skipped locally, and fails
//! under CI (`CI` set) so the check cannot silently disappear.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::Bytes;
use clubswitch_wire::spec::{self, Encoding, Length};
use clubswitch_wire::{decode, encode, CardAad, CardData, Message, Mti, TerminalKeys, Tmk};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

const MESSAGES: usize = 3000;

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/peer.py")
}

fn python() -> Option<String> {
    let py = std::env::var("CLUBSWITCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import iso8583, cryptography"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the pyiso8583 interop test: set CLUBSWITCH_PYTHON to a Python with pyiso8583 and cryptography"
    );
    eprintln!("skipping: no Python with pyiso8583 and cryptography (set CLUBSWITCH_PYTHON)");
    None
}

/// A field's value as the JSON lines carry it: text, or upper-case hex for
/// binary fields (pyiso8583's decoded form).
fn as_text(n: u8, v: &[u8]) -> String {
    match spec::field(n).map(|s| s.encoding) {
        Some(Encoding::Binary) => hex::encode_upper(v),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

fn fields_json(m: &Message) -> Map<String, Value> {
    m.fields()
        .map(|(n, v)| (n.to_string(), Value::String(as_text(n, v))))
        .collect()
}

#[test]
fn messages_pyiso8583_encodes_decode_here_field_by_field() {
    let Some(py) = python() else { return };
    let out = Command::new(&py)
        .arg(peer_script())
        .args(["gen", &MESSAGES.to_string(), "8583"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (mut n, mut macs, mut cards) = (0, 0, 0);
    for (i, line) in text.lines().enumerate() {
        let item: Value = serde_json::from_str(line).unwrap();
        let raw = Bytes::from(hex::decode(item["hex"].as_str().unwrap()).unwrap());
        let msg = decode(&raw).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        assert_eq!(
            msg.mti().as_str(),
            item["mti"].as_str().unwrap(),
            "line {}",
            i + 1
        );
        let want = item["fields"].as_object().unwrap();
        assert_eq!(&fields_json(&msg), want, "line {}", i + 1);
        assert_eq!(
            &encode(&msg)[..],
            &raw[..],
            "line {}: re-encoding differs",
            i + 1
        );
        if let Some(tmk) = item.get("tmk").and_then(Value::as_str) {
            let keys = TerminalKeys::derive(&Tmk::from_hex(tmk).unwrap());
            keys.verify(&raw, &msg)
                .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
            macs += 1;
            if let Some(card) = item.get("card").and_then(Value::as_str) {
                let aad = CardAad::of(&msg).unwrap();
                let opened = keys.open_card(msg.get(120).unwrap(), &aad).unwrap();
                assert_eq!(opened.to_plaintext(), card.as_bytes(), "line {}", i + 1);
                cards += 1;
            }
        }
        n += 1;
    }
    assert_eq!(n, MESSAGES);
    assert!(macs > 0 && cards > 0);
    eprintln!("decoded {n} pyiso8583 messages, verified {macs} MACs, opened {cards} card blocks");
}

fn random_value(rng: &mut StdRng, n: u8) -> Vec<u8> {
    let Some(s) = spec::field(n) else {
        return Vec::new();
    };
    let len = match s.length {
        Length::Fixed(l) => usize::from(l),
        Length::LlVar(m) | Length::LllVar(m) => rng.gen_range(0..=usize::from(m)),
    };
    (0..len)
        .map(|_| match s.encoding {
            Encoding::Ascii => rng.gen_range(0x20..0x7f),
            Encoding::Binary => rng.gen(),
        })
        .collect()
}

#[test]
fn messages_encoded_here_decode_in_pyiso8583_field_by_field() {
    let Some(py) = python() else { return };
    let mut rng = StdRng::seed_from_u64(1987);
    let mut lines = String::new();
    for i in 0..MESSAGES {
        let mti: [u8; 4] = std::array::from_fn(|_| rng.gen_range(b'0'..=b'9'));
        let mut m = Message::new(Mti::new(mti).unwrap());
        for _ in 0..rng.gen_range(0..30) {
            let n = rng.gen_range(2u8..=128);
            if n != 65 {
                m.set(n, random_value(&mut rng, n)).unwrap();
            }
        }
        let mut item = json!({});
        let raw = if i % 4 >= 2 {
            let tmk = Tmk::from_bytes(rng.gen());
            let keys = TerminalKeys::derive(&tmk);
            m.set(7, &b"1122183000"[..]).unwrap();
            m.set(
                11,
                format!("{:06}", rng.gen_range(0..1_000_000)).into_bytes(),
            )
            .unwrap();
            m.set(
                41,
                format!("TERM{:04}", rng.gen_range(0..10_000)).into_bytes(),
            )
            .unwrap();
            if i % 4 == 3 {
                let digits: String = (0..rng.gen_range(12..=19))
                    .map(|_| char::from(rng.gen_range(b'0'..=b'9')))
                    .collect();
                let plain = if rng.gen() {
                    format!("{digits}=2812")
                } else {
                    digits
                };
                let card = CardData::from_plaintext(plain.as_bytes()).unwrap();
                let block = keys.seal_card(&card, &CardAad::of(&m).unwrap());
                m.set(120, block.into_bytes()).unwrap();
                item["card"] = json!(plain);
            }
            item["tmk"] = json!(tmk.to_hex());
            keys.sign(&mut m)
        } else {
            encode(&m).freeze()
        };
        item["hex"] = json!(hex::encode_upper(&raw));
        item["mti"] = json!(m.mti().as_str());
        item["fields"] = Value::Object(fields_json(&m));
        lines.push_str(&item.to_string());
        lines.push('\n');
    }
    let mut child = Command::new(&py)
        .arg(peer_script())
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyiso8583 disagrees: {summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(summary.trim()).unwrap();
    assert_eq!(summary["checked"], json!(MESSAGES));
    assert_eq!(summary["failures"], json!(0));
    assert!(summary["cards"].as_u64().unwrap() > 0);
    eprintln!("pyiso8583 checked: {summary}");
}

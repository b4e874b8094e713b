//! The worked examples of `protocol-spec/README.md` are test vectors: each
//! JSON block, encoded by the real `clubswitch wire encode`, must give the hex
//! block under it byte for byte, and that hex must decode with a valid MAC.

use std::path::PathBuf;
use std::process::Command;

use bytes::Bytes;
use clubswitch_wire::{decode, CardAad, TerminalKeys, Tmk};

const TMK: &str = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F";

struct Vector {
    name: String,
    json: String,
    hex: String,
}

fn vectors() -> Vec<Vector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol-spec/README.md");
    let doc = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("<!-- vector: ") {
        rest = &rest[i + "<!-- vector: ".len()..];
        let name = rest[..rest.find(" -->").unwrap()].to_owned();
        let json_start = rest.find("```json\n").unwrap() + 8;
        let json_end = json_start + rest[json_start..].find("\n```").unwrap();
        let json = rest[json_start..json_end].to_owned();
        let hex_start = json_end + rest[json_end..].find("```hex\n").unwrap() + 7;
        let hex_end = hex_start + rest[hex_start..].find("```").unwrap();
        let hex: String = rest[hex_start..hex_end].split_whitespace().collect();
        out.push(Vector { name, json, hex });
        rest = &rest[hex_end..];
    }
    out
}

fn clubswitch(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_clubswitch"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_worked_example_encodes_to_its_hex_dump() {
    let vectors = vectors();
    assert!(vectors.len() >= 10, "found only {} vectors", vectors.len());
    for v in &vectors {
        assert!(!v.hex.is_empty(), "{}: empty hex block", v.name);
        let got = clubswitch(&["wire", "encode", "--key", TMK, &v.json]);
        assert_eq!(got.trim(), v.hex, "{}", v.name);
    }
}

#[test]
fn every_worked_example_decodes_with_a_valid_mac() {
    for v in vectors() {
        let out = clubswitch(&["wire", "decode", "--key", TMK, &v.hex]);
        let json: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(json["mac"], "valid", "{}", v.name);
        assert!(json.get("error").is_none(), "{}: {}", v.name, json["error"]);
    }
}

#[test]
fn key_change_example_unwraps_to_the_new_key() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "key-change-response")
        .unwrap();
    let raw = Bytes::from(hex::decode(&v.hex).unwrap());
    let msg = decode(&raw).unwrap();
    let old = TerminalKeys::derive(&Tmk::from_hex(TMK).unwrap());
    let new = old
        .unwrap_key(msg.get(120).unwrap(), &CardAad::of(&msg).unwrap())
        .unwrap();
    assert_eq!(
        new.to_hex(),
        "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
    );
}

#[test]
fn card_block_example_opens_to_the_card() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "club-purchase-request")
        .unwrap();
    let out = clubswitch(&["wire", "decode", "--key", TMK, &v.hex]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["card"]["pan"], "************0014");
    assert_eq!(json["card"]["expiry"], "2812");
}

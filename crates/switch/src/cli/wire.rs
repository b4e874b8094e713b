//! `clubswitch wire decode` and `clubswitch wire encode`: the integrator's
//! tools for looking at and building messages by hand.

use std::io::Read;

use bytes::{Bytes, BytesMut};
use clap::{Args, Subcommand, ValueEnum};
use clubswitch_wire::spec::{self, Encoding};
use clubswitch_wire::{
    de, decode_partial, encode, CardAad, CardData, FrameCodec, LengthHeader, Message, Mti,
    TerminalKeys, Tmk,
};
use serde_json::{json, Map, Value};

use crate::error::SwitchError;

#[derive(Debug, Subcommand)]
pub enum WireCommand {
    /// Decode a message given as hex into JSON naming each field.
    Decode(DecodeArgs),
    /// Encode a message given as JSON into hex; with --key, compute the card
    /// block and the MAC.
    Encode(EncodeArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Header {
    /// 2-byte big-endian length.
    Binary2,
    /// 4 ASCII digits.
    Ascii4,
}

impl From<Header> for LengthHeader {
    fn from(h: Header) -> Self {
        match h {
            Header::Binary2 => LengthHeader::Binary2,
            Header::Ascii4 => LengthHeader::Ascii4,
        }
    }
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The message as hex (spaces allowed); `-` or nothing reads standard input.
    hex: Option<String>,
    /// The hex starts with a length header of this kind.
    #[arg(long, value_enum)]
    framed: Option<Header>,
    /// Terminal master key (64 hex digits): verify the MAC and open the card
    /// block (the card number is shown masked).
    #[arg(long, env = "CLUBSWITCH_TMK", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// The message as JSON; `-` or nothing reads standard input.
    json: Option<String>,
    /// Prepend a length header of this kind.
    #[arg(long, value_enum)]
    framed: Option<Header>,
    /// Terminal master key (64 hex digits): seal `card` into DE 120 and set
    /// the MAC.
    #[arg(long, env = "CLUBSWITCH_TMK", hide_env_values = true)]
    key: Option<String>,
}

pub fn run(cmd: WireCommand) -> Result<(), SwitchError> {
    match cmd {
        WireCommand::Decode(a) => {
            let out = decode_cmd(a)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&out).map_err(SwitchError::NotJson)?
            );
        }
        WireCommand::Encode(a) => println!("{}", encode_cmd(a)?),
    }
    Ok(())
}

fn input(arg: Option<String>) -> Result<String, SwitchError> {
    match arg.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(SwitchError::Stdin)?;
            Ok(s)
        }
        Some(s) => Ok(s.to_owned()),
    }
}

fn keys(key: Option<&str>) -> Result<Option<TerminalKeys>, SwitchError> {
    key.map(|k| {
        Tmk::from_hex(k)
            .map(|t| TerminalKeys::derive(&t))
            .ok_or(SwitchError::KeyHex)
    })
    .transpose()
}

fn unframe(raw: Vec<u8>, header: LengthHeader) -> Result<Bytes, SwitchError> {
    use tokio_util::codec::Decoder as _;
    let mut codec = FrameCodec::new(header, header.limit());
    let mut buf = BytesMut::from(&raw[..]);
    match codec.decode(&mut buf) {
        Ok(Some(clubswitch_wire::Frame::Message(m))) if buf.is_empty() => Ok(m),
        Ok(Some(clubswitch_wire::Frame::KeepAlive)) => Err(SwitchError::LengthHeader(
            "a keep-alive (zero length)".into(),
        )),
        Ok(Some(_)) => Err(SwitchError::LengthHeader(format!(
            "{} bytes after the frame",
            buf.len()
        ))),
        Ok(None) => Err(SwitchError::LengthHeader(
            "the frame is shorter than its header says".into(),
        )),
        Err(e) => Err(SwitchError::LengthHeader(e.to_string())),
    }
}

/// The JSON form of a field value: text, or hex for binary fields.
pub fn field_text(n: u8, v: &[u8]) -> String {
    match spec::field(n).map(|s| s.encoding) {
        Some(Encoding::Binary) => hex::encode_upper(v),
        _ => String::from_utf8_lossy(v).into_owned(),
    }
}

/// A decoded message as JSON: MTI and each field with its name.
pub fn message_json(m: &Message) -> Value {
    let fields: Map<String, Value> = m
        .fields()
        .map(|(n, v)| {
            let name = spec::field(n).map_or("", |s| s.name);
            (
                n.to_string(),
                json!({ "name": name, "value": field_text(n, v) }),
            )
        })
        .collect();
    json!({ "mti": m.mti().as_str(), "fields": fields })
}

fn decode_cmd(a: DecodeArgs) -> Result<Value, SwitchError> {
    let text: String = input(a.hex)?.split_whitespace().collect();
    let raw = hex::decode(text).map_err(|source| SwitchError::Hex {
        what: "not hex".into(),
        source,
    })?;
    let raw = match a.framed {
        Some(h) => unframe(raw, h.into())?,
        None => Bytes::from(raw),
    };
    let (msg, err) = decode_partial(&raw);
    let mut out = msg.as_ref().map_or_else(|| json!({}), message_json);
    if let Some(e) = err {
        out["error"] = json!(e.to_string());
    }
    if let (Some(keys), Some(msg)) = (keys(a.key.as_deref())?, msg.as_ref()) {
        out["mac"] = json!(match keys.verify(&raw, msg) {
            Ok(()) => "valid".to_owned(),
            Err(e) => e.to_string(),
        });
        if let Some(block) = msg.get(de::CARD_BLOCK) {
            out["card"] = json!(match CardAad::of(msg)
                .map_err(Into::into)
                .and_then(|aad| keys.open_card(block, &aad))
            {
                Ok(card) => json!({
                    "pan": card.pan.masked(),
                    "expiry": card.expiry.map(|e| String::from_utf8_lossy(&e.to_yymm()).into_owned()),
                }),
                Err(e) => json!({ "error": e.to_string() }),
            });
        }
    }
    Ok(out)
}

/// Encodes the JSON message, returning hex.
fn encode_cmd(a: EncodeArgs) -> Result<String, SwitchError> {
    let doc: Value = serde_json::from_str(&input(a.json)?).map_err(SwitchError::NotJson)?;
    let bad = SwitchError::Invalid;
    let mti: Mti = doc["mti"]
        .as_str()
        .ok_or_else(|| bad("`mti` (4 digits) is required".into()))?
        .parse()
        .map_err(|e| bad(format!("{e}")))?;
    let mut msg = Message::new(mti);
    let empty = Map::new();
    let fields = match &doc["fields"] {
        Value::Null => &empty,
        Value::Object(f) => f,
        _ => {
            return Err(bad(
                "`fields` must be an object keyed by field number".into()
            ))
        }
    };
    for (k, v) in fields {
        let n: u8 = k
            .parse()
            .map_err(|_| bad(format!("field `{k}` is not a number")))?;
        let text = match v {
            Value::String(s) => s.as_str(),
            Value::Object(o) => o.get("value").and_then(Value::as_str).unwrap_or_default(),
            _ => return Err(bad(format!("DE {n}: value must be a string"))),
        };
        let value = match spec::field(n).map(|s| s.encoding) {
            Some(Encoding::Binary) => hex::decode(text).map_err(|source| SwitchError::Hex {
                what: format!("DE {n}"),
                source,
            })?,
            _ => text.as_bytes().to_vec(),
        };
        msg.set(n, value)?;
    }
    let keys = keys(a.key.as_deref())?;
    if let Some(card) = doc.get("card").filter(|c| !c.is_null()) {
        let keys = keys
            .as_ref()
            .ok_or_else(|| bad("`card` needs --key".into()))?;
        let pan = card["pan"].as_str().unwrap_or_default();
        let plain = match card["expiry"].as_str() {
            Some(e) => format!("{pan}={e}"),
            None => pan.to_owned(),
        };
        let data = CardData::from_plaintext(plain.as_bytes()).map_err(|e| bad(e.to_string()))?;
        let aad =
            CardAad::of(&msg).map_err(|e| bad(format!("card block needs DE 41, 11 and 7: {e}")))?;
        let block = match card["nonce"].as_str() {
            // A fixed nonce is for test vectors only; terminals use a fresh one.
            Some(n) => {
                let mut nonce = [0u8; 12];
                hex::decode_to_slice(n, &mut nonce)
                    .map_err(|_| bad("`card.nonce` must be 24 hex digits".into()))?;
                keys.seal_card_with_nonce(&data, &aad, nonce)
            }
            None => keys.seal_card(&data, &aad),
        };
        msg.set(de::CARD_BLOCK, block.into_bytes())?;
    }
    let raw = match &keys {
        Some(k) => k.sign(&mut msg),
        None => encode(&msg).freeze(),
    };
    let out = match a.framed {
        Some(h) => {
            let codec = FrameCodec::new(h.into(), LengthHeader::from(h).limit());
            let mut framed = BytesMut::new();
            codec
                .put_header(raw.len(), &mut framed)
                .map_err(|e| SwitchError::LengthHeader(e.to_string()))?;
            framed.extend_from_slice(&raw);
            framed.freeze()
        }
        None => raw,
    };
    Ok(hex::encode_upper(&out))
}

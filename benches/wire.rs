//! Wire codec benchmarks: decode and encode of a typical 0100 request and
//! 0110 response, MAC, and card block decryption.

use bytes::{Bytes, BytesMut};
use clubswitch_wire::{
    decode, encode_into, AccountType, Amount, AmountBlock, AmountBlocks, AmountType, AuthId,
    CardAad, CardData, Currency, Message, Mti, ProcessingCode, ResponseCode, Rrn, Stan,
    TerminalKeys, Tmk,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn keys() -> TerminalKeys {
    TerminalKeys::derive(&Tmk::from_bytes([0x5A; 32]))
}

/// A club purchase request as a terminal sends it: card block and MAC.
fn request(keys: &TerminalKeys) -> Bytes {
    let mut m = Message::new(Mti::AUTH_REQUEST);
    m.set_processing_code(ProcessingCode::ClubPurchase);
    m.set_amount(Amount::new(1_250_000).unwrap());
    m.set(7, &b"1122183000"[..]).unwrap();
    m.set_stan(Stan::new(123_456).unwrap());
    m.set(12, &b"220000"[..]).unwrap();
    m.set(13, &b"1122"[..]).unwrap();
    m.set_terminal_id("TERM0001".parse().unwrap());
    m.set_merchant_id("MERCHANT0000001".parse().unwrap());
    m.set_currency(Currency::IRR);
    let card = CardData::from_plaintext(b"6037991234567890=2812").unwrap();
    let block = keys.seal_card(&card, &CardAad::of(&m).unwrap());
    m.set(120, block.into_bytes()).unwrap();
    keys.sign(&mut m)
}

/// The 0110 approval the switch sends back for it.
fn response(keys: &TerminalKeys, req: &Message) -> Bytes {
    let mut m = Message::new(Mti::AUTH_RESPONSE);
    for n in [3, 4, 7, 11, 12, 13, 41, 42, 49] {
        if let Some(v) = req.get_bytes(n) {
            m.set(n, v.clone()).unwrap();
        }
    }
    m.set_rrn(Rrn::from_sequence(42));
    m.set_auth_id(AuthId::from_number(4242));
    m.set_response_code(ResponseCode::Approved);
    let mut blocks = AmountBlocks::new();
    for t in [AmountType::LedgerBalance, AmountType::AvailableBalance] {
        blocks.push(AmountBlock::credit(
            AccountType::Club,
            t,
            Currency::IRR,
            Amount::new(8_750_000).unwrap(),
        ));
    }
    m.set_additional_amounts(&blocks);
    keys.sign(&mut m)
}

fn wire(c: &mut Criterion) {
    let keys = keys();
    let req = request(&keys);
    let req_msg = decode(&req).unwrap();
    let resp = response(&keys, &req_msg);
    let resp_msg = decode(&resp).unwrap();
    let mut g = c.benchmark_group("wire");

    g.bench_function("decode_0100", |b| {
        b.iter(|| decode(black_box(&req)).unwrap())
    });
    g.bench_function("encode_0100", |b| {
        let mut buf = BytesMut::with_capacity(512);
        b.iter(|| {
            buf.clear();
            encode_into(black_box(&req_msg), &mut buf);
        })
    });
    g.bench_function("decode_encode_0100", |b| {
        let mut buf = BytesMut::with_capacity(512);
        b.iter(|| {
            let m = decode(black_box(&req)).unwrap();
            buf.clear();
            encode_into(&m, &mut buf);
        })
    });
    g.bench_function("decode_0110", |b| {
        b.iter(|| decode(black_box(&resp)).unwrap())
    });
    g.bench_function("encode_0110", |b| {
        let mut buf = BytesMut::with_capacity(512);
        b.iter(|| {
            buf.clear();
            encode_into(black_box(&resp_msg), &mut buf);
        })
    });
    g.bench_function("mac_verify_0100", |b| {
        b.iter(|| keys.verify(black_box(&req), black_box(&req_msg)).unwrap())
    });
    g.bench_function("sign_0110", |b| {
        let mut m = resp_msg.clone();
        let mut buf = BytesMut::with_capacity(512);
        b.iter(|| {
            buf.clear();
            keys.sign_into(black_box(&mut m), &mut buf);
        })
    });
    let aad = CardAad::of(&req_msg).unwrap();
    let block = req_msg.get(120).unwrap().to_vec();
    g.bench_function("card_block_open", |b| {
        b.iter(|| keys.open_card(black_box(&block), &aad).unwrap())
    });
    g.bench_function("derive_terminal_keys", |b| {
        let tmk = Tmk::from_bytes([1; 32]);
        b.iter(|| TerminalKeys::derive(black_box(&tmk)))
    });
    g.finish();
}

criterion_group!(benches, wire);
criterion_main!(benches);

#!/usr/bin/env python3
"""Interop peer for clubswitch's wire codec, built on pyiso8583.

Uses pyiso8583's unmodified `default` spec, Python's own hmac/hashlib and
the `cryptography` package's AES-GCM; nothing here comes from clubswitch.

  peer.py gen N SEED   print N JSON lines: messages pyiso8583 encoded, some
                       with a MAC and a card block computed here
  peer.py check        read JSON lines of messages clubswitch encoded; decode
                       each with pyiso8583 and compare field by field, verify
                       MACs and open card blocks; exit 1 on any mismatch
"""
import hashlib
import hmac
import json
import random
import sys

import iso8583
from iso8583.specs import default as SPEC
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DATA_FIELDS = [n for n in range(2, 129) if n != 65]


def derive(tmk: bytes):
    k_mac = hmac.new(tmk, b"clubswitch/mac/v1", hashlib.sha256).digest()
    k_enc = hmac.new(tmk, b"clubswitch/enc/v1", hashlib.sha256).digest()
    return k_mac, k_enc


def mac(k_mac: bytes, data: bytes) -> bytes:
    return hmac.new(k_mac, data, hashlib.sha256).digest()[:8]


def random_value(rng: random.Random, n: int) -> str:
    spec = SPEC[str(n)]
    size = spec["max_len"] if spec["len_type"] == 0 else rng.randint(0, spec["max_len"])
    if spec["data_enc"] == "b":
        return bytes(rng.getrandbits(8) for _ in range(size)).hex().upper()
    return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(size))


def text(n: int, value) -> str:
    """A field value as the JSON lines carry it: text, or hex for binary fields."""
    if isinstance(value, (bytes, bytearray)):
        return value.hex().upper()
    return value


def gen(count: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(count):
        doc = {"t": "".join(rng.choice("0123456789") for _ in range(4))}
        for n in rng.sample(DATA_FIELDS, rng.randint(0, 30)):
            doc[str(n)] = random_value(rng, n)
        line = {}
        kind = i % 4
        if kind >= 2:
            # A profile message: MAC, and on every other one a card block.
            tmk = bytes(rng.getrandbits(8) for _ in range(32))
            k_mac, k_enc = derive(tmk)
            doc.pop("64", None)
            doc.pop("128", None)
            doc["7"] = "1122183000"
            doc["11"] = "%06d" % rng.randint(0, 999999)
            doc["41"] = "TERM%04d" % rng.randint(0, 9999)
            if kind == 3:
                pan = "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 19)))
                pt = pan + ("=2812" if rng.random() < 0.5 else "")
                nonce = bytes(rng.getrandbits(8) for _ in range(12))
                aad = (doc["41"] + doc["11"] + doc["7"]).encode("ascii")
                ct = AESGCM(k_enc).encrypt(nonce, pt.encode("ascii"), aad)
                block = (nonce + ct).hex()
                doc["120"] = block.upper() if rng.random() < 0.5 else block.lower()
                line["card"] = pt
            above_64 = any(int(k) > 64 for k in doc if k.isdigit())
            mac_field = "128" if above_64 else "64"
            doc[mac_field] = "00" * 8
            raw, _ = iso8583.encode(dict(doc), SPEC)
            raw = bytes(raw[:-8]) + mac(k_mac, bytes(raw[:-8]))
            doc[mac_field] = raw[-8:].hex().upper()
            line["tmk"] = tmk.hex().upper()
        else:
            raw, _ = iso8583.encode(dict(doc), SPEC)
        line["hex"] = bytes(raw).hex().upper()
        line["mti"] = doc["t"]
        line["fields"] = {k: text(int(k), v) for k, v in doc.items() if k.isdigit()}
        print(json.dumps(line))


def check() -> int:
    failures = 0
    checked = macs = cards = 0
    for lineno, line in enumerate(sys.stdin, 1):
        item = json.loads(line)
        raw = bytes.fromhex(item["hex"])
        problems = []
        try:
            dec, _ = iso8583.decode(raw, SPEC)
        except iso8583.DecodeError as e:
            problems.append(f"pyiso8583 cannot decode: {e}")
            dec = None
        if dec is not None:
            if dec["t"] != item["mti"]:
                problems.append(f"MTI {dec['t']} != {item['mti']}")
            got = {k: v for k, v in dec.items() if k.isdigit() and k != "1"}
            want = item["fields"]
            for k in sorted(set(got) | set(want), key=int):
                if got.get(k) != want.get(k):
                    problems.append(f"DE {k}: pyiso8583 {got.get(k)!r} != clubswitch {want.get(k)!r}")
            reenc, _ = iso8583.encode(dict(dec), SPEC)
            if bytes(reenc) != raw:
                problems.append("pyiso8583 re-encodes different bytes")
        if "tmk" in item:
            k_mac, k_enc = derive(bytes.fromhex(item["tmk"]))
            if not hmac.compare_digest(mac(k_mac, raw[:-8]), raw[-8:]):
                problems.append("MAC does not verify")
            macs += 1
            if "card" in item and dec is not None:
                block = bytes.fromhex(dec["120"])
                aad = (dec["41"] + dec["11"] + dec["7"]).encode("ascii")
                try:
                    pt = AESGCM(k_enc).decrypt(block[:12], block[12:], aad).decode("ascii")
                    if pt != item["card"]:
                        problems.append("card block opens to a different card")
                except Exception as e:  # noqa: BLE001 - report any failure
                    problems.append(f"card block does not open: {e!r}")
                cards += 1
        checked += 1
        if problems:
            failures += 1
            if failures <= 10:
                print(f"line {lineno}: " + "; ".join(problems), file=sys.stderr)
    print(json.dumps({"checked": checked, "macs": macs, "cards": cards, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen"]:
        gen(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["check"]:
        sys.exit(check())
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)

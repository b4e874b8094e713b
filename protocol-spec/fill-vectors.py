#!/usr/bin/env python3
"""Fills the hex block under each `<!-- vector: NAME -->` JSON block of
README.md with the output of `clubswitch wire encode --key <test TMK>`.

Run after changing an example; tests/protocol_spec.rs checks every block.
usage: protocol-spec/fill-vectors.py [path/to/clubswitch]
"""
import pathlib
import re
import subprocess
import sys

TMK = "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
here = pathlib.Path(__file__).parent
binary = sys.argv[1] if len(sys.argv) > 1 else str(here.parent / "target/debug/clubswitch")
doc = (here / "README.md").read_text()
pattern = re.compile(r"(<!-- vector: [\w-]+ -->\n```json\n)(.*?)(\n```\n```hex\n)(.*?)(```)", re.S)


def fill(m):
    out = subprocess.run([binary, "wire", "encode", "--key", TMK, m.group(2)],
                         check=True, capture_output=True, text=True).stdout.strip()
    lines = "".join(out[i:i + 64] + "\n" for i in range(0, len(out), 64))
    return m.group(1) + m.group(2) + m.group(3) + lines + m.group(5)


(here / "README.md").write_text(pattern.sub(fill, doc))

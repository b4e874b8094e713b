#!/usr/bin/env bash
# A quiet switch: one terminal connection at a low, fixed rate, against the
# byte-echo server at the same rate in the same run, so what the switch
# adds to a round trip shows apart from what the box's network stack,
# scheduler and the load generator cost (the issue's goal: an 0100 on a
# quiet switch answered in under 100 us at the median).
#
#   benches/quiet.sh [rounds] [seconds] [rates]
#
# Defaults: 3 rounds of 5 s at 200 and 1,000 flows/s ("200 1000"), every
# flow a club balance inquiry (one 0100; MIX=discount=100 gives a lookup's
# 0100 and its durable 0220 instead). Per run: p50/p99 of each request MTI
# and, for the switch, its CPU per message; then per rate and MTI the
# medians and the switch's p50 less the echo server's.
#
# On the 2-core development VM a round trip costs more the longer the
# threads slept before it (inquiries: 190 us of the switch's CPU per
# message at 200/s, 72-82 at 1,000/s, in one run), and runs minutes apart
# differ by up to 2x: the same-run echo figure is the yardstick, not a
# fixed number. A quiet durable flow costs far more than one under load,
# where a flush covers many: each 0220 pays a flush of its own, and sled
# wakes every idle sled-io thread for each write it hands them (8,200
# context switches in those threads per 1,000 lookups; 25,000 while each
# commit of several keys was a sled batch, which hands them two more).
set -euo pipefail
rounds=${1:-3}
secs=${2:-5}
rates=${3:-200 1000}
mix=${MIX:-inquiry=100}

source "$(dirname "$0")/switch.sh"
build_echo

dir=$(mktemp -d -t clubswitch-quiet-XXXXXX)
echo_pid=
trap 'kill $echo_pid ${pid:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
start_switch "$dir" 28858
"$echo_bin" 28868 2 &
echo_pid=$!
sleep 0.2

# run NAME PORT RATE: one load-generator run as a JSON line, with the
# switch's CPU per message when NAME is the switch.
run() {
  local before after out
  before=$(cpu_ticks "$pid")
  out=$("$bin" loadgen --addr "127.0.0.1:$2" --demo "$dir/demo.json" -c 1 \
    --rate "$3" -d "$secs" --mix "$mix" --json)
  after=$(cpu_ticks "$pid")
  python3 - "$1" "$3" "$out" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, rate, r, before, after, hz = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), *map(int, sys.argv[4:7])
cpu = (after - before) / hz * 1e6 / max(r["messages"], 1) if name == "switch" else None
print(json.dumps({"name": name, "rate": rate, "cpu_us": cpu, "by_mti": r["by_mti"]}))
PY
}

results=$dir/results
for r in $(seq "$rounds"); do
  for rate in $rates; do
    # Alternate which goes first, so a drift of the machine falls on each.
    if ((r % 2)); then order="echo switch"; else order="switch echo"; fi
    for name in $order; do
      if [[ $name == echo ]]; then port=28868; else port=28858; fi
      line=$(run "$name" "$port" "$rate")
      echo "$line" >> "$results"
      python3 - "$r" "$line" <<'PY'
import json, sys
r, l = sys.argv[1], json.loads(sys.argv[2])
mtis = "  ".join(f'{m} p50 {v["latency_ms"]["p50"]:.3f} p99 {v["latency_ms"]["p99"]:.3f} ms'
                 for m, v in l["by_mti"].items())
cpu = f'  CPU {l["cpu_us"]:.0f} us/msg' if l["cpu_us"] is not None else ""
print(f'round {r} {l["rate"]:>5}/s {l["name"]:6} {mtis}{cpu}')
PY
    done
  done
done
python3 - "$results" <<'PY'
import collections, json, statistics, sys
p50 = collections.defaultdict(list)
cpu = collections.defaultdict(list)
for line in open(sys.argv[1]):
    l = json.loads(line)
    for m, v in l["by_mti"].items():
        p50[(l["rate"], m, l["name"])].append(v["latency_ms"]["p50"])
    if l["cpu_us"] is not None:
        cpu[l["rate"]].append(l["cpu_us"])
med = statistics.median
for (rate, m, name) in sorted((k for k in p50 if k[2] == "switch"), key=lambda k: (int(k[0]), k[1])):
    s = med(p50[(rate, m, "switch")])
    e = p50.get((rate, m, "echo"))
    # The echo server answers every frame with itself: its MTI is the
    # request's, so only MTIs the first message of a flow carries match.
    echo = f", echo {med(e):.3f} ms, the switch adds {(s - med(e)) * 1000:.0f} us" if e else ""
    print(f"{rate}/s {m}: switch p50 {s:.3f} ms{echo} (medians of {len(p50[(rate, m, 'switch')])} runs)")
for rate, v in sorted(cpu.items(), key=lambda kv: int(kv[0])):
    print(f"{rate}/s: switch CPU {med(v):.0f} us per message")
PY

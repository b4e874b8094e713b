#!/usr/bin/env bash
# What a loyalty programme costs the switch under load: the load generator
# against a fresh demo switch with every programme switched off, then with
# `loadgen --loyalty` (every demo merchant runs a programme with tier and
# campaign multipliers, cashback and automatic conversion), alternating, and
# the medians of each.
#
#   benches/loyalty.sh [rounds] [seconds] [connections]
#
# Defaults: 5 rounds of 15 seconds each way, 64 connections, 64 member club
# cards. Half the flows are club purchases by members (they earn), half
# bank-card lookups of cards no member enrolled (they do not). Each run
# starts on a new data directory, so neither mode inherits the other's
# ledger. Besides throughput, each line shows the switch's own CPU time per
# flow (all its threads, from /proc), which is steadier than throughput on a
# shared machine. Set PIN=1 to run the switch on CPU 1 and the load
# generator on CPU 0, so the switch is bound by its own CPU alone.
set -euo pipefail
rounds=${1:-5}
secs=${2:-15}
conns=${3:-64}

cd "$(dirname "$0")/.."
cargo build --release -p clubswitch >&2
bin=$PWD/target/release/clubswitch
pin_switch=() pin_load=()
if [ "${PIN:-}" = 1 ]; then
  pin_switch=(taskset -c 1) pin_load=(taskset -c 0)
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT

cpu_ticks() {
  local total=0 t
  for t in /proc/"$1"/task/*/stat; do
    total=$((total + $(awk '{print $14 + $15}' "$t")))
  done
  echo "$total"
}

one_run() {
  local mode=$1 dir pid before after out
  dir=$(mktemp -d -t clubswitch-loyalty-XXXXXX)
  CLUBSWITCH_LOG=warn "${pin_switch[@]}" "$bin" run --demo --data-dir "$dir" \
    --listen 127.0.0.1:26858 --admin 127.0.0.1:26859 --metrics 127.0.0.1:26860 \
    > "$dir/switch.out" 2> "$dir/switch.err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "admin API on" "$dir/switch.out" 2>/dev/null && break
    sleep 0.1
  done
  local admin=(--admin-url http://127.0.0.1:26859 --token-file "$dir/admin.token")
  local extra=()
  if [ "$mode" = none ]; then
    for m in $(python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(open(sys.argv[1]))["merchants"]))' "$dir/demo.json"); do
      "$bin" admin --url http://127.0.0.1:26859 --token-file "$dir/admin.token" \
        merchant program "$m" '{"active": false}' > /dev/null
    done
  else
    extra=(--loyalty)
  fi
  before=$(cpu_ticks "$pid")
  out=$("${pin_load[@]}" "$bin" loadgen --addr 127.0.0.1:26858 "${admin[@]}" \
    --demo "$dir/demo.json" --cards 64 -c "$conns" -d "$secs" "${extra[@]}" --json)
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" || true
  rm -rf "$dir"
  python3 - "$mode" "$out" "$before" "$after" "$(getconf CLK_TCK)" <<'PY' | tee -a "$results"
import json, sys
mode, r, before, after, hz = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:6])
non00 = sum(v for k, v in r["response_codes"].items() if k != "00")
cpu = (after - before) / hz * 1e6 / max(r["flows"], 1)
print(f'{mode:4} {r["flows_per_sec"]:7.0f} flows/s  p99 {r["latency_ms"]["p99"]:6.2f} ms  '
      f'switch CPU {cpu:6.1f} us/flow  non-00 {non00}  errors {r["errors"]}')
PY
}

for _ in $(seq "$rounds"); do
  one_run none
  one_run full
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def col(mode, i):
    return [float(r[i]) for r in rows if r[0] == mode]
none, full = col("none", 1), col("full", 1)
cpu_none, cpu_full = col("none", 8), col("full", 8)
# Each round's pair ran back to back, so its ratio is the least disturbed
# by the machine's own drift.
pairs = statistics.median(f / n for n, f in zip(none, full))
cpu_pairs = statistics.median(f / n for n, f in zip(cpu_none, cpu_full))
m = statistics.median
print(f"median: no programme {m(none):.0f} flows/s, --loyalty {m(full):.0f} flows/s; "
      f"per round: {(pairs - 1) * 100:+.1f}% flows/s, {(cpu_pairs - 1) * 100:+.1f}% switch CPU per flow "
      f"({m(cpu_none):.1f} -> {m(cpu_full):.1f} us)")
PY

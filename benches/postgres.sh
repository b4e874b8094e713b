#!/usr/bin/env bash
# The switch on PostgreSQL against the switch on its embedded ledger, under
# the same load generator, alternating on fresh ledgers:
#   sled   one node on the embedded ledger
#   pg1    one node on PostgreSQL (a primary with a synchronous standby)
#   pg2    two nodes on that database, the load split between them
# Everything (database, standby, nodes, load generators) shares this
# machine. Prints each run, the medians, and each mode against sled.
#
#   benches/postgres.sh [rounds] [seconds] [connections]
#
# Defaults: 3 rounds of 10 seconds, 64 connections (pg2: 32 per node), 64
# club cards, a terminal of its own for each connection (registered by the
# load generator: on the demo's three, the two nodes would fight over
# those terminals' daily figures, which shops with a terminal each do
# not), every confirm durable. Needs PostgreSQL's server programs
# (pg_config --bindir, or /usr/lib/postgresql/*/bin).
set -euo pipefail
rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}

source "$(dirname "$0")/switch.sh"
work=$(mktemp -d -t clubswitch-pgbench-XXXXXX)
results=$work/results
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_postgres "$work"
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT

start_postgres "$work" 28432
url="postgres://postgres@127.0.0.1:28432/bench"
export CLUBSWITCH_MASTER_KEY=$("$bin" keygen)

loadgen() { # PORT CONNS DIR
  "$bin" loadgen --addr "127.0.0.1:$1" --admin-url "http://127.0.0.1:$(($1 + 1))" \
    --token-file "$3/admin.token" --demo "$3/demo.json" --cards 64 --terminals "$2" -c "$2" -d "$secs" --json
}

one_run() {
  local mode=$1 a b out before after
  a=$(mktemp -d -t clubswitch-pgbench-node-XXXXXX)
  b=$(mktemp -d -t clubswitch-pgbench-node-XXXXXX)
  case $mode in
    sled) start_switch "$a" 29858; pids=("$pid") ;;
    pg1)
      psql -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
      start_switch "$a" 29858 --store-url "$url"; pids=("$pid") ;;
    pg2)
      psql -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
      start_switch "$a" 29858 --store-url "$url"; pids=("$pid")
      start_switch "$b" 29868 --store-url "$url"; pids+=("$pid") ;;
  esac
  before=0; for p in "${pids[@]}"; do before=$((before + $(cpu_ticks "$p"))); done
  if [ "$mode" = pg2 ]; then
    loadgen 29858 $((conns / 2)) "$a" > "$a/load.json" &
    local la=$!
    loadgen 29868 $((conns / 2)) "$b" > "$b/load.json"
    wait "$la"
    out=$(python3 - "$a/load.json" "$b/load.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
codes = dict(a["response_codes"])
for k, v in b["response_codes"].items():
    codes[k] = codes.get(k, 0) + v
print(json.dumps({
    "flows": a["flows"] + b["flows"],
    "flows_per_sec": a["flows_per_sec"] + b["flows_per_sec"],
    "latency_ms": {"p99": max(a["latency_ms"]["p99"], b["latency_ms"]["p99"])},
    "response_codes": codes, "errors": a["errors"] + b["errors"],
}))
PY
)
  else
    out=$(loadgen 29858 "$conns" "$a")
  fi
  after=0; for p in "${pids[@]}"; do after=$((after + $(cpu_ticks "$p"))); done
  for p in "${pids[@]}"; do kill "$p"; wait "$p" || true; done
  pids=()
  rm -rf "$a" "$b"
  report_run "$mode" "$out" "$before" "$after" | tee -a "$results"
}

for _ in $(seq "$rounds"); do
  for mode in sled pg1 pg2; do
    one_run "$mode"
  done
done
summarize "$results" sled pg1 pg2

#!/usr/bin/env bash
# What a loyalty programme costs the switch under load: the load generator
# against a fresh demo switch with every programme switched off, then with
# programmes at every demo merchant, alternating, and the medians of each.
#
#   benches/loyalty.sh [rounds] [seconds] [connections]
#
# MODES (default "none full") chooses the runs of a round:
#   none    every programme switched off
#   points  points with tier multipliers and a campaign doubling them
#   demo    the demo's own programme (Book City's): points by tier, 500
#           points become credit (about every fifth purchase), referrals,
#           points and credit that expire
#   full    `loadgen --loyalty`: tier and campaign multipliers, 1% cashback
#           and automatic conversion at 500 points (about every second
#           purchase): every path that moves value, as often as it can
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

source "$(dirname "$0")/switch.sh"
pin_load=()
if [ "${PIN:-}" = 1 ]; then
  pin_load=(taskset -c 0)
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT

one_run() {
  local mode=$1 dir pid before after out
  dir=$(mktemp -d -t clubswitch-loyalty-XXXXXX)
  start_switch "$dir" 26858
  if [ "${PIN:-}" = 1 ]; then
    taskset -a -p -c 1 "$pid" > /dev/null
  fi
  local admin=(--admin-url http://127.0.0.1:26859 --token-file "$dir/admin.token")
  local extra=() program=
  case $mode in
    none) program='{"active": false}' ;;
    points) program='{"points": 1, "per_amount": 10000, "tier_bps": [10000, 12500, 15000, 20000], "campaigns": [{"name": "double", "from": 0, "to": 9223372036854775807, "multiplier_bps": 20000}]}' ;;
    demo) program='{"points": 1, "per_amount": 10000, "tier_bps": [10000, 12500, 15000, 20000], "credit_per_point": 100, "auto_convert_at": 500, "referral_points": 200, "points_valid_days": 365, "credit_valid_days": 180}' ;;
    full) extra=(--loyalty) ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  if [ -n "$program" ]; then
    for m in $(python3 -c 'import json,sys; print(" ".join(m["id"] for m in json.load(open(sys.argv[1]))["merchants"]))' "$dir/demo.json"); do
      "$bin" admin --url http://127.0.0.1:26859 --token-file "$dir/admin.token" \
        merchant program "$m" "$program" > /dev/null
    done
  fi
  before=$(cpu_ticks "$pid")
  out=$("${pin_load[@]}" "$bin" loadgen --addr 127.0.0.1:26858 "${admin[@]}" \
    --demo "$dir/demo.json" --cards 64 -c "$conns" -d "$secs" "${extra[@]}" --json)
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" || true
  rm -rf "$dir"
  report_run "$mode" "$out" "$before" "$after" | tee -a "$results"
}

modes=${MODES:-none full}
for _ in $(seq "$rounds"); do
  for mode in $modes; do
    one_run "$mode"
  done
done
summarize "$results" $modes

#!/usr/bin/env bash
# What durability costs the switch under load: the load generator against a
# fresh demo switch whose flushes end with fdatasync (the default), then
# against one whose flushes stop at sled's own sync_file_range (the unsafe
# test setting CLUBSWITCH_TEST_UNSAFE_NO_FDATASYNC), alternating, with the
# medians of each and the per-round ratio. Each line also shows how many
# durable operations one flush served (tickets per flush).
#
#   benches/durability.sh [rounds] [seconds] [connections] [mix]
#
# Defaults: 5 rounds of 10 seconds each way, 64 connections, 64 club cards,
# and the mix `discount=50,club=50` (every confirm durable).
set -euo pipefail
rounds=${1:-5}
secs=${2:-10}
conns=${3:-64}
mix=${4:-discount=50,club=50}

source "$(dirname "$0")/switch.sh"
results=$(mktemp)
trap 'rm -f "$results"' EXIT

metric() {
  python3 - "$1" "$2" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
print(next((l.split()[1] for l in text.splitlines() if l.startswith(sys.argv[2] + " ")), "0"))
PY
}

one_run() {
  local mode=$1 dir before after out flushes tickets
  dir=$(mktemp -d -t clubswitch-durability-XXXXXX)
  case $mode in
    fdatasync) start_switch "$dir" 27858 ;;
    sled-only) CLUBSWITCH_TEST_UNSAFE_NO_FDATASYNC=1 start_switch "$dir" 27858 ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
  esac
  before=$(cpu_ticks "$pid")
  out=$("$bin" loadgen --addr 127.0.0.1:27858 --admin-url http://127.0.0.1:27859 \
    --token-file "$dir/admin.token" --demo "$dir/demo.json" --cards 64 \
    -c "$conns" -d "$secs" --mix "$mix" --json)
  after=$(cpu_ticks "$pid")
  flushes=$(metric 127.0.0.1:27860 clubswitch_flushes_total)
  tickets=$(metric 127.0.0.1:27860 clubswitch_flush_tickets_total)
  kill "$pid"
  wait "$pid" || true
  rm -rf "$dir"
  report_run "$mode" "$out" "$before" "$after" \
    "$(python3 -c "import sys; f, t = map(float, sys.argv[1:]); print(f'{t / max(f, 1):.1f} tickets/flush ({f:.0f} flushes)')" "$flushes" "$tickets")" \
    | tee -a "$results"
}

for _ in $(seq "$rounds"); do
  one_run fdatasync
  one_run sled-only
done
summarize "$results" fdatasync sled-only

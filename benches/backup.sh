#!/usr/bin/env bash
# What an online backup costs the terminals: a demo switch is filled with
# history by the load generator, then a control terminal (one connection,
# a steady 200 flows/s) runs twice for the same time, once quietly and once
# while `clubswitch admin backup` copies the ledger. Prints the control's
# latency both ways, the backup's time and size.
#
#   benches/backup.sh [fill-seconds] [control-seconds]
#
# Defaults: 20 seconds of 64 connections to fill, 10-second control runs.
set -euo pipefail
fill=${1:-20}
secs=${2:-10}

source "$(dirname "$0")/switch.sh"
dir=$(mktemp -d -t clubswitch-backup-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
start_switch "$dir" 28858
admin=(--admin-url http://127.0.0.1:28859 --token-file "$dir/admin.token")
"$bin" loadgen --addr 127.0.0.1:28858 "${admin[@]}" --demo "$dir/demo.json" \
  --cards 64 -c 64 -d "$fill" --json > "$dir/fill.json"
echo "filled: $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["flows"], "flows")' "$dir/fill.json"), ledger $(du -sh "$dir/ledger" | cut -f1)"

control() {
  "$bin" loadgen --addr 127.0.0.1:28858 --demo "$dir/demo.json" -c 1 --rate 200 \
    -d "$secs" --mix discount=100 --json
}
show() {
  python3 - "$1" "$2" <<'PY'
import json, sys
r = json.loads(sys.argv[2])
p50, p99, top = (r["latency_ms"][k] for k in ("p50", "p99", "max"))
print(f"{sys.argv[1]:16} p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {top:.2f} ms  ({r['flows']} flows)")
PY
}

quiet=$(control)
control > "$dir/during.json" &
control_pid=$!
sleep 1
"$bin" admin --url http://127.0.0.1:28859 --token-file "$dir/admin.token" \
  backup --out "${OUT:-$dir/copy}" > "$dir/backup.json"
wait "$control_pid"
show "control, quiet" "$quiet"
show "control, backup" "$(cat "$dir/during.json")"
python3 - "$dir/backup.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"backup: {m['records']} records, dump {m['dump_bytes'] / 1e6:.0f} MB, {m['took_ms']} ms")
PY

#!/usr/bin/env bash
# Soak: the switch under steady load for a long time, one load-generator run
# a minute, printing each minute's throughput, latency and the switch's
# resident memory, so growth shows.
#
#   benches/soak.sh [minutes] [flows-per-second] [connections]
#
# Defaults: 30 minutes at 5,500 two-phase flows/s (half the peak measured on
# the 2-core development VM) over 64 connections. Every confirm is durable
# before its answer, as in production. The data directory is temporary.
#
# Time is compressed as the rate is: the archive horizon (30 days in
# production, the refund window) is 5 minutes here and settlement runs every
# minute instead of daily, so the live ledger reaches its steady size within
# the soak. The columns show it: ledger size on disk, and what was archived.
#
# One thing compressed time skews: request records (one per message, for
# retransmissions and reversals by original) are kept a day beyond the
# replay window, but never longer than the archive horizon, so here they
# live as long as transactions (in production a day of thirty) and weigh
# on bytes per live transaction as they would not there. The
# live_requests column counts them (messages answered less those purged).
set -euo pipefail
minutes=${1:-30}
rate=${2:-5500}
conns=${3:-64}

source "$(dirname "$0")/switch.sh"
dir=$(mktemp -d -t clubswitch-soak-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT

cat > "$dir/soak.toml" <<'TOML'
[holds]
expiry_secs = 60
[security]
replay_window_secs = 60
[archive]
after_secs = 300
interval_secs = 10
TOML

start_switch "$dir" 25858 -c "$dir/soak.toml"

rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
ledger_mb() { du -sm "$dir/ledger" | cut -f1; }
# Bytes per live transaction: the ledger's size on disk over the
# transactions it holds (every flow made one; archived ones left).
flows=0
messages=0
echo "minute,flows_per_sec,messages_per_sec,p50_ms,p99_ms,p999_ms,errors,non_00,rss_mb,ledger_mb,archived_txns,live_txns,bytes_per_live_txn,live_requests,settle_ms"
echo "0,,,,,,,,$(rss),$(ledger_mb),0,,,,"
for m in $(seq "$minutes"); do
  # Settlement 30 s into the minute's load. Its run time goes through a
  # file: the subshell runs in the background, beside the load.
  (
    sleep 30
    started=$(date +%s%N)
    "$bin" admin --url http://127.0.0.1:25859 --token-file "$dir/admin.token" settle > /dev/null
    echo $((($(date +%s%N) - started) / 1000000)) > "$dir/settle_ms"
  ) &
  settler=$!
  # Each run starts on a fresh second. The load generator starts every
  # terminal's STANs at random, and a request is known by terminal, STAN
  # and the second DE 7 names: a run begun within the second the last one
  # ended could send that second's STANs again with other content, and be
  # answered 94 (duplicate transmission). A real terminal keeps its STAN.
  python3 -c 'import time; time.sleep(1 - time.time() % 1)'
  # Fresh club cards each minute, well topped up, so purchases are approved.
  out=$("$bin" loadgen --addr 127.0.0.1:25858 --admin-url http://127.0.0.1:25859 \
    --token-file "$dir/admin.token" --demo "$dir/demo.json" --cards 16 \
    -c "$conns" -d 60 --rate "$rate" --json)
  wait "$settler"
  flows=$((flows + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["flows"])' "$out")))
  messages=$((messages + $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["messages"])' "$out")))
  python3 - "$m" "$(rss)" "$out" "$(ledger_mb)" "$flows" "$(du -sb "$dir/ledger" | cut -f1)" "$(cat "$dir/settle_ms")" "$messages" <<'PY'
import json, sys, urllib.request
m, rss, r, ledger, flows, ledger_bytes, settle_ms, messages = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8])
metrics = urllib.request.urlopen("http://127.0.0.1:25860/metrics").read().decode()
def metric(name):
    return int(float(next((l.split()[1] for l in metrics.splitlines()
                           if l.startswith(name + " ")), "0")))
archived = metric("clubswitch_archived_transactions_total")
purged = metric("clubswitch_request_records_purged_total")
codes = r["response_codes"]
non00 = sum(v for k, v in codes.items() if k != "00")
l = r["latency_ms"]
live = max(flows - archived, 1)
print(f'{m},{r["flows_per_sec"]:.0f},{r["messages_per_sec"]:.0f},{l["p50"]:.2f},{l["p99"]:.2f},{l["p999"]:.2f},{r["errors"]},{non00},{rss},{ledger},{archived},{live},{ledger_bytes / live:.0f},{messages - purged},{settle_ms}')
PY
done

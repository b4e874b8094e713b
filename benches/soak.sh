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
#
# STORE=postgres puts the ledger in PostgreSQL instead: a primary and a
# synchronous standby started for the soak (start_postgres in switch.sh),
# on this machine beside the switch. A shared ledger keeps its history
# (runbook: What changes with several nodes), so nothing is archived and
# every transaction stays live; the ledger's size is the `ledger` table's
# with its index, as clubswitch_ledger_bytes reports it. Four columns
# follow: the table's and the index's MB, the rows removed and not yet
# vacuumed (n_dead_tup), and autovacuum's runs on the table so far.
# PG_OPTIONS adds settings to the servers' (start_postgres).
#
# ARCHIVE_INTERVAL sets `archive.interval_secs` (default 10).
# PERF_AT="400 490" records the switch with `perf record` for 30 s at each
# of those seconds after its start, into PERF_OUT.<second> (PERF_OUT
# defaults to soak-perf in the current directory): `perf report -i
# soak-perf.490 --sort sym` then shows, say, sled's free-page check
# (`PageCache::free::{{closure}}`, runbook: Storage) as the soak goes on.
set -euo pipefail
minutes=${1:-30}
rate=${2:-5500}
conns=${3:-64}
perf_out=${PERF_OUT:-$PWD/soak-perf}

source "$(dirname "$0")/switch.sh"
dir=$(mktemp -d -t clubswitch-soak-XXXXXX)
store=${STORE:-embedded}
pgdir=
profiler=
trap 'kill $profiler "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  [ -z "$pgdir" ] || { stop_postgres "$pgdir"; rm -rf "$pgdir"; }; rm -rf "$dir"' EXIT
case $store in
  embedded) store_args=() ;;
  postgres)
    pgdir=$(mktemp -d -t clubswitch-soak-pg-XXXXXX)
    start_postgres "$pgdir" 25832
    psql -c "CREATE DATABASE soak"
    store_args=(--store-url postgres://postgres@127.0.0.1:25832/soak)
    ;;
  *) echo "STORE is embedded or postgres" >&2; exit 2 ;;
esac

cat > "$dir/soak.toml" <<TOML
[holds]
expiry_secs = 60
[security]
replay_window_secs = 60
[archive]
after_secs = 300
interval_secs = ${ARCHIVE_INTERVAL:-10}
TOML

start_switch "$dir" 25858 -c "$dir/soak.toml" "${store_args[@]}"
if [ -n "${PERF_AT:-}" ]; then
  (
    started=$SECONDS
    for at in $PERF_AT; do
      wait_secs=$((started + at - SECONDS))
      ((wait_secs <= 0)) || sleep "$wait_secs"
      perf record -F 999 -p "$pid" -o "$perf_out.$at" -- sleep 30 > /dev/null 2>&1
    done
  ) &
  profiler=$!
fi

rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$pid/status"; }
# The ledger's bytes on disk: sled's directory, or the database's table.
ledger_bytes() {
  if [ "$store" = postgres ]; then
    psql -d soak -c "SELECT pg_total_relation_size('ledger')"
  else
    du -sb "$dir/ledger" | cut -f1
  fi
}
ledger_mb() {
  if [ "$store" = postgres ]; then
    echo $(($(ledger_bytes) / 1048576))
  else
    du -sm "$dir/ledger" | cut -f1
  fi
}
# PostgreSQL only: table MB, index MB, dead rows, autovacuum runs.
pg_columns() {
  [ "$store" = postgres ] || return 0
  psql -d soak -F, -c "SELECT ','||pg_relation_size('ledger') / 1048576, pg_indexes_size('ledger') / 1048576,
    n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE relname = 'ledger'"
}
pg_header() { [ "$store" = postgres ] && echo ",table_mb,index_mb,dead_rows,autovacuums" || true; }
# Bytes per live transaction: the ledger's size on disk over the
# transactions it holds (every flow made one; archived ones left).
flows=0
messages=0
echo "minute,flows_per_sec,messages_per_sec,p50_ms,p99_ms,p999_ms,errors,non_00,rss_mb,ledger_mb,archived_txns,live_txns,bytes_per_live_txn,live_requests,settle_ms$(pg_header)"
echo "0,,,,,,,,$(rss),$(ledger_mb),0,,,,$(pg_columns)"
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
  python3 - "$m" "$(rss)" "$out" "$(ledger_mb)" "$flows" "$(ledger_bytes)" "$(cat "$dir/settle_ms")" "$messages" "$(pg_columns)" <<'PY'
import json, sys, urllib.request
m, rss, r, ledger, flows, ledger_bytes, settle_ms, messages, pg = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
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
print(f'{m},{r["flows_per_sec"]:.0f},{r["messages_per_sec"]:.0f},{l["p50"]:.2f},{l["p99"]:.2f},{l["p999"]:.2f},{r["errors"]},{non00},{rss},{ledger},{archived},{live},{ledger_bytes / live:.0f},{messages - purged},{settle_ms}{pg}')
PY
done

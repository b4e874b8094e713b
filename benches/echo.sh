#!/usr/bin/env bash
# The switch against a byte-echo server: the same load generator, the same
# connections, alternating in one run, so the ratio of their messages/s
# says how close the switch comes to what this box can do for a framed
# request/response at all. The echo server is ../shared/tools/echo.c (or
# $ECHO_C), two threads, built with `gcc -O2 -pthread`; it answers every
# frame with itself, which the load generator counts as an answer (code
# "??", so no flow goes past its first message).
#
#   benches/echo.sh [rounds] [seconds] [connections] [mix]
#
# Defaults: 3 rounds of 10 s on 64 connections, every flow a bank-card
# discount lookup and its confirm, each confirm durable (fdatasync) before
# its answer. Per round: both servers' messages/s, p50/p99, and the
# switch's CPU per message by thread; then the median ratio.
set -euo pipefail
rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}
mix=${4:-discount=100}

source "$(dirname "$0")/switch.sh"
echo_c=${ECHO_C:-$PWD/../shared/tools/echo.c}
echo_bin=$PWD/target/echo-server
gcc -O2 -pthread -o "$echo_bin" "$echo_c"

work=$(mktemp -d -t clubswitch-echo-XXXXXX)
echo_pid=
trap 'kill $echo_pid ${pid:-} 2>/dev/null || true; rm -rf "$work"' EXIT

# threads PID: "name ticks" for every thread of PID, numbered names
# (tokio-runtime-worker, clubswitch-engine, sled-io-3, ...) folded into one.
threads() {
  for t in /proc/"$1"/task/*; do
    # The name is in parentheses and may hold spaces: cut it out first.
    local stat name
    stat=$(cat "$t/stat" 2>/dev/null) || continue
    name=${stat#*(}
    name=${name%)*}
    echo "${name%%[0-9]*} $(echo "${stat##*)}" | awk '{print $12 + $13}')"
  done
}

load() {
  "$bin" loadgen --addr "127.0.0.1:$1" --demo "$work/demo.json" -c "$conns" \
    -d "$secs" --mix "$mix" --json
}

results=$work/results
for r in $(seq "$rounds"); do
  dir=$work/switch-$r
  mkdir -p "$dir"
  start_switch "$dir" 29958
  cp "$dir/demo.json" "$work/demo.json"
  "$echo_bin" 29968 2 &
  echo_pid=$!
  sleep 0.2
  # Alternate which goes first, so a drift of the machine falls on both.
  if (( r % 2 )); then
    e=$(load 29968)
    before=$(threads "$pid")
    s=$(load 29958)
    after=$(threads "$pid")
  else
    before=$(threads "$pid")
    s=$(load 29958)
    after=$(threads "$pid")
    e=$(load 29968)
  fi
  kill "$echo_pid" "$pid"
  wait "$echo_pid" "$pid" 2>/dev/null || true
  echo_pid=
  python3 - "$r" "$e" "$s" "$before" "$after" "$(getconf CLK_TCK)" <<'PY' | tee -a "$results"
import collections, json, sys
r, e, s, before, after, hz = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
def ticks(text):
    t = collections.Counter()
    for line in text.splitlines():
        name, n = line.rsplit(" ", 1)
        t[name.strip("-_ ") or "?"] += int(n)
    return t
spent = ticks(after)
spent.subtract(ticks(before))
msgs = max(s["messages"], 1)
by_thread = "  ".join(f"{k} {v / hz * 1e6 / msgs:.1f}" for k, v in spent.most_common() if v > 0)
total = sum(v for v in spent.values() if v > 0) / hz * 1e6 / msgs
ratio = s["messages_per_sec"] / e["messages_per_sec"]
print(f'round {r}: echo {e["messages_per_sec"]:.0f} msg/s p50 {e["latency_ms"]["p50"]:.2f} p99 {e["latency_ms"]["p99"]:.2f} ms | '
      f'switch {s["messages_per_sec"]:.0f} msg/s p50 {s["latency_ms"]["p50"]:.2f} p99 {s["latency_ms"]["p99"]:.2f} ms '
      f'errors {s["errors"]} codes {dict(s["response_codes"])} | ratio {ratio:.3f}')
print(f'  switch CPU per message (us): total {total:.1f}: {by_thread}')
PY
done
python3 - "$results" <<'PY'
import re, statistics, sys
ratios = [float(m.group(1)) for m in re.finditer(r"ratio ([0-9.]+)", open(sys.argv[1]).read())]
print(f"median ratio switch/echo over {len(ratios)} rounds: {statistics.median(ratios):.3f}")
PY

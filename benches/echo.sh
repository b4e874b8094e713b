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
# its answer. Per round: both servers' messages/s, p50/p99, the switch's
# CPU per message by thread and the bytes it wrote to disk per flow (which
# the machine's noise moves far less than the CPU figures: a change to what
# the ledger writes shows there first); then the median ratio.
#
# OTHER=/path/to/clubswitch adds another build of the switch to every round
# (an earlier commit, built elsewhere): the ratio before and after a change
# in one run. How far apart two builds must be to tell: on the 2-core
# development VM, the same binary given as OTHER ran 9.6%, 5.6% and -0.5%
# ahead of itself in three rounds. A smaller change needs more rounds, or
# benches/instructions.sh, whose count that noise does not move.
set -euo pipefail
rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}
mix=${4:-discount=100}

source "$(dirname "$0")/switch.sh"
build_echo

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

# written PID: the bytes PID has sent to the disk so far (`write_bytes` in
# /proc/PID/io: what reached the block layer, the log's rewrites and
# sled's reclaiming included, not what was merely cached).
written() {
  awk '/^write_bytes/ {print $2}' /proc/"$1"/io
}

load() {
  "$this" loadgen --addr "127.0.0.1:$1" --demo "$work/demo.json" -c "$conns" \
    -d "$secs" --mix "$mix" --json
}

# measure NAME BINARY PORT: NAME's messages/s against a fresh demo switch
# of BINARY and its CPU per message by thread, as one JSON line.
measure() {
  local name=$1 dir=$work/$1-$r before after out
  mkdir -p "$dir"
  bin=$2 start_switch "$dir" "$3"
  before=$(threads "$pid")
  wrote_before=$(written "$pid")
  out=$("$this" loadgen --addr "127.0.0.1:$3" --demo "$dir/demo.json" -c "$conns" \
    -d "$secs" --mix "$mix" --json)
  after=$(threads "$pid")
  wrote_after=$(written "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  python3 - "$name" "$out" "$before" "$after" "$(getconf CLK_TCK)" \
    "$((wrote_after - wrote_before))" <<'PY'
import collections, json, sys
name, r, before, after, hz = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
r["disk_bytes_per_flow"] = int(sys.argv[6]) / max(r["flows"], 1)
def ticks(text):
    t = collections.Counter()
    for line in text.splitlines():
        n, v = line.rsplit(" ", 1)
        t[n.strip("-_ ") or "?"] += int(v)
    return t
spent = ticks(after)
spent.subtract(ticks(before))
msgs = max(r["messages"], 1)
r["name"] = name
r["cpu_us"] = {k: v / hz * 1e6 / msgs for k, v in spent.most_common() if v > 0}
print(json.dumps(r))
PY
}

this=$bin
results=$work/results
# The load generator needs a demo.json for the echo server too (its keys
# sign what the echo server sends back unread): any demo switch's will do.
mkdir -p "$work/first"
start_switch "$work/first" 29958
cp "$work/first/demo.json" "$work/demo.json"
kill "$pid"
wait "$pid" 2>/dev/null || true
runs=(echo "this $this 29958")
[[ -n ${OTHER:-} ]] && runs+=("other $OTHER 29948")
for r in $(seq "$rounds"); do
  "$echo_bin" 29968 2 &
  echo_pid=$!
  sleep 0.2
  # Rotate the order, so a drift of the machine falls on each in turn.
  lines=()
  for i in "${!runs[@]}"; do
    read -r name b port <<< "${runs[$(( (i + r) % ${#runs[@]} ))]}"
    if [[ $name == echo ]]; then
      e=$(load 29968)
    else
      lines+=("$(measure "$name" "$b" "$port")")
    fi
  done
  kill "$echo_pid"
  wait "$echo_pid" 2>/dev/null || true
  echo_pid=
  python3 - "$r" "$e" "${lines[@]}" <<'PY' | tee -a "$results"
import json, sys
r, e, runs = sys.argv[1], json.loads(sys.argv[2]), [json.loads(a) for a in sys.argv[3:]]
print(f'round {r}: echo {e["messages_per_sec"]:.0f} msg/s p50 {e["latency_ms"]["p50"]:.3f} p99 {e["latency_ms"]["p99"]:.3f} ms')
for s in sorted(runs, key=lambda s: s["name"] != "this"):
    ratio = s["messages_per_sec"] / e["messages_per_sec"]
    cpu = "  ".join(f"{k} {v:.1f}" for k, v in s["cpu_us"].items())
    print(f'  {s["name"]:5} {s["messages_per_sec"]:.0f} msg/s p50 {s["latency_ms"]["p50"]:.3f} p99 {s["latency_ms"]["p99"]:.3f} ms '
          f'errors {s["errors"]} codes {s["response_codes"]} | ratio {s["name"]} {ratio:.3f}')
    print(f'        CPU per message (us): total {sum(s["cpu_us"].values()):.1f}: {cpu}')
    print(f'        written to disk per flow: {s["disk_bytes_per_flow"]:.0f} bytes')
PY
done
python3 - "$results" <<'PY'
import collections, re, statistics, sys
ratios = collections.defaultdict(list)
for name, v in re.findall(r"ratio (\w+) ([0-9.]+)", open(sys.argv[1]).read()):
    ratios[name].append(float(v))
for name, v in ratios.items():
    print(f"{name}: median ratio switch/echo over {len(v)} rounds: {statistics.median(v):.3f}")
PY

#!/usr/bin/env bash
# Instructions per message of the real switch, counted by callgrind: a
# figure that does not move with the machine's noise, so a change that
# adds work to the terminal path shows here even when the echo ratio and
# the soak cannot tell it from a busy neighbour.
#
#   benches/instructions.sh [seconds] [flows/s] [connections] [mix]
#
# Defaults: 10 s at 100 flows/s on 4 connections, every flow a bank-card
# discount lookup and its confirm (each confirm durable). The switch runs
# a fresh demo under `valgrind --tool=callgrind` with counting off while
# it starts; counting is on only while the load generator runs, and every
# thread of the switch is counted (connection workers, engine, flusher,
# sled's threads), so the figure is what one message costs the whole
# process. A fixed, low rate keeps requests from queueing behind each
# other: valgrind runs one thread at a time, and batches of varying size
# would make the count depend on timing.
#
# KEEP=1 leaves the profiles (callgrind.out.1 of each build) in the
# directory printed at the end, for callgrind_annotate --inclusive=yes.
#
# OTHER=/path/to/clubswitch counts another build too (an earlier commit,
# built elsewhere) on the same load: the ratio of the two is the change.
#
# What the count is not: under valgrind the CPU features are those
# valgrind emulates, so SHA-256 runs its portable code (a fifth of the
# count) where the real switch uses the SHA extensions; and instructions
# are not time (cache misses, system calls and context switches cost
# time without instructions). Use it to compare builds, and echo.sh for
# what the switch does on this box.
set -euo pipefail
secs=${1:-10}
rate=${2:-100}
conns=${3:-4}
mix=${4:-discount=100}

command -v valgrind > /dev/null && command -v callgrind_control > /dev/null || {
  echo "benches/instructions.sh needs valgrind (callgrind and callgrind_control)" >&2
  exit 2
}
source "$(dirname "$0")/switch.sh"
work=$(mktemp -d -t clubswitch-instructions-XXXXXX)
vpid=
trap 'kill ${vpid:-} 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT

# count NAME BINARY PORT: instructions per message of BINARY under the
# load, as one line; the profile stays in $work/NAME for the top functions.
count() {
  local name=$1 binary=$2 port=$3 dir=$work/$1 up=
  mkdir -p "$dir"
  CLUBSWITCH_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$dir/callgrind.out" \
    "$binary" run --demo --data-dir "$dir/data" \
    --listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" \
    --metrics "127.0.0.1:$((port + 2))" > "$dir/switch.out" 2> "$dir/switch.err" &
  vpid=$!
  # Everything runs tens of times slower under valgrind: give it time.
  for _ in $(seq 1200); do
    grep -q "admin API on" "$dir/switch.out" 2> /dev/null && up=1 && break
    sleep 0.1
  done
  [[ -n $up ]] || {
    echo "the switch did not start under valgrind; see $dir/switch.err" >&2
    exit 1
  }
  callgrind_control --instr=on "$vpid" > /dev/null 2>&1
  "$bin" loadgen --addr "127.0.0.1:$port" --demo "$dir/data/demo.json" -c "$conns" \
    -d "$secs" --rate "$rate" --mix "$mix" --json > "$dir/load.json"
  # The dump holds what was counted since counting began: the load alone.
  callgrind_control --dump "$vpid" > /dev/null 2>&1
  kill "$vpid"
  wait "$vpid" 2> /dev/null || true
  vpid=
  python3 - "$name" "$dir/load.json" "$dir/callgrind.out.1" <<'PY'
import json, sys
name, load, profile = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
total = next(int(l.split()[1]) for l in open(profile) if l.startswith("summary:"))
non00 = sum(v for k, v in load["response_codes"].items() if k != "00")
msgs = max(load["messages"], 1)
print(f'{name:5} {total / msgs:9.0f} instructions per message  '
      f'({total} over {load["messages"]} messages; non-00 {non00}, errors {load["errors"]})')
PY
}

results=$work/results
count this "$bin" 29978 | tee -a "$results"
[[ -n ${OTHER:-} ]] && count other "$OTHER" 29988 | tee -a "$results"
if [[ -n ${OTHER:-} ]]; then
  python3 - "$results" <<'PY'
import sys
per = {l.split()[0]: float(l.split()[1]) for l in open(sys.argv[1])}
print(f'this/other: {per["this"] / per["other"]:.3f} ({(per["this"] / per["other"] - 1) * 100:+.1f}%)')
PY
fi
echo "where this build's instructions go (self cost, top 12):"
callgrind_annotate "$work/this/callgrind.out.1" 2> /dev/null |
  awk '/file:function/ {on = 1; next} on && NF && !/^-/' | head -12 |
  sed -E 's#(/root/.cargo/registry/src/[^/]+/|/rustc/[0-9a-f]+/)##; s# \[[^]]*\]$##' |
  cut -c1-150
[[ -n ${KEEP:-} ]] && echo "profiles kept in $work"
exit 0

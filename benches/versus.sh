#!/usr/bin/env bash
# This tree's switch against another build of it (an earlier commit built
# elsewhere), under the same load generator, alternating on fresh demo
# ledgers: medians of each and the per-round ratio. What a change costs or
# saves end to end, measured in one run on a noisy machine.
#
#   benches/versus.sh OTHER_CLUBSWITCH [rounds] [seconds] [connections] [mix]
#
# Build the other one with, for example:
#   git worktree add /tmp/base <commit> &&
#   (cd /tmp/base && cargo build --release -p clubswitch)
# then pass /tmp/base/target/release/clubswitch.
set -euo pipefail
other=${1:?the other clubswitch binary}
rounds=${2:-5}
secs=${3:-10}
conns=${4:-64}
mix=${5:-discount=50,club=50}

source "$(dirname "$0")/switch.sh"
this=$bin
results=$(mktemp)
trap 'rm -f "$results"' EXIT

one_run() {
  local mode=$1 dir before after out
  dir=$(mktemp -d -t clubswitch-versus-XXXXXX)
  case $mode in
    this) bin=$this start_switch "$dir" 29858 ;;
    other) bin=$other start_switch "$dir" 29858 ;;
  esac
  before=$(cpu_ticks "$pid")
  out=$("$this" loadgen --addr 127.0.0.1:29858 --admin-url http://127.0.0.1:29859 \
    --token-file "$dir/admin.token" --demo "$dir/demo.json" --cards 64 \
    -c "$conns" -d "$secs" --mix "$mix" --json)
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" || true
  rm -rf "$dir"
  report_run "$mode" "$out" "$before" "$after" | tee -a "$results"
}

for _ in $(seq "$rounds"); do
  one_run other
  one_run this
done
summarize "$results" other this

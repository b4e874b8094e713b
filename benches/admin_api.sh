#!/usr/bin/env bash
# What the admin API's access check costs: requests per second on one
# read (`GET /v1/terminals`) against this build and an earlier one built
# elsewhere (before the check existed), alternating on fresh demo ledgers,
# with curl keeping connections open. This build is run twice: with the
# bootstrap token (no ledger read to authenticate) and with a user's token
# (its token and user records read on every request).
#
#   benches/admin_api.sh OTHER_CLUBSWITCH [rounds] [requests] [parallel]
set -euo pipefail
other=${1:?the other clubswitch binary}
rounds=${2:-5}
requests=${3:-50000}
parallel=${4:-16}

source "$(dirname "$0")/switch.sh"
this=$bin
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# load PORT TOKEN: requests/s of $requests GETs, $parallel at a time.
load() {
  local cfg start end
  cfg=$(mktemp)
  for _ in $(seq "$requests"); do
    printf 'url = "http://127.0.0.1:%s/v1/terminals"\noutput = "/dev/null"\n' "$1"
  done > "$cfg"
  start=$(date +%s.%N)
  curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max "$parallel" \
    -H "Authorization: Bearer $2" -K "$cfg"
  end=$(date +%s.%N)
  rm -f "$cfg"
  python3 -c "print(f'{$requests / ($end - $start):.0f}')"
}

one_run() {
  local mode=$1 dir token
  dir=$(mktemp -d -t clubswitch-adminapi-XXXXXX)
  case $mode in
    other) bin=$other start_switch "$dir" 29858 ;;
    *) bin=$this start_switch "$dir" 29858 ;;
  esac
  token=$(cat "$dir/admin.token")
  if [ "$mode" = user ]; then
    token=$("$this" admin --url http://127.0.0.1:29859 --token-file "$dir/admin.token" \
      user add --name bench --role support | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  fi
  echo "$mode $(load 29859 "$token")" | tee -a "$results"
  kill "$pid"
  wait "$pid" || true
  rm -rf "$dir"
}

for r in $(seq "$rounds"); do
  echo "round $r" >&2
  for mode in other bootstrap user; do
    one_run "$mode"
  done
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {m: statistics.median(float(r[1]) for r in rows if r[0] == m) for m in ("other", "bootstrap", "user")}
print(f"median requests/s: before {med['other']:.0f}, bootstrap token {med['bootstrap']:.0f} "
      f"({med['bootstrap'] / med['other']:.2f}x), user token {med['user']:.0f} ({med['user'] / med['other']:.2f}x)")
PY

#!/usr/bin/env bash
# Checks the operations material under deploy/: the Prometheus configuration,
# alert rules and their unit tests (promtool), the Grafana dashboard (JSON,
# PromQL, data source), that every metric the rules and the dashboard name is
# one the switch serves, the HAProxy configuration (if haproxy is installed),
# the Patroni example (if patroni is installed) and the shell scripts' syntax.
# Exits non-zero on any failure. Run from anywhere: deploy/check.sh
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
ok() { echo "ok    $*"; }
bad() { echo "FAIL  $*"; failed=1; }
skip() { echo "skip  $*"; }
# Runs a check quietly; shows its output only if it fails.
run() {
    local what=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$what"; else bad "$what"; echo "$out" | sed 's/^/      /'; fi
}

# promtool comes with Debian's prometheus package.
if ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing promtool (Debian package prometheus)"
        # Install only: keep the package's service from starting here.
        printf '#!/bin/sh\nexit 101\n' > /tmp/clubswitch-policy-rc.d
        chmod +x /tmp/clubswitch-policy-rc.d
        restore_policy=
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            cp /tmp/clubswitch-policy-rc.d /usr/sbin/policy-rc.d
            restore_policy=1
        fi
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends prometheus; } >/dev/null 2>&1
        [ -n "$restore_policy" ] && rm -f /usr/sbin/policy-rc.d
        if command -v systemctl >/dev/null; then systemctl disable prometheus >/dev/null 2>&1; fi
        rm -f /tmp/clubswitch-policy-rc.d
    fi
    command -v promtool >/dev/null || { bad "promtool: not installed and could not be installed"; exit 1; }
fi

prom=deploy/prometheus
run "promtool check config $prom/prometheus.yml" promtool check config "$prom/prometheus.yml"
run "promtool check rules $prom/alerts.yml" promtool check rules "$prom/alerts.yml"
run "promtool test rules $prom/alerts_test.yml" promtool test rules "$prom/alerts_test.yml"

dash=deploy/grafana/clubswitch.json
run "$dash is JSON" python3 -m json.tool "$dash"

# The dashboard's queries: every panel reads the data source variable, and
# every expression parses as PromQL once Grafana's variables are filled in
# (promtool checks them as recording rules).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if python3 - "$dash" "$tmp/dashboard_rules.yml" > "$tmp/dash.out" 2>&1 <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
names = [v["name"] for v in dash["templating"]["list"]]
assert "datasource" in names, "no datasource variable"
exprs, problems = [], []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        if p.get("type") == "row":
            continue
        for where in [p] + p.get("targets", []):
            if where.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"panel {p.get('title')!r}: data source is not ${{datasource}}")
        for t in p.get("targets", []):
            exprs.append(t["expr"])
walk(dash["panels"])
for v in dash["templating"]["list"]:
    if v["type"] == "query" and v["datasource"].get("uid") != "${datasource}":
        problems.append(f"variable {v['name']}: data source is not ${{datasource}}")
if problems:
    sys.exit("\n".join(problems))
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = e.replace("$__rate_interval", "5m").replace("$job", "j").replace("$instance", "i")
        out.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(e)}\n")
print(f"{len(exprs)} expressions")
PY
then
    ok "$dash: data source variable on every panel ($(cat "$tmp/dash.out"))"
    run "$dash: every expression is PromQL" promtool check rules "$tmp/dashboard_rules.yml"
else
    bad "$dash: panels"
    sed 's/^/      /' "$tmp/dash.out"
fi

# Every metric named in the rules, their tests and the dashboard is served
# by the switch: its name appears, quoted, in crates/switch/src (a
# histogram's _bucket, _sum and _count come from its base name).
missing=()
names=$(grep -ohE 'clubswitch_[a-z0-9_]+' "$prom/alerts.yml" "$prom/alerts_test.yml" "$dash" | sort -u)
for name in $names; do
    found=
    for n in "$name" "${name%_bucket}" "${name%_sum}" "${name%_count}"; do
        if grep -rqE "\"$n([^a-z0-9_]|\$)" crates/switch/src; then found=1; break; fi
    done
    [ -n "$found" ] || missing+=("$name")
done
if [ ${#missing[@]} -eq 0 ]; then
    ok "$(echo "$names" | wc -w) metric names in the rules and dashboard are served by crates/switch/src"
else
    bad "metrics not served by crates/switch/src: ${missing[*]}"
fi

if command -v haproxy >/dev/null; then
    run "haproxy -c -f deploy/haproxy/haproxy.cfg" haproxy -c -f deploy/haproxy/haproxy.cfg
else
    skip "haproxy -c: haproxy is not installed"
fi

if command -v patroni >/dev/null; then
    run "patroni --validate-config deploy/postgres/patroni.yml" \
        patroni --validate-config deploy/postgres/patroni.yml
else
    skip "patroni --validate-config: patroni is not installed"
fi

for s in deploy/check.sh deploy/postgres/standby.sh deploy/postgres/backup.sh; do
    run "bash -n $s" bash -n "$s"
done
run "sh -n deploy/postgres/archive-wal.sh" sh -n deploy/postgres/archive-wal.sh
if command -v shellcheck >/dev/null; then
    run "shellcheck" shellcheck deploy/check.sh deploy/postgres/*.sh
fi

if [ "$failed" = 0 ]; then
    echo "deploy/check.sh: all checks passed"
else
    echo "deploy/check.sh: FAILED"
fi
exit "$failed"

# Sourced by the bench scripts: builds the release binary (`$bin`) and
# starts demo switches for them to load.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release -p clubswitch >&2
bin=$PWD/target/release/clubswitch

# start_switch DIR PORT [ARGS...]: a demo switch on data directory DIR,
# terminals on PORT, the admin API on PORT+1 and metrics on PORT+2, with
# ARGS added to `run`; its output goes to DIR/switch.out and .err. Sets
# `pid` and returns once the admin API is up. Logs warnings unless
# CLUBSWITCH_LOG says otherwise (`warn,clubswitch::jobs=info` adds each
# archiver round: what it moved and how long it took).
start_switch() {
  local dir=$1 port=$2
  shift 2
  CLUBSWITCH_LOG=${CLUBSWITCH_LOG:-warn} "$bin" run --demo --data-dir "$dir" "$@" \
    --listen "127.0.0.1:$port" --admin "127.0.0.1:$((port + 1))" \
    --metrics "127.0.0.1:$((port + 2))" \
    > "$dir/switch.out" 2> "$dir/switch.err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q "admin API on" "$dir/switch.out" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the switch did not start; see $dir/switch.err" >&2
  return 1
}

# build_echo: builds the byte-echo server the switch is compared with
# (../shared/tools/echo.c, or $ECHO_C) as `gcc -O2 -pthread`; sets
# `echo_bin`. Run it as `"$echo_bin" PORT 2` (two threads).
build_echo() {
  echo_bin=$PWD/target/echo-server
  gcc -O2 -pthread -o "$echo_bin" "${ECHO_C:-$PWD/../shared/tools/echo.c}"
}

# cpu_ticks PID: the CPU time (clock ticks) of PID so far, all its threads
# (the process's own stat line sums them, ended threads included).
cpu_ticks() {
  awk '{print $14 + $15}' /proc/"$1"/stat
}

# report_run MODE LOADGEN_JSON CPU_BEFORE CPU_AFTER [EXTRA]: one line of a
# comparison: flows/s, p99, the switch's CPU per flow, non-00 answers and
# errors, then EXTRA.
report_run() {
  python3 - "$1" "$2" "$3" "$4" "$(getconf CLK_TCK)" "${5:-}" <<'PY'
import json, sys
mode, r, before, after, hz, extra = sys.argv[1], json.loads(sys.argv[2]), *map(int, sys.argv[3:6]), sys.argv[6]
non00 = sum(v for k, v in r["response_codes"].items() if k != "00")
cpu = (after - before) / hz * 1e6 / max(r["flows"], 1)
print(f'{mode:9} {r["flows_per_sec"]:7.0f} flows/s  p99 {r["latency_ms"]["p99"]:6.2f} ms  '
      f'switch CPU {cpu:6.1f} us/flow  non-00 {non00}  errors {r["errors"]}  {extra}')
PY
}

# summarize RESULTS MODE...: medians of each mode's runs in RESULTS (lines
# of report_run), and each later mode against the first, round by round.
summarize() {
  python3 - "$@" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
modes = sys.argv[2:]
def col(mode, i):
    return [float(r[i]) for r in rows if r[0] == mode]
m = statistics.median
base, base_p99, base_cpu = col(modes[0], 1), col(modes[0], 4), col(modes[0], 8)
print(f"{modes[0]}: median {m(base):.0f} flows/s, p99 {m(base_p99):.2f} ms, "
      f"switch CPU {m(base_cpu):.1f} us/flow")
for mode in modes[1:]:
    runs, p99, cpu = col(mode, 1), col(mode, 4), col(mode, 8)
    # Each round's runs went back to back, so their ratio is the least
    # disturbed by the machine's own drift.
    ratio = m(r / b for b, r in zip(base, runs))
    cpu_ratio = m(c / b for b, c in zip(base_cpu, cpu))
    print(f"{mode}: median {m(runs):.0f} flows/s, p99 {m(p99):.2f} ms, "
          f"switch CPU {m(cpu):.1f} us/flow; per round against {modes[0]}: "
          f"{(ratio - 1) * 100:+.1f}% flows/s, {(cpu_ratio - 1) * 100:+.1f}% CPU per flow")
PY
}

# start_postgres DIR PORT: a PostgreSQL primary on loopback PORT and a
# synchronous standby on PORT+1, as production runs them (every COMMIT on
# two hosts' disks; deploy/postgres/README.md), their clusters in DIR.
# Defines `psql` (the primary, as postgres, unaligned). Needs PostgreSQL's
# server programs (pg_config --bindir, or /usr/lib/postgresql/*/bin); as
# root they run as the postgres user. Stop them with stop_postgres DIR.
# PostgreSQL's settings are initdb's, with PG_OPTIONS added to both
# servers' command lines (`PG_OPTIONS="-c max_wal_size=8GB"`).
start_postgres() {
  local dir=$1 port=$2
  pgbin=$( (pg_config --bindir 2>/dev/null) || ls -d /usr/lib/postgresql/*/bin | tail -1)
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    as_pg=(runuser -u postgres --)
    chown postgres "$dir"
  fi
  "${as_pg[@]}" "$pgbin/initdb" -D "$dir/primary" -U postgres -A trust --no-sync >/dev/null
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n' \
    > "$dir/primary/pg_hba.conf"
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/primary" -l "$dir/primary.log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_OPTIONS:-}" >/dev/null
  "${as_pg[@]}" "$pgbin/pg_basebackup" -D "$dir/standby" -h 127.0.0.1 -p "$port" -U postgres \
    -R -X stream --checkpoint=fast
  sed -i "s/primary_conninfo = '/primary_conninfo = 'application_name=standby1 /" \
    "$dir/standby/postgresql.auto.conf"
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/standby" -l "$dir/standby.log" -w start \
    -o "-p $((port + 1)) -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 ${PG_OPTIONS:-}" >/dev/null
  eval "psql() { command psql -h 127.0.0.1 -p $port -U postgres -qAt \"\$@\"; }"
  psql -c "ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1)'"
  psql -c "SELECT pg_reload_conf()" >/dev/null
  until [ "$(psql -c "SELECT sync_state FROM pg_stat_replication")" = sync ]; do sleep 0.2; done
}

# stop_postgres DIR: stops what start_postgres DIR started, if it runs.
stop_postgres() {
  [ -n "${pgbin:-}" ] || return 0
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$1/standby" stop -m immediate >/dev/null 2>&1 || true
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$1/primary" stop -m immediate >/dev/null 2>&1 || true
}

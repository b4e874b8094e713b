#!/usr/bin/env bash
# Makes an empty data directory a streaming standby of the primary, with a
# replication slot, named so the primary's synchronous_standby_names can
# count it. Run on the standby host as the postgres user, server stopped:
#
#   standby.sh PRIMARY_HOST NAME DATA_DIR
#   e.g. on pg2: standby.sh 10.0.2.11 pg2 /var/lib/postgresql/15/main
#
# NAME ([a-z0-9_]) is this host's name in synchronous_standby_names
# (postgresql.conf here): the standby's application_name, and the name of
# its slot on the primary. Environment: PGPORT (5432), REPL_USER (replicator; its
# password in ~/.pgpass), PGBIN (directory of pg_basebackup, if not on PATH),
# REPLACE_SLOT=1 to drop a slot of that name first (re-cloning a standby).
# Debian keeps the configuration in /etc/postgresql: install the same
# conf.d/clubswitch.conf and pg_hba.conf as on the primary before starting.
#
# The copy is consistent (-X stream: the WAL written while it is taken comes
# with it), and the slot is created before the copy starts, so the primary
# keeps every WAL segment the standby has not received yet, up to
# max_slot_wal_keep_size, even while the standby is down.
set -euo pipefail

[ $# -eq 3 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
primary=$1
name=$2
data=$3
port=${PGPORT:-5432}
user=${REPL_USER:-replicator}
bin=${PGBIN:+$PGBIN/}

[[ $name =~ ^[a-z0-9_]+$ ]] || { echo "standby.sh: NAME must be [a-z0-9_]+" >&2; exit 2; }
if [ -d "$data" ] && [ -n "$(ls -A "$data")" ]; then
    echo "standby.sh: $data is not empty; stop the server and move it aside first" >&2
    exit 1
fi

if [ "${REPLACE_SLOT:-}" = 1 ]; then
    "${bin}pg_receivewal" -h "$primary" -p "$port" -U "$user" --slot "$name" --drop-slot ||
        echo "standby.sh: no slot $name to drop" >&2
fi

# -C -S: create the slot and stream through it; -R: standby.signal and
# primary_conninfo; -d: the name the standby gives the primary.
"${bin}pg_basebackup" -h "$primary" -p "$port" -U "$user" -D "$data" \
    -X stream -C -S "$name" -R --checkpoint=fast \
    -d "application_name=$name"

auto=$data/postgresql.auto.conf
if ! grep -q "^primary_conninfo = '.*application_name=$name" "$auto"; then
    sed -i "s/^primary_conninfo = '/primary_conninfo = 'application_name=$name /" "$auto"
fi
grep -q "^primary_slot_name = '$name'" "$auto" || echo "primary_slot_name = '$name'" >> "$auto"

cat <<EOF
standby $name ready in $data. Start it, then on the primary:
  SELECT application_name, state, sync_state FROM pg_stat_replication;
should show $name streaming, sync_state 'quorum' (ANY n) or 'sync' (FIRST n)
once $name is in synchronous_standby_names.
EOF

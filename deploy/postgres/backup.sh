#!/usr/bin/env bash
# Base backups of the ledger's database, and restores from them with the WAL
# archive (archive-wal.sh) to any instant since the oldest kept backup.
#
#   backup.sh base    BACKUPS                  new base backup BACKUPS/base-<UTC time>
#   backup.sh prune   BACKUPS ARCHIVE KEEP     keep the newest KEEP, and the WAL they need
#   backup.sh restore BACKUP ARCHIVE DATA_DIR [TIME]
#                     a new primary in DATA_DIR: BACKUP, then the archive's
#                     WAL up to TIME ('2027-03-21 14:30:00+03:30'; all without)
#
# Environment: PGHOST (the primary, or a standby, which spares the primary
# the reading; there --checkpoint=fast waits for the primary's next
# checkpoint), PGPORT, PGUSER (default replicator; password in ~/.pgpass),
# PGBIN (directory of the PostgreSQL programs, if not on PATH).
#
# A base backup alone restores the database as of its end (-X stream puts
# the WAL it needs in it); with the archive it restores to any later
# instant the archive reaches. pg_verifybackup checks every file against the
# backup's manifest before the backup gets its final name.
set -euo pipefail
bin=${PGBIN:+$PGBIN/}
export PGUSER=${PGUSER:-replicator}

usage() { sed -n '5,10p' "$0" >&2; exit 2; }

base() {
    local dest
    dest=$1/base-$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$1"
    "${bin}pg_basebackup" -D "$dest.partial" -X stream --checkpoint=fast \
        --manifest-checksums=SHA256
    "${bin}pg_verifybackup" -q "$dest.partial"
    mv "$dest.partial" "$dest"
    sync "$1"
    echo "base backup $dest"
}

prune() {
    local backups=$1 archive=$2 keep=$3 all n wal
    [[ $keep =~ ^[1-9][0-9]*$ ]] || { echo "backup.sh: KEEP must be 1 or more" >&2; exit 2; }
    mapfile -t all < <(find "$backups" -mindepth 1 -maxdepth 1 -type d -name 'base-*' \
        ! -name '*.partial' | sort)
    n=${#all[@]}
    if (( n <= keep )); then
        echo "$n base backups, keeping all"
        return
    fi
    # The oldest backup kept needs the WAL from its start on.
    wal=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p' \
        "${all[n - keep]}/backup_label")
    [ -n "$wal" ] || { echo "backup.sh: no start WAL in ${all[n - keep]}/backup_label" >&2; exit 1; }
    for old in "${all[@]:0:n - keep}"; do
        rm -rf "$old"
        echo "removed $old"
    done
    "${bin}pg_archivecleanup" "$archive" "$wal"
    echo "removed archived WAL before $wal"
}

restore() {
    local backup=$1 archive=$2 data=$3 target=${4:-}
    if [ -d "$data" ] && [ -n "$(ls -A "$data")" ]; then
        echo "backup.sh: $data is not empty; stop that server and move it aside" >&2
        exit 1
    fi
    [ -f "$backup/backup_label" ] || { echo "backup.sh: $backup is not a base backup" >&2; exit 1; }
    "${bin}pg_verifybackup" -q "$backup"
    mkdir -p "$data"
    chmod 700 "$data"
    cp -a "$backup/." "$data/"
    rm -f "$data/standby.signal" "$data/backup_manifest"
    # What the backed-up host had for streaming from a primary does not apply.
    sed -i '/^primary_conninfo\|^primary_slot_name/d' "$data/postgresql.auto.conf"
    {
        echo "# backup.sh restore of $backup, $(date -u +%FT%TZ)"
        echo "restore_command = 'cp $archive/%f %p'"
        echo "recovery_target_timeline = 'latest'"
        [ -z "$target" ] || echo "recovery_target_time = '$target'"
        echo "recovery_target_action = 'promote'"
        echo "# No standby follows it yet: with one named, every COMMIT would wait."
        echo "synchronous_standby_names = ''"
        echo "# Not into the archive of the cluster it came from (see README)."
        echo "archive_mode = off"
    } >> "$data/postgresql.auto.conf"
    touch "$data/recovery.signal"
    sync "$data"
    cat <<EOF
restored $backup into $data; start the server there: it replays the archive
${target:+up to $target }and then takes writes (pg_is_in_recovery() turns false).
Then: clubswitch audit --store-url URL; point the switch nodes at it; attach
standbys (standby.sh); ALTER SYSTEM RESET synchronous_standby_names and
ALTER SYSTEM RESET archive_mode, restart; take a new base backup.
EOF
}

case ${1:-} in
    base) [ $# -eq 2 ] || usage; base "$2" ;;
    prune) [ $# -eq 4 ] || usage; prune "$2" "$3" "$4" ;;
    restore) [ $# -eq 4 ] || [ $# -eq 5 ] || usage; restore "$2" "$3" "$4" "${5:-}" ;;
    *) usage ;;
esac

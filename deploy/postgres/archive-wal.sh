#!/bin/sh
# PostgreSQL's archive_command: copies one WAL segment (or history/backup
# file) into the WAL archive, durably.
#   archive_command = '/usr/local/lib/clubswitch/archive-wal.sh %p %f /srv/wal-archive'
# ARCHIVE is a directory every database host can write (a mount of the backup
# host's disk, not the database's own disk).
#
# Exit 0 only once the file is in ARCHIVE under its name and fsync'ed, for
# PostgreSQL then recycles its own copy. A file already archived with the
# same content is success (a retry after a crash between copy and answer);
# with other content it is an error, never overwritten.
set -eu
src=$1
name=$2
archive=$3

if [ -e "$archive/$name" ]; then
    if cmp -s "$src" "$archive/$name"; then
        exit 0
    fi
    echo "archive-wal: $archive/$name exists with other content" >&2
    exit 1
fi
tmp="$archive/.$name.tmp"
cp "$src" "$tmp"
sync "$tmp"                 # the content is on disk
mv "$tmp" "$archive/$name"  # then it appears under its name
sync "$archive"             # and the name is on disk

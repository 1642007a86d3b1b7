#!/bin/sh
# First start: copy the database built into the image onto the (empty) volume; later starts keep it,
# so reads survive container restarts. SQLite's backup API copies committed pages, WAL included.
set -eu
if [ ! -f "$CERVIXSCOPE_DB" ]; then
    mkdir -p "$(dirname "$CERVIXSCOPE_DB")"
    python -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).backup(sqlite3.connect(sys.argv[2]))' \
        /app/seed/cervixscope.db "$CERVIXSCOPE_DB"
fi
if [ -z "${CERVIXSCOPE_ADMIN_SECRET:-}" ]; then
    echo "CERVIXSCOPE_ADMIN_SECRET is not set: one is generated and printed below." >&2
fi
exec python -m core.cli dashboard --address 0.0.0.0 --port 8501

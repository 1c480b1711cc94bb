#!/usr/bin/env bash
# Nightly backup example (cron: 15 3 * * * /srv/rezvo-support/deploy/backup.sh).
# MongoDB: mongodump of the support database, gzip'd archive. SQLite: the online backup API,
# which is safe while gunicorn writes (copying the file is not, with WAL).
# Keep 14 days; copy the directory off the host; test a restore now and then:
#   mongorestore --gzip --archive=FILE --nsFrom='rezvo_support.*' --nsTo='rezvo_restore.*'
set -euo pipefail
set -a; source /etc/rezvo-support.env; set +a
dest="${BACKUP_DIR:-/var/backups/rezvo-support}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$dest"
if [[ -n "${MONGODB_URI:-}" ]]; then
  mongodump --uri="$MONGODB_URI" --db="${MONGODB_NAME:-rezvo_support}" --gzip --archive="$dest/rezvo-$stamp.archive.gz"
else
  sqlite3 "${SQLITE_PATH:-/srv/rezvo-support/db.sqlite3}" ".backup '$dest/rezvo-$stamp.sqlite3'"
fi
find "$dest" -name 'rezvo-*' -mtime +14 -delete

#!/bin/sh
# redis-server with brig.conf and the password from BRIG_REDIS_PASSWORD,
# handed over on stdin (never on a command line). exec: redis-server is pid 1
# and gets the container's SIGTERM itself, so it syncs its append-only file
# and exits at once.
set -eu
if [ -z "${BRIG_REDIS_PASSWORD:-}" ]; then
  echo "brig-redis: set BRIG_REDIS_PASSWORD" >&2
  exit 3
fi
exec redis-server /etc/redis/brig.conf - <<EOF_CONFIG
requirepass $BRIG_REDIS_PASSWORD
EOF_CONFIG

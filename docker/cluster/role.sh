#!/usr/bin/env bash
# One role of the scaled profile (compose.yaml) per container: primary, replica, pgbouncer,
# haproxy or redis. Each runs in the foreground as its own unprivileged user (compose's
# `user:`), logs to standard output and stops on SIGTERM.
set -euo pipefail

need() {  # the named environment variables are set, or say which is not
    for name in "$@"; do
        [ -n "${!name:-}" ] || { echo "role $role: $name is not set" >&2; exit 64; }
    done
}

primary() {
    need APP_PASSWORD REPLICATION_PASSWORD
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        initdb --pgdata="$PGDATA" --username=postgres --auth-local=peer \
            --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        cat >>"$PGDATA/pg_hba.conf" <<HBA
host replication replicator all scram-sha-256
host all all all scram-sha-256
HBA
        # Roles and the database, on a server no other container can reach yet.
        pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses=''" start
        psql --quiet --username=postgres --dbname=postgres --set=ON_ERROR_STOP=1 \
            --set=app="$APP_PASSWORD" --set=replication="$REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE app LOGIN PASSWORD :'app';
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replication';
CREATE DATABASE users OWNER app;
SQL
        pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
    fi
    exec postgres -D "$PGDATA" -c listen_addresses='*' \
        -c max_connections="${MAX_CONNECTIONS:-100}"
}

replica() {
    need PRIMARY_HOST REPLICATION_PASSWORD
    if [ ! -s "$PGDATA/PG_VERSION" ]; then
        # A copy of the primary that streams its WAL from then on (-R writes the settings).
        PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup --host="$PRIMARY_HOST" \
            --username=replicator --pgdata="$PGDATA" --wal-method=stream \
            --write-recovery-conf --checkpoint=fast
        chmod 0700 "$PGDATA"
    fi
    exec postgres -D "$PGDATA" -c listen_addresses='*' \
        -c max_connections="${MAX_CONNECTIONS:-100}"
}

pgbouncer_() {
    need PRIMARY_HOST REPLICA_HOST APP_PASSWORD
    local folder=/tmp/pgbouncer
    mkdir -p "$folder"
    # Plain text here so that PgBouncer can answer SCRAM both ways: the clients' and the
    # servers'. The file lives in the container's /tmp, readable by this user only.
    umask 077
    printf '"app" "%s"\n' "$APP_PASSWORD" >"$folder/userlist.txt"
    cat >"$folder/pgbouncer.ini" <<INI
[databases]
users = host=$PRIMARY_HOST port=5432 dbname=users
users_replica = host=$REPLICA_HOST port=5432 dbname=users
[pgbouncer]
listen_addr = *
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $folder/userlist.txt
pool_mode = transaction
default_pool_size = ${POOL_SIZE:-10}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
INI
    exec pgbouncer "$folder/pgbouncer.ini"
}

haproxy_() {
    need HAPROXY_BIND HAPROXY_ADMIN_SOCKET API_1 API_2 API_3
    exec haproxy -W -db -f /etc/haproxy/user-api.cfg
}

redis() {
    # A limiter's counters only: nothing to save, and every container of the network may ask.
    exec redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no
}

role="${1:-}"
case "$role" in
    primary) primary ;;
    replica) replica ;;
    pgbouncer) pgbouncer_ ;;
    haproxy) haproxy_ ;;
    redis) redis ;;
    *) echo "usage: role primary|replica|pgbouncer|haproxy|redis" >&2; exit 64 ;;
esac

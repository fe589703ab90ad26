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

# First starts build the data folder beside its place ($PGDATA.init) and move it there only
# once complete: a first start cut short (a kill, a full disk) leaves no folder that a later
# start would take for a finished one, and is simply done again.
fresh() {
    rm -rf "$PGDATA.init"
    [ ! -e "$PGDATA" ]
}

primary() {
    need APP_PASSWORD REPLICATION_PASSWORD
    local slot="${REPLICATION_SLOT:-replica}"
    if fresh; then
        initdb --pgdata="$PGDATA.init" --username=postgres --auth-local=peer \
            --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
        cat >>"$PGDATA.init/pg_hba.conf" <<HBA
host replication replicator all scram-sha-256
host all all all scram-sha-256
HBA
        # Roles and the database, on a server no other container can reach yet. Passwords
        # come from the environment (\getenv), not the command line. PgBouncer's transaction
        # mode passes no startup options, so the API's deadlines
        # (docs/explanation/failure-behaviour.md) are the role's own; bulk work raises them per transaction (SET LOCAL).
        # The slot keeps the WAL the replica has not streamed yet, up to max_slot_wal_keep_size.
        pg_ctl --pgdata="$PGDATA.init" --wait --silent -o "-c listen_addresses=''" start
        psql --quiet --no-psqlrc --username=postgres --dbname=postgres --set=ON_ERROR_STOP=1 \
            --set=slot="$slot" <<'SQL'
\getenv app APP_PASSWORD
\getenv replication REPLICATION_PASSWORD
CREATE ROLE app LOGIN PASSWORD :'app';
CREATE ROLE replicator LOGIN REPLICATION PASSWORD :'replication';
CREATE DATABASE users OWNER app;
ALTER ROLE app SET statement_timeout = '5s';
ALTER ROLE app SET lock_timeout = '2s';
ALTER ROLE app SET idle_in_transaction_session_timeout = '10s';
SELECT pg_create_physical_replication_slot(:'slot') \g /dev/null
SQL
        pg_ctl --pgdata="$PGDATA.init" --wait --silent --mode=fast stop
        mv "$PGDATA.init" "$PGDATA"
    fi
    exec postgres -D "$PGDATA" -c listen_addresses='*' \
        -c max_connections="${MAX_CONNECTIONS:-100}" \
        -c max_slot_wal_keep_size="${MAX_SLOT_WAL_KEEP_SIZE:-1GB}"
}

replica() {
    need PRIMARY_HOST REPLICATION_PASSWORD
    if fresh; then
        # A copy of the primary that streams its WAL from then on, through the primary's
        # slot (-R writes the settings, the slot's name among them).
        PGPASSWORD="$REPLICATION_PASSWORD" pg_basebackup --host="$PRIMARY_HOST" \
            --username=replicator --pgdata="$PGDATA.init" --wal-method=stream \
            --write-recovery-conf --slot="${REPLICATION_SLOT:-replica}" --checkpoint=fast
        chmod 0700 "$PGDATA.init"
        mv "$PGDATA.init" "$PGDATA"
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
    # A double quote inside a quoted field is written twice.
    umask 077
    printf '"app" "%s"\n' "${APP_PASSWORD//\"/\"\"}" >"$folder/userlist.txt"
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

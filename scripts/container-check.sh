#!/usr/bin/env bash
# Build the image and prove it: the lock's versions (requirements/app.txt) and no others,
# migrate as a step of its own, serve, health, the users flow through the published port, bulk
# import and export through the CLI, non-root, no compiler or tests inside, graceful docker
# stop; every line migrate and the server print is JSON; the worker role seals the events
# and sends a password reset's mail to the image's mail sink.
# Then compose.yaml's scaled profile (primary, streaming replica, PgBouncer, Redis, three API
# replicas, HAProxy), driven through HAProxy by tests/cluster/compose_check.py (needs .venv).
#
# Runs where no Docker engine is reachable and no public registry either: it starts a
# private engine (Debian's docker.io) and builds the base image itself with mmdebstrap.
# If the engine cannot run on this machine it says why, with the engine's own error: under
# CI=true that fails the run (a green CI must have proved the container); elsewhere it is a
# warning and the script exits 0. Loopback only: containers use the host's
# network (the engine makes no bridge), so nothing is sent to any other address; the scaled
# profile's containers talk on compose's own network, published on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=user-api:check
CLUSTER_IMAGE=user-api-cluster:check
SCALED_PORT="${CONTAINER_CHECK_SCALED_PORT:-18766}"
BASE=user-api-base:bookworm
PORT="${CONTAINER_CHECK_PORT:-18765}"
WORKER_PORT="${CONTAINER_CHECK_WORKER_PORT:-18767}"
SINK_SMTP_PORT="${CONTAINER_CHECK_SINK_SMTP_PORT:-18725}"
SINK_HTTP_PORT="${CONTAINER_CHECK_SINK_HTTP_PORT:-18726}"
WORK=/var/tmp/user-api-container-check
PG_ADMIN="${TEST_POSTGRES_DSN:-postgresql://postgres@127.0.0.1:5432/test}"
DB=app_container_check
DB_URL="postgresql://postgres@127.0.0.1:5432/$DB"
mkdir -p "$WORK"

warn() {
    if [ "${CI:-}" = "true" ]; then
        printf '\n::error:: container check could not run: %s\n\n' "$*" >&2
        exit 1
    fi
    printf '\n::warning:: container check skipped: %s\n\n' "$*" >&2
    exit 0
}
step() { printf '\n== %s\n' "$*"; }

all_json() {  # every line of the file parses as one JSON object, or name the first that does not
    python3 -c '
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
if not lines:
    sys.exit(f"{sys.argv[2]} printed nothing")
for number, line in enumerate(lines, 1):
    try:
        assert isinstance(json.loads(line), dict)
    except (ValueError, AssertionError):
        sys.exit(f"{sys.argv[2]}, line {number} is not a JSON object: {line!r}")
print(f"{sys.argv[2]}: {len(lines)} lines, each a JSON object")' "$1" "$2"
}

need() {  # install Debian packages that are missing
    local missing=()
    for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    step "installing ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

[ -x .venv/bin/python ] || {
    echo "this check runs .venv/bin/python (the image against the lock, the scaled profile):" \
        "run the README's test command first" >&2
    exit 1
}

step "hadolint"
hadolint=hadolint
[ -x .venv/bin/hadolint ] && hadolint=.venv/bin/hadolint
"$hadolint" Dockerfile
"$hadolint" docker/cluster/Dockerfile
echo "ok"

need docker.io mmdebstrap postgresql-client
if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    need docker-compose  # Debian's Compose 1.29: profiles and completion conditions
    compose=(docker-compose)
fi
# The scaled profile, as its own project. PgBouncer's pool of 2 is fewer connections than 8
# clients over three replicas would open, so its cap shows; the rate limit is not what this
# measures, and the load is all one key's.
export COMPOSE_PROJECT_NAME=user-api-scaled-check API_IMAGE="$IMAGE" \
    CLUSTER_IMAGE="$CLUSTER_IMAGE" HAPROXY_PORT="$SCALED_PORT" POOL_SIZE=2 \
    RATE_LIMIT=100000/minute
scaled=("${compose[@]}" --profile scaled)
SCALED_UP=""

ENGINE_PID=""
remove_containers() {
    docker rm -f user-api-check user-api-worker user-api-mailsink user-api-first-start \
        >/dev/null 2>&1 || true
}
cleanup() {
    remove_containers
    if [ -n "$SCALED_UP" ]; then "${scaled[@]}" down -v >/dev/null 2>&1 || true; fi
    if [ -n "$ENGINE_PID" ]; then kill "$ENGINE_PID" 2>/dev/null || true; wait "$ENGINE_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
    step "starting a private Docker engine"
    export DOCKER_HOST="unix://$WORK/docker.sock"
    # An earlier run cut short (its session ended mid-check) can leave its engine running on
    # this data root, which a second engine refuses; that engine is ours: its pid is in our file.
    old_engine=$(cat "$WORK/dockerd.pid" 2>/dev/null || true)
    if [ -n "$old_engine" ] && grep -qs "$WORK/data" "/proc/$old_engine/cmdline"; then
        echo "stopping the engine an earlier, interrupted run left (pid $old_engine)"
        kill "$old_engine"
        for _ in $(seq 1 60); do kill -0 "$old_engine" 2>/dev/null || break; sleep 0.5; done
    fi
    dockerd --data-root "$WORK/data" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
        --host "$DOCKER_HOST" --bridge=none --iptables=false --ip-masq=false \
        >"$WORK/dockerd.log" 2>&1 &
    ENGINE_PID=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$ENGINE_PID" 2>/dev/null || warn "dockerd exited: $(tail -n 5 "$WORK/dockerd.log")"
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || warn "dockerd did not answer: $(tail -n 5 "$WORK/dockerd.log")"
fi

# The engine's data root outlives a run (it keeps the base image), and with it whatever
# containers an interrupted run left: CI once failed on a leftover "user-api-check" (exit 125).
remove_containers
"${scaled[@]}" down -v >/dev/null 2>&1 || true

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    step "building the base image with mmdebstrap (Debian bookworm, python3, no compiler)"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        bookworm "$WORK/base.tar" http://deb.debian.org/debian
    docker import "$WORK/base.tar" "$BASE" >/dev/null
    rm -f "$WORK/base.tar"
fi

step "docker build (classic builder)"
# Locally added CAs (a TLS-intercepting proxy's) reach pip in the build stage only.
extra_ca="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)"
DOCKER_BUILDKIT=0 docker build --quiet --network host --build-arg BASE_IMAGE="$BASE" \
    --build-arg EXTRA_CA_CERT="$extra_ca" -t "$IMAGE" . >/dev/null
size=$(docker image inspect "$IMAGE" --format '{{.Size}}')
printf 'image %s: %s MB\n' "$IMAGE" "$((size / 1024 / 1024))"

step "the image holds requirements/app.txt's versions; besides them only the venv's own pip"
docker run --rm --entrypoint python3 "$IMAGE" -c '
import importlib.metadata
for distribution in importlib.metadata.distributions():
    print(distribution.metadata["Name"], distribution.version)' >"$WORK/installed.txt"
.venv/bin/python - requirements/app.txt "$WORK/installed.txt" <<'PY'
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

lock, listing = sys.argv[1:]
locked = {}
# Continuations joined, comments and hashes dropped: one "name==version ; marker" a line.
for line in re.sub(r"\\\n", " ", open(lock, encoding="utf-8").read()).splitlines():
    line = re.sub(r"\s--hash=\S+", "", re.sub(r"(^|\s)#.*", "", line)).strip()
    if not line:
        continue
    requirement = Requirement(line)
    # Evaluated here: the host is CPython 3.11 on Linux x86_64, as the image is.
    if requirement.marker is None or requirement.marker.evaluate():
        (pin,) = requirement.specifier
        locked[canonicalize_name(requirement.name)] = Version(pin.version)
installed = {}
for line in open(listing, encoding="utf-8").read().splitlines():
    name, version = line.split()
    installed.setdefault(canonicalize_name(name), []).append(Version(version))
problems = [
    f"{name}: locked {version}, installed {', '.join(map(str, installed.get(name, []))) or 'none'}"
    for name, version in sorted(locked.items())
    if installed.get(name) != [version]
]
# pip and setuptools come with the base image's venv module, not from the lock.
unlocked = sorted(installed.keys() - locked.keys())
problems += [
    f"{name}: installed, not locked" for name in unlocked if name not in ("pip", "setuptools")
]
if problems:
    sys.exit(f"the image is not {lock}:\n" + "\n".join(problems))
others = ", ".join(f"{name} {installed[name][0]}" for name in unlocked)
print(f"{len(locked)} packages, each at its locked version; besides them: {others or 'none'}")
PY

step "the image holds no compiler, no tests and no CA of the build"
docker run --rm --entrypoint sh "$IMAGE" -c '
    for tool in gcc cc c++ make; do command -v "$tool" && { echo "compiler found: $tool"; exit 1; }; done
    [ ! -e /srv/app/tests ] || { echo "tests found"; exit 1; }
    [ ! -e /tmp/ca.pem ] || { echo "build CA found"; exit 1; }
    echo "ok"'
if docker history --no-trunc "$IMAGE" | grep -q "BEGIN CERTIFICATE"; then
    echo "the build CA is in the image history" >&2; exit 1
fi

step "migrate: a one-shot command, against a fresh database"
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
docker run --rm --network host -e DATABASE_URL="$DB_URL" "$IMAGE" migrate >"$WORK/migrate.log" 2>&1 ||
    { cat "$WORK/migrate.log" >&2; exit 1; }
all_json "$WORK/migrate.log" "migrate"

step "serve on 127.0.0.1:$PORT"
# No WEB_CONCURRENCY: the default is 2 processes per CPU the container may use (--cpus 1).
docker run -d --name user-api-check --network host -e PORT="$PORT" -e HOST=127.0.0.1 \
    -e GRACEFUL_TIMEOUT=20 -e DATABASE_URL="$DB_URL" --cpus 1 \
    --stop-timeout 30 "$IMAGE" >/dev/null
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do curl -fs "$base/healthz" >/dev/null && break; sleep 0.5; done
processes=$(docker exec user-api-check python3 -c \
    "from app.config import Settings; print(Settings().WEB_CONCURRENCY)")
[ "$processes" = 2 ] || { echo "--cpus 1 should default to 2 server processes, not $processes" >&2; exit 1; }
curl -fsS "$base/healthz"; echo
curl -fsS "$base/readyz"; echo
uid=$(docker exec user-api-check id -u)
[ "$uid" != 0 ] || { echo "the server runs as root" >&2; exit 1; }
users=$(docker top user-api-check -o pid,user | awk 'NR > 1 {print $2}' | sort -u | tr '\n' ' ')
echo "server uid $uid; its processes run as: $users"
case " $users " in *" root "*|*" 0 "*) echo "a server process runs as root" >&2; exit 1;; esac

step "the users flow through the published port"
key=$(docker run --rm --network host -e DATABASE_URL="$DB_URL" "$IMAGE" \
    api-keys create container-check --scope users:read --scope users:write 2>/dev/null)
auth=(-H "Authorization: Bearer $key")
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/users")
[ "$code" = 401 ] || { echo "no key: expected 401, got $code" >&2; exit 1; }
created=$(curl -fsS "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"username": "davidchen", "email": "david@example.com"}' "$base/users")
id=$(printf '%s' "$created" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
curl -fsS "${auth[@]}" "$base/users/$id" >/dev/null
curl -fsS "${auth[@]}" -X PUT -H 'Content-Type: application/json' \
    -d '{"email": "david.chen.updated@example.com"}' "$base/users/$id" | grep -q updated
code=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" -X DELETE "$base/users/$id")
[ "$code" = 204 ] || { echo "DELETE: expected 204, got $code" >&2; exit 1; }
echo "201, 200, 200, 204: ok"

step "users import and export through the CLI: standard input, standard output"
printf 'username,email\nbulk1,bulk1@example.com\nbulk2,bulk2@example.com\n' |
    docker run --rm -i --network host -e DATABASE_URL="$DB_URL" "$IMAGE" \
        users import --format csv -
docker run --rm --network host -e DATABASE_URL="$DB_URL" "$IMAGE" users export - \
    >"$WORK/export.ndjson"
printf '%s\n' '{"username": "bulk1", "email": "bulk1@example.com"}' \
    '{"username": "bulk2", "email": "bulk2@example.com"}' >"$WORK/expected.ndjson"
cmp -s "$WORK/expected.ndjson" "$WORK/export.ndjson" ||
    { echo "the export is not the imported rows:" >&2; cat "$WORK/export.ndjson" >&2; exit 1; }
echo "ok"

step "a password reset: the server queues its mail (the worker below sends it)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"email": "bulk1@example.com"}' "$base/auth/password-reset")
[ "$code" = 202 ] || { echo "POST /auth/password-reset: expected 202, got $code" >&2; exit 1; }
echo "202: ok"

step "docker stop lets an in-flight request finish"
# Hold a lock so that one POST stays in flight (less than DB_LOCK_TIMEOUT), stop the
# container, then release the lock.
psql "$DB_URL" -q -o /dev/null <<'SQL' &
BEGIN;
LOCK TABLE user_account IN EXCLUSIVE MODE;
SELECT pg_sleep(1.5);  -- under the 2 s lock_timeout: the POST waits, then succeeds
COMMIT;
SQL
lock_pid=$!
sleep 0.5
curl -s -o "$WORK/inflight.out" -w '%{http_code}' "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"username": "inflight", "email": "inflight@example.com"}' "$base/users" >"$WORK/inflight.code" &
curl_pid=$!
sleep 0.5
started=$(date +%s)
docker stop user-api-check >/dev/null
stopped=$(( $(date +%s) - started ))
wait "$curl_pid"; wait "$lock_pid"
status=$(docker inspect user-api-check --format '{{.State.ExitCode}}')
printf 'in-flight POST answered %s; container stopped in %ss with exit code %s\n' \
    "$(cat "$WORK/inflight.code")" "$stopped" "$status"
[ "$(cat "$WORK/inflight.code")" = 201 ] || { echo "the in-flight request was cut" >&2; exit 1; }
[ "$status" = 0 ] || { docker logs user-api-check | tail -n 20; exit 1; }
[ "$stopped" -le 20 ] || { echo "stop took longer than the graceful timeout" >&2; exit 1; }

step "the server's log (docker logs): one JSON object a line"
docker logs user-api-check >"$WORK/server.log" 2>&1
all_json "$WORK/server.log" "docker logs"

step "the worker role: it seals the flow's change events, sends its mail to the image's sink, and stops on docker stop"
# The sink as compose.yaml runs it: the image, python3 -m app.mailsink.
docker run -d --name user-api-mailsink --network host "$IMAGE" python3 -m app.mailsink \
    --host 127.0.0.1 --smtp-port "$SINK_SMTP_PORT" --http-port "$SINK_HTTP_PORT" >/dev/null
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$SINK_HTTP_PORT/healthz" >/dev/null && break; sleep 0.5; done
# Its probes on the image's PORT, which the image's HEALTHCHECK asks.
docker run -d --name user-api-worker --network host -e PORT="$WORKER_PORT" -e HOST=127.0.0.1 \
    -e WORKER_INTERVAL=0.5 -e DATABASE_URL="$DB_URL" \
    -e SMTP_URL="smtp://127.0.0.1:$SINK_SMTP_PORT" -e PUBLIC_URL=https://users.example.com \
    --stop-timeout 10 "$IMAGE" worker >/dev/null
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$WORKER_PORT/healthz" >/dev/null && break; sleep 0.5; done
curl -fsS "http://127.0.0.1:$WORKER_PORT/healthz"; echo
unsealed=unknown
for _ in $(seq 1 40); do
    unsealed=$(psql "$DB_URL" -XAtc "SELECT count(*) FROM audit_event WHERE seq IS NULL")
    [ "$unsealed" = 0 ] && break
    sleep 0.25
done
[ "$unsealed" = 0 ] || { echo "the worker left $unsealed events unsealed" >&2; docker logs user-api-worker >&2; exit 1; }
docker run --rm --network host -e DATABASE_URL="$DB_URL" "$IMAGE" audit verify
mail=""
for _ in $(seq 1 40); do
    mail=$(curl -fsS "http://127.0.0.1:$SINK_HTTP_PORT/messages")
    [ "$mail" != "[]" ] && break
    sleep 0.25
done
printf '%s' "$mail" | python3 -c '
import json, sys
(message,) = json.load(sys.stdin)
assert message["rcpt_to"] == ["bulk1@example.com"], message["rcpt_to"]
assert "https://users.example.com/password-reset?token=" in message["text"], message["text"]
subject = message["subject"]
print(f"the sink holds the reset mail to bulk1@example.com ({subject!r}), its link on PUBLIC_URL")' ||
    { echo "the worker did not send the reset mail to the sink: $mail" >&2; docker logs user-api-worker >&2; exit 1; }
docker rm -f user-api-mailsink >/dev/null
docker stop user-api-worker >/dev/null
status=$(docker inspect user-api-worker --format '{{.State.ExitCode}}')
docker logs user-api-worker >"$WORK/worker.log" 2>&1
docker rm user-api-worker >/dev/null
[ "$status" = 0 ] || { cat "$WORK/worker.log" >&2; exit 1; }
all_json "$WORK/worker.log" "the worker's log"
echo "every event sealed and verified; stopped with exit code 0"
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"

step "the scaled profile's image (Debian's PostgreSQL 15, PgBouncer, HAProxy, Redis)"
DOCKER_BUILDKIT=0 docker build --quiet --network host --build-arg BASE_IMAGE="$BASE" \
    -f docker/cluster/Dockerfile -t "$CLUSTER_IMAGE" . >/dev/null
size=$(docker image inspect "$CLUSTER_IMAGE" --format '{{.Size}}')
printf 'image %s: %s MB\n' "$CLUSTER_IMAGE" "$((size / 1024 / 1024))"

step "the primary's first start, SIGKILLed halfway, is done again at the next"
docker rm -f user-api-first-start >/dev/null 2>&1 || true
docker volume rm user-api-first-start >/dev/null 2>&1 || true
docker run -d --name user-api-first-start --network none --user postgres \
    -e APP_PASSWORD=check -e REPLICATION_PASSWORD=check \
    -v user-api-first-start:/var/lib/postgresql "$CLUSTER_IMAGE" primary >/dev/null
in_data() { docker exec user-api-first-start bash -c "$1" 2>/dev/null; }
for _ in $(seq 1 100); do in_data 'test -d "$PGDATA.init"' && break; sleep 0.05; done
docker kill user-api-first-start >/dev/null
docker run --rm --user postgres -v user-api-first-start:/var/lib/postgresql --entrypoint bash \
    "$CLUSTER_IMAGE" -c 'test -d "$PGDATA.init" && test ! -e "$PGDATA"' ||
    { echo "the first start was not cut short before its folder was in place" >&2; exit 1; }
docker start user-api-first-start >/dev/null
for _ in $(seq 1 120); do in_data 'pg_isready -q --host=127.0.0.1' && break; sleep 0.25; done
roles=$(in_data "psql -XAtd users -c \"SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname IN ('app', 'replicator')\"")
[ "$roles" = "app,replicator" ] ||
    { echo "after a cut first start: roles '$roles'" >&2; docker logs user-api-first-start >&2; exit 1; }
docker rm -f user-api-first-start >/dev/null
docker volume rm user-api-first-start >/dev/null
echo "killed halfway, started again: the users database and its roles are there"

step "${scaled[*]} up haproxy worker-1 worker-2: HAProxy on 127.0.0.1:$SCALED_PORT"
"${scaled[@]}" down -v >/dev/null 2>&1 || true
SCALED_UP=1
started=$(date +%s)
"${scaled[@]}" up -d --no-build haproxy worker-1 worker-2
"${scaled[@]}" ps
printf 'up in %ss\n' "$(( $(date +%s) - started ))"

step "the scaled profile through HAProxy: flow, race, pool, SIGKILL, rolling release, tokens, revocation"
if ! .venv/bin/python -m tests.cluster.compose_check --url "http://127.0.0.1:$SCALED_PORT" \
        --pool-size "$POOL_SIZE" --compose "${scaled[*]}"; then
    "${scaled[@]}" logs --tail=30 >&2 || true
    exit 1
fi

step "the scaled profile's two workers sealed every change event the checks made"
unsealed=unknown
for _ in $(seq 1 60); do
    unsealed=$("${scaled[@]}" exec -T -u postgres primary \
        psql -d users -XAtc "SELECT count(*) FROM audit_event WHERE seq IS NULL" 2>/dev/null || true)
    [ "$unsealed" = 0 ] && break
    sleep 0.5
done
[ "$unsealed" = 0 ] ||
    { echo "the workers left $unsealed events unsealed" >&2; "${scaled[@]}" logs worker-1 worker-2 >&2; exit 1; }
events=$("${scaled[@]}" exec -T -u postgres primary psql -d users -XAtc "SELECT count(*) FROM audit_event")
echo "$events events, all sealed; both workers healthy:"
for worker in worker-1 worker-2; do
    "${scaled[@]}" exec -T "$worker" python3 -c \
        'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:8000/healthz").read().decode())'
done

step "the scaled profile stops on its own signals: the primary first, its sessions open"
# Exit 137 is docker's SIGKILL after the grace time: a stop signal that was not enough.
started=$(date +%s)
"${scaled[@]}" stop -t 20 primary >/dev/null 2>&1
printf 'primary stopped in %ss\n' "$(( $(date +%s) - started ))"
started=$(date +%s)
"${scaled[@]}" stop -t 20 >/dev/null 2>&1
printf 'the rest stopped in %ss\n' "$(( $(date +%s) - started ))"
killed=0
for container in $(docker ps -aq --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"); do
    read -r name code < <(docker inspect --format '{{.Name}} {{.State.ExitCode}}' "$container")
    printf '%s exited %s\n' "${name#/}" "$code"
    [ "$code" != 137 ] || killed=1
done
[ "$killed" = 0 ] || { echo "a container needed docker's SIGKILL to stop" >&2; exit 1; }
"${scaled[@]}" down -v >/dev/null 2>&1
SCALED_UP=""
step "container check passed"

#!/bin/sh
# serve (default): the production server (granian, app/server/serve.py); worker: the worker
# (app/worker), its /healthz on PORT as the server's; migrate: apply migrations once per
# release; api-keys ..., users import|export ... and audit verify|seal|prune: the CLI.
set -eu
command="${1:-serve}"
case "$command" in
    serve)
        shift || true
        exec python3 -m app.server "$@"
        ;;
    worker)
        shift || true
        # A container of its own: its probes on the image's port, which HEALTHCHECK asks.
        export WORKER_PORT="${WORKER_PORT:-${PORT:-8000}}"
        exec python3 -m app.worker "$@"
        ;;
    migrate)
        shift
        cd /srv/app
        exec alembic upgrade head "$@"
        ;;
    api-keys|users|audit)
        exec flask --app app "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

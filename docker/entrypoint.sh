#!/bin/sh
# serve (default): the production server (granian, app/server/serve.py); migrate: apply migrations once per release; api-keys ... and
# users import|export ...: the CLI.
set -eu
command="${1:-serve}"
case "$command" in
    serve)
        shift || true
        exec python3 -m app.server "$@"
        ;;
    migrate)
        shift
        cd /srv/app
        exec alembic upgrade head "$@"
        ;;
    api-keys|users)
        exec flask --app app "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

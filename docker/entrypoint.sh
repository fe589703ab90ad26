#!/bin/sh
# serve (default): gunicorn; migrate: apply migrations once per release; api-keys ... and
# users import|export ...: the CLI.
set -eu
command="${1:-serve}"
case "$command" in
    serve)
        shift || true
        exec gunicorn --config /srv/app/gunicorn.conf.py "$@" "app:create_app()"
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

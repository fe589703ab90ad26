# The user-management API: granian serving app.server, migrations a command of their own.
# Builds with the classic builder. BASE_IMAGE may be any Debian-like image with python3 (3.11+)
# and its venv module; scripts/container-check.sh makes one locally where no registry is reached.
# Pinned by tag only, not yet by digest: no registry, and no local copy of the image, was there
# to read the digest from, and one copied from elsewhere could not be checked. To pin it, where
# a registry answers, take the multi-arch index's digest (not one platform's manifest):
#   docker buildx imagetools inspect python:3.11-slim-bookworm --format '{{json .Manifest.Digest}}'
#   (or: crane digest python:3.11-slim-bookworm; or the sha256 of
#   skopeo inspect --raw docker://docker.io/library/python:3.11-slim-bookworm)
# and set the default to python:3.11-slim-bookworm@sha256:<digest>. --build-arg BASE_IMAGE still
# overrides it, as scripts/container-check.sh does with its own base.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
# A proxy's CA (PEM text), for builds behind a TLS-intercepting proxy. Used in this stage
# only: the runtime stage below neither sees nor keeps it.
ARG EXTRA_CA_CERT=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
# Dependencies first, in a layer of their own: a source change does not reinstall them.
# The lock (requirements/app.txt, scripts/lock.sh writes it), not pyproject.toml's ranges: two
# builds a week apart install the same versions, and every file must match a hash the lock
# names. Wheels only (--only-binary): no compiler is needed here, nor shipped below.
COPY requirements/app.txt /src/requirements/app.txt
RUN set -eu; \
    python3 -m venv /opt/venv; \
    if [ -n "$EXTRA_CA_CERT" ]; then \
        cat /etc/ssl/certs/ca-certificates.crt > /tmp/ca.pem 2>/dev/null || true; \
        printf '%s\n' "$EXTRA_CA_CERT" >> /tmp/ca.pem; \
        export PIP_CERT=/tmp/ca.pem; \
    fi; \
    /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /src/requirements/app.txt; \
    rm -f /tmp/ca.pem

FROM ${BASE_IMAGE} AS runtime
# INSTANCE_PATH: the default for a package at /srv/app/app anyway (app/config/paths.py), spelled
# out because it is the folder to mount for an embedded database. LOG_FORMAT: every line
# the server, the app and migrate print is one JSON object, for a log shipper. RATE_LIMIT:
# the production budget even on the embedded database (off there by default, for a local
# run), since a container may be reached from anywhere.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/srv/app \
    INSTANCE_PATH=/srv/app/instance \
    LOG_FORMAT=json \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    RATE_LIMIT=1200/minute
RUN set -eu; \
    groupadd --system --gid 10001 app; \
    useradd --system --uid 10001 --gid app --home-dir /srv/app --no-create-home app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/app
# The migrations are inside the package (app/migrations); alembic.ini names them there.
COPY app ./app
COPY alembic.ini ./
COPY docker/entrypoint.sh /usr/local/bin/entrypoint
RUN set -eu; \
    chmod 0755 /usr/local/bin/entrypoint; \
    mkdir -p /srv/app/instance; \
    chown app:app /srv/app/instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
ENTRYPOINT ["/usr/local/bin/entrypoint"]
CMD ["serve"]

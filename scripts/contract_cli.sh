#!/usr/bin/env bash
# Contract run of the schemathesis CLI against a running server, bounded by example count.
#
#   API_KEY=umk_... scripts/contract_cli.sh http://127.0.0.1:8000 [MAX_EXAMPLES] [REPORT_DIR]
#
# API_KEY: a key with every scope. Runs every phase (examples, coverage, fuzzing, stateful)
# with every check; positive_data_acceptance is replaced by the variant in
# scripts/schemathesis_hooks.py (opaque cursors), which also makes emails pydantic accepts.
# Exit status: 0 when nothing failed. tests/test_contract.py runs it against gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."

base_url="${1:?usage: API_KEY=... $0 BASE_URL [MAX_EXAMPLES] [REPORT_DIR]}"
max_examples="${2:-10}"
report_dir="${3:-schemathesis-report}"
: "${API_KEY:?set API_KEY to a key with every scope}"
schemathesis="${SCHEMATHESIS:-.venv/bin/schemathesis}"

export SCHEMATHESIS_HOOKS="scripts/schemathesis_hooks.py"
# The hooks import the app's own Email type.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

exec "$schemathesis" --config-file scripts/schemathesis.toml run "${base_url%/}/openapi.json" \
    --header "Authorization: Bearer ${API_KEY}" \
    --phases examples,coverage,fuzzing,stateful \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "$max_examples" \
    --generation-database none \
    --workers 1 \
    --request-timeout 30 \
    --report junit \
    --report-dir "$report_dir" \
    --no-color

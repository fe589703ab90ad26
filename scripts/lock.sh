#!/usr/bin/env bash
# The lock files, compiled from pyproject.toml's ranges by pip-compile, every pin with the
# sha256 of each of its files on PyPI:
#   requirements/app.txt  the runtime dependencies: the image and the README's run command
#   requirements/dev.txt  those and the extras mysql and dev, at app.txt's version for every
#                         package the two share: CI and the README's test command
# pyproject.toml says which versions the app supports; the lock says which are installed.
# requirements/every-3.11.in adds what some CPython 3.11 patch releases need and the one
# compiling may not (it says which, and why).
#
# When: after changing a dependency in pyproject.toml or requirements/every-3.11.in
# (tests/test_lock.py fails until the lock agrees), and whenever newer releases are wanted.
# With .venv made by the README's test command (pip-tools is a dev dependency), PyPI reachable:
#   scripts/lock.sh                          follow pyproject.toml; every other pin stays
#   scripts/lock.sh --upgrade                the newest releases pyproject.toml's ranges allow
#   scripts/lock.sh --upgrade-package NAME   that package only (repeatable; NAME==1.2.3 works)
#   scripts/lock.sh --check                  change nothing; exit 1, with the difference, if
#                                            the committed lock is not what this would write
#   scripts/lock.sh --output-dir DIR         write DIR/app.txt and DIR/dev.txt instead (seeded
#                                            from requirements/ when DIR has none)
# Then install it (the README's test command), run the suite, and commit pyproject.toml and
# requirements/ together. Other options go to pip-compile as they are. Should dev.txt fail to
# resolve because a dev tool wants a newer release of a package app.txt pins, name that package
# with --upgrade-package: app.txt is compiled first, and dev.txt keeps to its pins.
#
# Run it on Linux x86_64 under CPython 3.11, which the image and CI are: pip-compile evaluates
# environment markers for the interpreter that runs it, so another one may pin another set.
# This machine's pip configuration (pip.conf, PIP_* variables: local indexes, find-links,
# constraints) is ignored, so the lock describes PyPI's files, which is what a fresh machine
# installs; only settings that change how PyPI is reached, not what it offers, are kept.
set -euo pipefail
caller="$PWD"
cd "$(dirname "$0")/.."

die() { printf 'scripts/lock.sh: %s\n' "$*" >&2; exit 1; }

python="${LOCK_PYTHON:-.venv/bin/python}"
out=""
check=""
passed=()
upgrade_packages=()
while [ $# -gt 0 ]; do
    case "$1" in
        --check) check=1 ;;
        --output-dir) [ $# -ge 2 ] || die "--output-dir needs a folder"; out="$2"; shift ;;
        --output-dir=*) out="${1#*=}" ;;
        -P | --upgrade-package)
            [ $# -ge 2 ] || die "$1 needs a package"; upgrade_packages+=("$2"); shift ;;
        --upgrade-package=*) upgrade_packages+=("${1#*=}") ;;
        -P?*) upgrade_packages+=("${1#-P}") ;;
        -h | --help) sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"; exit 0 ;;
        *) passed+=("$1") ;;
    esac
    shift
done

# A folder named on the command line is the caller's, not the repository's.
case "$out" in "") out=requirements ;; /*) ;; *) out="$caller/$out" ;; esac

[ -x "$python" ] || die "no $python: make it with the README's test command first"
"$python" -c 'import piptools' 2>/dev/null ||
    die "$python has no pip-tools: install requirements/dev.txt (the README's test command)"
"$python" - <<'EOF' || exit 1
import platform
import sys

found = (sys.implementation.name, sys.version_info[:2], sys.platform, platform.machine())
if found != ("cpython", (3, 11), "linux", "x86_64"):
    sys.exit(f"scripts/lock.sh: pins are for CPython 3.11 on Linux x86_64, not {found}")
EOF

cert="${PIP_CERT:-${SSL_CERT_FILE:-}}"
for var in $(compgen -e); do
    case "$var" in
        PIP_CERT | PIP_CLIENT_CERT | PIP_PROXY | PIP_DEFAULT_TIMEOUT | PIP_RETRIES) ;;
        PIP_CACHE_DIR | PIP_TOOLS_CACHE_DIR | PIP_DISABLE_PIP_VERSION_CHECK) ;;
        PIP_*) unset "$var" ;;
    esac
done
export PIP_CONFIG_FILE=/dev/null
# Without the config file, a TLS-intercepting proxy's CA is known only from the environment.
if [ -n "$cert" ]; then export PIP_CERT="$cert"; fi
# The header of each file names this script as the way to update it.
export CUSTOM_COMPILE_COMMAND=scripts/lock.sh

if [ -n "$check" ]; then out="$(mktemp -d)"; fi
mkdir -p "$out"
# pip-compile keeps the pins of the file it writes over: seed it with the committed lock.
for name in app.txt dev.txt; do
    if [ ! -e "$out/$name" ] && [ -e "requirements/$name" ]; then
        cp "requirements/$name" "$out/$name"
    fi
done

errors="$(mktemp)"
trap 'rm -f "$errors"; [ -z "$check" ] || rm -rf "$out"' EXIT
compile() {  # compile the sources into $1, with pip-compile's options after it
    local file="$1"
    shift
    # --strip-extras: dev.txt uses app.txt as a constraints file, and pip refuses extras there.
    # --allow-unsafe: pip-tools needs pip and setuptools, which hash mode must see pinned.
    if ! "$python" -m piptools compile --quiet --no-config --generate-hashes --allow-unsafe \
        --strip-extras --index-url https://pypi.org/simple --no-emit-index-url \
        --no-emit-find-links --output-file "$file" "$@" ${passed[@]+"${passed[@]}"} \
        pyproject.toml requirements/every-3.11.in 2>"$errors"; then
        cat "$errors" >&2
        die "pip-compile failed for $file"
    fi
    # The dev extra names app[mysql]; pip-compile writes that self-reference as the checkout's
    # own path (app @ file:///...), which no other clone has and which pip cannot hash: the
    # project is installed on its own (pip install --no-deps -e .), so it leaves the lock, with
    # the warning pip-compile put above it (pip-tools issue #2110).
    grep -v 'may be rejected by pip install' "$errors" >&2 || true
    awk '
        /^# WARNING: pip install will require the following package to be hashed\.$/ { next }
        /^# Consider using a hashable URL like / { next }
        /^[A-Za-z0-9._-]+(\[[^]]*\])? @ file:/ { dropping = 1; next }
        dropping && /^    #/ { next }
        { dropping = 0; print }
    ' "$file" >"$file.tmp"
    mv "$file.tmp" "$file"
    if grep -n '^[^ #].* @ \|^-e ' "$file" >&2; then
        die "$file holds a requirement that is no pin"
    fi
}

# pip-compile adds a package named by --upgrade-package to its output even where nothing
# requires it: app.txt is offered only those it pins already (a dependency new to it is
# resolved afresh anyway), and dev.txt all of them.
app_upgrades=()
dev_upgrades=()
for spec in ${upgrade_packages[@]+"${upgrade_packages[@]}"}; do
    dev_upgrades+=(--upgrade-package "$spec")
    name="$(printf '%s' "$spec" | sed -E 's/[]=<>!~;[ @].*//; s/[-_.]+/-/g' |
        tr '[:upper:]' '[:lower:]')"
    if grep -q "^$name==" "$out/app.txt" 2>/dev/null; then
        app_upgrades+=(--upgrade-package "$spec")
    fi
done

compile "$out/app.txt" ${app_upgrades[@]+"${app_upgrades[@]}"}
compile "$out/dev.txt" --extra mysql --extra dev --constraint "$out/app.txt" \
    ${dev_upgrades[@]+"${dev_upgrades[@]}"}

if [ -n "$check" ]; then
    stale=""
    for name in app.txt dev.txt; do
        # The annotations name the file's own folder; the pins and hashes are what counts.
        if ! diff -u --label "requirements/$name" --label "scripts/lock.sh would write" \
            <(grep -v '^ *#' "requirements/$name") <(grep -v '^ *#' "$out/$name"); then
            stale=1
        fi
    done
    [ -z "$stale" ] || die "the lock is not what its sources say: run scripts/lock.sh"
    echo "requirements/app.txt and requirements/dev.txt are up to date with their sources"
fi

"""Generate the typed clients, clients/python and clients/typescript, from the served
OpenAPI document.

Usage (from the repository root): .venv/bin/python scripts/generate_client.py

The document is the one GET /openapi.json serves, built in-process from an app on a
throwaway embedded SQLite folder (nothing is migrated, no key is made).
- Python: openapi-python-client with --fail-on-warning, less the few operations listed in
  OMITTED_OPERATIONS (with why), each update body's variants folded into one model.
- TypeScript: openapi-typescript (the version clients/typescript/package-lock.json pins,
  installed there by `npm ci`) writes src/schema.ts; openapi-fetch makes the calls. The
  package's version (package.json and its lock) is set to the document's info.version, as
  the Python client's is.
tests/test_client.py and tests/test_typescript_client.py regenerate into a temporary folder
and fail when the committed clients differ; tests/test_client_packages.py installs both as
packages, outside the repository, and runs docs/how-to/clients.md's examples with them.
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from app import create_app
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CLIENT_DIR = ROOT / "clients" / "python"
TS_DIR = ROOT / "clients" / "typescript"
# The generated types, under TS_DIR; the rest of the package is written by hand. A .ts
# file, not .d.ts: tsc copies no .d.ts source into dist/, so the package's index.d.ts would
# import declarations it does not ship; from a .ts it emits schema.d.ts beside index.d.ts.
TS_SCHEMA = Path("src") / "schema.ts"
# The files that carry the package's version: package.json and, twice, its lock.
TS_MANIFESTS = ("package.json", "package-lock.json")
CONFIG = ROOT / "clients" / "openapi-python-client.yaml"
# setup.py metadata: setuptools, like the service itself, if anyone installs the client.
META = "setup"
# The committed client is this version's output; another version writes other code.
GENERATOR_VERSION = "0.29.1"
# Operations left out of the client, each with the reason. The generator only writes request
# bodies that are JSON, forms, multipart or one octet-stream; it warns on anything else, and
# --fail-on-warning makes that an error. A listed operation that is gone is an error too.
OMITTED_OPERATIONS: dict[tuple[str, str], str] = {
    ("post", "/users/import"): "streamed NDJSON or CSV upload: no raw text body in the generator",
    ("get", "/audit-events/export"): "NDJSON stream: the generator reads no NDJSON response",
}


def served_document() -> bytes:
    """Return the bytes GET /openapi.json serves, from an app built in this process."""
    with tempfile.TemporaryDirectory(prefix="openapi-doc-") as instance:
        # Explicit values beat the environment and .env: the embedded default, untouched.
        settings = Settings(DATABASE_URL=None, INSTANCE_PATH=Path(instance), AUTO_MIGRATE=False)
        app = create_app(settings)
        response = app.test_client().get("/openapi.json")
        if response.status_code != 200:  # noqa: PLR2004
            msg = f"GET /openapi.json answered {response.status_code}"
            raise RuntimeError(msg)
        return response.get_data()


def _one_update_model(schema: dict[str, Any]) -> None:
    # An update is documented as "one of these members required" variants (app.schemas
    # .common); the generator would write a class per variant and a union nobody wants to
    # build. One model with every member optional is what Python can say; the server still
    # answers an empty update with a 422.
    variants = schema.get("anyOf")
    if schema.get("minProperties") and variants and all("properties" in v for v in variants):
        del schema["anyOf"]
        schema["properties"] = variants[0]["properties"]
        schema["additionalProperties"] = False


def client_document(served: bytes) -> bytes:
    """Return the served document as the Python generator takes it: without the operations
    the client leaves out, and with one model per update body."""
    document = json.loads(served)
    for schema in document["components"]["schemas"].values():
        _one_update_model(schema)
    paths = document["paths"]
    for method, path in OMITTED_OPERATIONS:
        if method not in paths.get(path, {}):
            msg = f"{method.upper()} {path} is not in the document: update OMITTED_OPERATIONS"
            raise RuntimeError(msg)
        del paths[path][method]
        if not set(paths[path]) & {"get", "put", "post", "delete", "patch", "head", "options"}:
            del paths[path]
    return json.dumps(document, indent=2, sort_keys=True).encode()


def generate(output: Path) -> None:
    """Write the client for the served document to ``output``, replacing what is there."""
    try:
        installed = importlib.metadata.version("openapi-python-client")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != GENERATOR_VERSION:
        msg = (
            f"openapi-python-client=={GENERATOR_VERSION} is needed (installed: {installed}); "
            "to move to another version, change GENERATOR_VERSION and regenerate"
        )
        raise RuntimeError(msg)
    # The generator's post-hooks run `ruff`: use this environment's, and leave no cache.
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "RUFF_NO_CACHE": "true",
    }
    with tempfile.TemporaryDirectory(prefix="openapi-client-") as work:
        document = Path(work) / "openapi.json"
        document.write_bytes(client_document(served_document()))
        command = [
            sys.executable, "-m", "openapi_python_client", "generate",
            "--path", str(document),
            "--output-path", str(output),
            "--config", str(CONFIG),
            "--meta", META,
            "--overwrite",
            "--fail-on-warning",
        ]  # fmt: skip
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            command, env=env, capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        msg = (
            f"openapi-python-client failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
        raise RuntimeError(msg)


def npm_ci() -> None:
    """Install clients/typescript's locked packages, unless they are already installed."""
    installed = TS_DIR / "node_modules" / ".package-lock.json"
    lock = TS_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        msg = "npm is needed for the TypeScript client (Node 18+; Debian: apt-get install npm)"
        raise RuntimeError(msg)
    _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TS_DIR)


def generate_typescript(output: Path) -> None:
    """Write the TypeScript client's generated types for the served document to ``output``."""
    npm_ci()
    with tempfile.TemporaryDirectory(prefix="openapi-ts-") as work:
        document = Path(work) / "openapi.json"
        document.write_bytes(served_document())
        generator = TS_DIR / "node_modules" / ".bin" / "openapi-typescript"
        _run([str(generator), str(document), "--output", str(output)], cwd=TS_DIR)


def document_version(served: bytes) -> str:
    """The API's version, as the document's info.version says it."""
    version: str = json.loads(served)["info"]["version"]
    return version


def typescript_versions() -> dict[str, str]:
    """Every version the TypeScript package states, by where it states it."""
    package = json.loads((TS_DIR / "package.json").read_text())
    lock = json.loads((TS_DIR / "package-lock.json").read_text())
    return {
        "package.json": package["version"],
        "package-lock.json": lock["version"],
        'package-lock.json packages[""]': lock["packages"][""]["version"],
    }


def set_typescript_version(version: str) -> None:
    """Make the TypeScript package's version ``version``; files already right are left
    untouched (a newer lock makes npm_ci install again)."""
    for name in TS_MANIFESTS:
        path = TS_DIR / name
        manifest = json.loads(path.read_text())
        manifest["version"] = version
        if name == "package-lock.json":
            manifest["packages"][""]["version"] = version
        # npm's own layout (JSON.stringify with two spaces, a final newline): no diff noise.
        text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        if text != path.read_text():
            path.write_text(text)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        command, cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        msg = f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        raise RuntimeError(msg)


def main() -> int:
    """Regenerate clients/python and clients/typescript."""
    generate(CLIENT_DIR)
    generate_typescript(TS_DIR / TS_SCHEMA)
    set_typescript_version(document_version(served_document()))
    sys.stderr.write(f"Generated {CLIENT_DIR.relative_to(ROOT)} and {TS_DIR.relative_to(ROOT)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

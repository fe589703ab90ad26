"""The typed clients as a consumer meets them (docs/how-to/clients.md): each installed as a
package in a fresh folder outside the repository, the page's example type-checked strictly
there, a wrong use refused, and the example run against the shipped server, problems
included.

The other client tests build and import the clients inside the repository, where the
folders' own files and node_modules answer for what a package leaves out; these go through
`npm pack` and `npm install <tarball>`, and `pip install` into a new virtualenv. They need
Node and npm (missing, the TypeScript half skips, except under CI=true) and the package
registries, or warm npm and pip caches.
"""

import json
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest
from flask import Flask

from scripts.generate_client import CLIENT_DIR, ROOT, TS_DIR, npm_ci
from tests.factories import make_user, set_password
from tests.helpers import IN_CI, LiveServer

pytestmark = pytest.mark.live

DOC = ROOT / "docs" / "how-to" / "clients.md"
TIMEOUT = 60
# A cold npm cache fetches TypeScript (about 20 MB) and a cold pip cache mypy.
INSTALL_TIMEOUT = 240
UNKNOWN_KEY = "umk_unknown"
SIGN_IN_PASSWORD = "correct horse battery staple"
# The consumer's compiler: the major the package is built and checked with (its lock pins
# 5.9); openapi-typescript crashes under the newest TypeScript.
TYPESCRIPT = "typescript@5"
NODE_TYPES = "@types/node@20"
# Uses that type-check only where the types are not `any`: a path parameter of the wrong
# type, a member read as the wrong type.
WRONG_TS = """\
import { createUserManagementClient } from "user-management-client";

const api = createUserManagementClient("http://127.0.0.1:9", "umk_unused");
const read = await api.GET("/users/{user_id}", { params: { path: { user_id: "7" } } });
const id: string | undefined = read.data?.id;
"""
WRONG_PY = """\
from user_management_client import AuthenticatedClient
from user_management_client.api.users import get_user
from user_management_client.models import UserCreate

client = AuthenticatedClient(base_url="http://127.0.0.1:9", token="umk_unused")
get_user.sync("7", client=client)
UserCreate(username="ada")
"""
# Inside the fresh virtualenv: the installed distributions that the client and mypy do not
# require, directly or through others (pip and setuptools come with every venv).
STRAYS = """\
import importlib.metadata as metadata
import re


def name(text):
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", text).group()).lower()


installed = {name(dist.metadata["Name"]): dist for dist in metadata.distributions()}
needed, todo = set(), ["user-management-client", "mypy"]
while todo:
    current = todo.pop()
    if current in needed or current not in installed:
        continue
    needed.add(current)
    for requirement in installed[current].requires or []:
        if "extra ==" not in requirement:
            todo.append(name(requirement))
print(sorted(set(installed) - needed - {"pip", "setuptools"}))
"""

Run = Callable[[dict[str, str]], "subprocess.CompletedProcess[str]"]

# The installed packages are fixtures of the session, not of this module: pytest groups the
# tests by backend, which splits this module's tests and would build a module's twice.


def doc_example(title: str) -> str:
    """The code block of docs/how-to/clients.md titled ``title``, as the page shows it."""
    pattern = rf'^```\w+ title="{re.escape(title)}"\n(.*?)^```$'
    match = re.search(pattern, DOC.read_text(), re.DOTALL | re.MULTILINE)
    assert match, f"docs/how-to/clients.md has no code block titled {title!r}"
    return match.group(1)


def run(
    command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = TIMEOUT
) -> "subprocess.CompletedProcess[str]":
    """Run a command to its end (killed, by its pid, past ``timeout``)."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def ok(result: "subprocess.CompletedProcess[str]") -> "subprocess.CompletedProcess[str]":
    """Fail with the command's output unless it succeeded."""
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result


def check_runs(run_example: Run, server: LiveServer, key: str) -> None:
    """The page's example against the server: the flow; again, the typed 409 naming the
    field; with an unknown key, the typed 401. Problems end it with one line, no trace."""
    first = run_example({"API_URL": server.url, "API_KEY": key})
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}\n{server.log()}"
    lines = first.stdout.splitlines()
    assert re.fullmatch(r"created ada \(id \d+\)", lines[0]), first.stdout
    assert lines[1:] == ["read back ada@example.com", "users: ada", "user 999999999: 404 Not Found"]

    again = run_example({"API_URL": server.url, "API_KEY": key})
    assert (again.returncode, again.stdout) == (1, ""), f"{again.stdout}\n{again.stderr}"
    taken, problem = again.stderr.splitlines()
    assert taken == "taken: username"
    assert problem.startswith("409 Conflict: "), again.stderr

    stranger = run_example({"API_URL": server.url, "API_KEY": UNKNOWN_KEY})
    assert (stranger.returncode, stranger.stdout) == (1, ""), stranger.stderr
    (refused,) = stranger.stderr.splitlines()
    assert refused.startswith("401 Unauthorized: "), stranger.stderr


def check_sign_in(run_example: Run, app: Flask, server: LiveServer) -> None:
    """The page's sign-in example as grace, with her password: signed in, /me, refreshed;
    with a wrong one, the 401 in one line."""
    grace = make_user(app, username="grace", email="grace@example.com")
    set_password(app, grace.id, SIGN_IN_PASSWORD)
    user = {"API_URL": server.url, "API_USERNAME": "grace"}

    signed_in = run_example({**user, "API_PASSWORD": SIGN_IN_PASSWORD})
    refused = run_example({**user, "API_PASSWORD": "not the password at all"})

    assert signed_in.returncode == 0, f"{signed_in.stderr}\n{server.log()}"
    assert signed_in.stdout.splitlines() == [
        "signed in: access token for 900 s",
        "me: grace <grace@example.com>",
        "refreshed: access token for 900 s",
    ]
    assert (refused.returncode, refused.stdout) == (1, ""), refused.stderr
    (problem,) = refused.stderr.splitlines()
    assert problem.startswith("401 Unauthorized: "), refused.stderr


def errors_of(output: str, pattern: str) -> list[tuple[str, ...]]:
    """The (file, line, code) of each error a type checker printed."""
    return [match.groups() for match in re.finditer(pattern, output, re.MULTILINE)]


# TypeScript


@pytest.fixture(scope="session")
def npm() -> str:
    """The npm executable, with the client's locked packages installed (to build it)."""
    found = shutil.which("npm")
    if found is None or shutil.which("node") is None:
        if IN_CI:
            pytest.fail("CI=true but node or npm is missing: .ci/run installs them")
        pytest.skip("node and npm are needed for the TypeScript client")
    npm_ci()
    return found


@pytest.fixture(scope="session")
def tarball(npm: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as `npm pack` makes it (its prepack script builds dist/)."""
    destination = tmp_path_factory.mktemp("pack")
    ok(run([npm, "pack", "--pack-destination", str(destination)], TS_DIR, timeout=120))
    (packed,) = destination.glob("*.tgz")
    return packed


@pytest.fixture(scope="session")
def ts_project(npm: str, tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new npm project outside the repository, made and filled as the page says, with
    the page's example.ts."""
    project = tmp_path_factory.mktemp("ts-consumer")
    assert not project.is_relative_to(ROOT)
    quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
    ok(run([npm, "init", "-y"], project))
    ok(run([npm, "pkg", "set", "type=module"], project))
    ok(run([npm, "install", *quiet, str(tarball)], project, timeout=INSTALL_TIMEOUT))
    dev = [npm, "install", "--save-dev", *quiet, TYPESCRIPT, NODE_TYPES]
    ok(run(dev, project, timeout=INSTALL_TIMEOUT))
    for example in ("example.ts", "sign_in.ts"):
        (project / example).write_text(doc_example(example))
    return project


def tsc(project: Path, *args: str) -> "subprocess.CompletedProcess[str]":
    """The page's compile line (npx runs this same local tsc): no tsconfig, so no
    skipLibCheck, and the package's .d.ts files are checked with the example."""
    command = [str(project / "node_modules" / ".bin" / "tsc"), "--strict", "--module", "nodenext"]
    return run([*command, "--target", "es2022", *args], project, timeout=120)


def member_text(archive: tarfile.TarFile, name: str) -> str:
    """A file of the package, from its tarball (where npm puts it under package/)."""
    member = archive.extractfile(f"package/{name}")
    assert member is not None, name
    return member.read().decode()


def test_typescript_tarball_carries_javascript_and_complete_types(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        files = {name.removeprefix("package/") for name in archive.getnames()}
        manifest = json.loads(member_text(archive, "package.json"))
        declarations = {
            name: member_text(archive, name) for name in files if name.endswith(".d.ts")
        }

    assert {"dist/index.js", "dist/index.d.ts", "dist/schema.d.ts"} <= files
    assert {name for name in files if not name.startswith("dist/")} <= {"package.json", "README.md"}
    entry = manifest["exports"]["."]
    for target in (manifest["main"], manifest["types"], entry["types"], entry["default"]):
        assert target.removeprefix("./") in files, target
    # Each relative import of a declaration file finds its declarations in the tarball.
    for name, text in declarations.items():
        for imported in re.findall(r"""from ["'](\.\.?/[^"']+)\.js["']""", text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), imported))
            assert f"{target}.d.ts" in files, f"{name} imports {imported}.js"


def test_typescript_example_type_checks_under_strict_and_a_wrong_use_does_not(
    ts_project: Path,
) -> None:
    version_line = ok(tsc(ts_project, "--version")).stdout
    assert version_line.startswith("Version 5."), version_line
    # The installed package's README shows a snippet too.
    readme = (ts_project / "node_modules" / "user-management-client" / "README.md").read_text()
    snippet = re.search(r"^```ts\n(.*?)^```$", readme, re.DOTALL | re.MULTILINE)
    assert snippet, readme
    (ts_project / "readme.ts").write_text(snippet.group(1))
    (ts_project / "wrong.ts").write_text(WRONG_TS)

    result = tsc(ts_project, "--noEmit", "example.ts", "sign_in.ts", "readme.ts", "wrong.ts")

    # Only the wrong uses fail: none in the examples, none in the package's declarations.
    found = errors_of(result.stdout, r"^(\S+)\((\d+),\d+\): error (TS\d+)")
    assert found == [("wrong.ts", "4", "TS2322"), ("wrong.ts", "5", "TS2322")], result.stdout


@pytest.mark.postgresql_only("the installed clients run against the PostgreSQL server")
def test_typescript_examples_run_against_the_live_server(
    backend: str, app: Flask, ts_project: Path, api_token: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue("live_server")
    ok(tsc(ts_project, "--outDir", "out", "example.ts", "sign_in.ts"))
    node = shutil.which("node")
    assert node is not None

    def runner(script: str) -> Run:
        def run_example(settings: dict[str, str]) -> "subprocess.CompletedProcess[str]":
            # Node 18 warns on stderr that fetch is experimental; the checks read stderr.
            env = {**os.environ, "NODE_NO_WARNINGS": "1", **settings}
            return run([node, str(Path("out") / script)], ts_project, env)

        return run_example

    check_runs(runner("example.js"), server, api_token)
    check_sign_in(runner("sign_in.js"), app, server)


# Python


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without anything that would put the repository's own client or
    virtualenv in the way of the new one."""
    leave_out = {"PYTHONPATH", "MYPYPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    return {key: value for key, value in os.environ.items() if key not in leave_out} | settings


@pytest.fixture(scope="session")
def py_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtualenv outside the repository with the client and mypy installed as the
    page says, and the page's example.py."""
    project = tmp_path_factory.mktemp("py-consumer")
    assert not project.is_relative_to(ROOT)
    # pip builds in the source folder (build/, *.egg-info): a copy keeps the repository clean.
    ignored = shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".*_cache")
    shutil.copytree(CLIENT_DIR, project / "user-management-client", ignore=ignored)
    ok(run([sys.executable, "-m", "venv", "venv"], project, clean_env()))
    # The suite's mypy version: what this repository's own checks run.
    packages = ["./user-management-client", f"mypy=={version('mypy')}"]
    install = [str(project / "venv" / "bin" / "pip"), "install", "-q", *packages]
    ok(run(install, project, clean_env(), timeout=INSTALL_TIMEOUT))
    for example in ("example.py", "sign_in.py"):
        (project / example).write_text(doc_example(example))
    return project


def test_python_client_installs_as_a_typed_package_with_only_its_dependencies(
    py_project: Path,
) -> None:
    python = str(py_project / "venv" / "bin" / "python")
    where = "import user_management_client; print(user_management_client.__file__)"

    located = ok(run([python, "-c", where], py_project, clean_env())).stdout.strip()
    strays = ok(run([python, "-c", STRAYS], py_project, clean_env())).stdout.strip()

    package = Path(located).parent
    assert package.is_relative_to(py_project / "venv" / "lib"), package
    assert (package / "py.typed").is_file()
    assert {p.name for p in package.iterdir()} >= {"api", "models", "client.py", "types.py"}
    assert strays == "[]"


def test_python_example_passes_mypy_strict_and_a_wrong_use_does_not(py_project: Path) -> None:
    (py_project / "wrong.py").write_text(WRONG_PY)
    mypy = str(py_project / "venv" / "bin" / "mypy")

    checked = ["example.py", "sign_in.py", "wrong.py"]
    result = run([mypy, "--strict", *checked], py_project, clean_env(), 120)

    # Only the wrong uses fail: a py.typed missing would fail every import instead.
    found = errors_of(result.stdout, r"^(\S+?):(\d+): error: .*\[([\w-]+)\]$")
    assert found == [("wrong.py", "6", "arg-type"), ("wrong.py", "7", "call-arg")], result.stdout


@pytest.mark.postgresql_only("the installed clients run against the PostgreSQL server")
def test_python_examples_run_against_the_live_server(
    backend: str, app: Flask, py_project: Path, api_token: str, request: pytest.FixtureRequest
) -> None:
    server: LiveServer = request.getfixturevalue("live_server")
    python = str(py_project / "venv" / "bin" / "python")

    def runner(script: str) -> Run:
        def run_example(settings: dict[str, str]) -> "subprocess.CompletedProcess[str]":
            return run([python, script], py_project, clean_env(**settings))

        return run_example

    check_runs(runner("example.py"), server, api_token)
    check_sign_in(runner("sign_in.py"), app, server)

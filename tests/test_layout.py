"""The house rules of docs/explanation/architecture.md, read from the code's own imports (ast,
not regex).

Each room of app/ has a floor; a module may import its own room and the floors below, never
above. Run alone: .venv/bin/pytest tests/test_layout.py -q
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

# From the ground up. A room is a top-level module or package of app/.
FLOORS: dict[str, int] = {
    "config": 0,
    "errors": 0,
    "context": 0,
    "telemetry": 1,
    "server": 2,
    "db": 3,
    "migrations": 4,
    "models": 4,
    "schemas": 5,
    "services": 6,
    "web": 7,
    "api": 8,
    "scim": 8,
    "cli": 8,
    "factory": 9,
    "startup": 9,
    "scripts": 10,
    "worker": 10,
    "mailsink": 10,
    "__init__": 10,
}
MAX_LINES = 400
MAX_LOOSE_FILES = 8


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(APP.rglob("*.py")):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        if "versions" in parts:  # migration scripts: alembic's, not the app's
            continue
        found[".".join(parts).removesuffix(".__init__")] = path
    return found


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, imported app module) of every import in the file, lazy ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            base = node.module if node.level == 0 else f"{package}.{node.module}"
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            found.append((node.lineno, base))
    return [(line, name) for line, name in found if name == "app" or name.startswith("app.")]


def test_every_room_has_a_floor() -> None:
    rooms = {_room(module) for module in _modules() if module != "app"}
    assert rooms <= set(FLOORS), f"rooms without a floor: {sorted(rooms - set(FLOORS))}"


def test_no_import_runs_back_up() -> None:
    upward = []
    for module, path in _modules().items():
        own = FLOORS[_room(module)] if module != "app" else FLOORS["__init__"]
        for line, name in _imports(path, module):
            if name == "app":
                continue
            target = _room(name)
            if target in FLOORS and FLOORS[target] > own:
                upward.append(f"{path.relative_to(APP.parent)}:{line} imports {name}")
    # The one allowed: each server worker builds the app (app.server.serve.asgi_app, lazily),
    # and the master reports what it serves (app.startup, lazily).
    allowed = {"app/server/serve.py"}
    assert [u for u in upward if u.split(":")[0] not in allowed] == []


def test_no_module_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(APP.parent)): lines
        for path in _modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_few_loose_files_at_the_top() -> None:
    loose = sorted(p.name for p in APP.glob("*.py"))
    assert len(loose) <= MAX_LOOSE_FILES, loose


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        # The serving runtime knows no database: a worker builds the app after the fork.
        ("app.server.serve", ["app.db", "flask_sqlalchemy", "sqlalchemy", "app.models"]),
        ("app.server.bridge", ["app.db", "flask_sqlalchemy", "sqlalchemy", "app.models"]),
        ("app.server.loops", ["app.db", "flask_sqlalchemy", "sqlalchemy", "flask"]),
        ("app.errors", ["flask", "app.db", "sqlalchemy"]),
    ],
)
def test_room_imports_nothing_below_its_line(module: str, absent: list[str]) -> None:
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(m for m in sys.modules if m.split('.')[0] in {absent!r}"
        f" or any(m == a or m.startswith(a + '.') for a in {absent!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == [], f"importing {module} loads {loaded}"

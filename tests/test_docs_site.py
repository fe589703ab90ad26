"""The documentation site: it builds with --strict, loads nothing from another host, and its
reference pages and README say what the code does.

- mkdocs build --strict (broken links and anchors are errors: mkdocs.yml's validation);
- no <script src>, <link href>, <img src> or CSS @import/url() of the built site names another
  host (links in the text to other sites are fine);
- docs/reference/settings.md lists exactly Settings.model_fields, with their plain defaults;
- docs/reference/cli.md has a heading for exactly the commands `flask --app app` lists;
- docs/reference/metrics.md lists exactly the metrics defined in app/;
- docs/reference/contract.md's operations are those of the served OpenAPI document;
- README.md is a quick start: at most 150 lines, with the two set-up commands verbatim.
"""

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import click
import pytest
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo

from app import create_app
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS = Path(sys.executable).parent / "mkdocs"
BUILD_TIMEOUT = 180
README_MAX_LINES = 150
RUN_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -r requirements/app.txt && "
    ".venv/bin/pip install -q --no-deps -e . && .venv/bin/flask --app app run"
)
TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -r requirements/dev.txt && "
    ".venv/bin/pip install -q --no-deps -e . && .venv/bin/pytest"
)
# The document and its viewer are served, but the document does not list itself.
SELF_DESCRIBED = {("GET", "/openapi.json"), ("GET", "/docs")}
PLANNED = "(planned)"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
EXTERNAL = re.compile(r"^\s*['\"]?\s*(https?:)?//", re.IGNORECASE)
CSS_REFERENCE = re.compile(r"@import\s+(?:url\()?\s*([^;)\s]+)|url\(\s*([^)]*)\)", re.IGNORECASE)


def table_rows(markdown: str) -> Iterator[list[str]]:
    """Yield the cells of each Markdown table row; a | inside `code` does not split a cell."""
    for line in markdown.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells: list[str] = []
        cell, in_code = "", False
        for char in line.strip().strip("|"):
            if char == "`":
                in_code = not in_code
            if char == "|" and not in_code:
                cells.append(cell.strip())
                cell = ""
            else:
                cell += char
        cells.append(cell.strip())
        yield cells


def code_name(cell: str) -> str | None:
    """The name a cell holds as one code span (`NAME`), else None."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by mkdocs build --strict into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.fixture
def bare_app(tmp_path: Path) -> Flask:
    """The app on the embedded database of an empty instance folder (never migrated)."""
    return create_app(Settings(INSTANCE_PATH=tmp_path))


def test_site_builds_strict_with_every_page(site: Path) -> None:
    pages = {path.relative_to(DOCS) for path in DOCS.rglob("*.md")}
    built = {path.relative_to(site) for path in site.rglob("index.html")}
    for page in pages:
        folder = page.parent if page.stem == "index" else page.with_suffix("")
        assert folder / "index.html" in built, page


class _Assets(HTMLParser):
    """The URLs a page loads (not the ones it links to), and its inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        attribute = {"script": "src", "img": "src", "iframe": "src", "link": "href"}.get(tag)
        if attribute and values.get(attribute):
            self.loaded.append(str(values[attribute]))
        if values.get("style"):
            self.styles.append(str(values["style"]))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def _css_references(css: str) -> list[str]:
    return [imported or url for imported, url in CSS_REFERENCE.findall(css)]


def test_built_site_loads_nothing_from_another_host(site: Path) -> None:
    loaded: dict[str, list[str]] = {}
    styles: dict[str, list[str]] = {}
    for page in site.rglob("*.html"):
        parser = _Assets()
        parser.feed(page.read_text(encoding="utf-8"))
        loaded[str(page.relative_to(site))] = parser.loaded
        styles[str(page.relative_to(site))] = _css_references("\n".join(parser.styles))
    for sheet in site.rglob("*.css"):
        styles[str(sheet.relative_to(site))] = _css_references(sheet.read_text(encoding="utf-8"))
    # Not vacuous: the pages load scripts and stylesheets of their own, and CSS refers to some.
    assert any(any(url.endswith(".js") for url in urls) for urls in loaded.values())
    assert any(any(url.endswith(".css") for url in urls) for urls in loaded.values())
    assert any(styles.values())
    remote = {
        name: [url for url in urls if EXTERNAL.match(url)]
        for name, urls in {**loaded, **styles}.items()
    }
    assert not {name: urls for name, urls in remote.items() if urls}
    for path in site.rglob("*"):
        if path.suffix in {".html", ".css", ".js"}:
            text = path.read_text(encoding="utf-8")
            assert "fonts.googleapis" not in text, path
            assert "fonts.gstatic" not in text, path


def _settings_rows() -> dict[str, list[str]]:
    page = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    rows: dict[str, list[str]] = {}
    for cells in table_rows(page):
        name = code_name(cells[0])
        if name and re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            assert name not in rows, f"{name} is listed twice"
            rows[name] = cells
    return rows


def test_settings_page_lists_exactly_the_settings_fields() -> None:
    rows = _settings_rows()
    fields = set(Settings.model_fields)
    assert sorted(fields - rows.keys()) == [], "fields missing from the page"
    assert sorted(rows.keys() - fields) == [], "names on the page that are no field"


def _plain_default(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value == "":
        return '""'
    return str(value)


def test_settings_page_gives_each_plain_default() -> None:
    rows = _settings_rows()
    for name, field in Settings.model_fields.items():
        if field.default is None or field.default_factory is not None:
            continue  # derived or unset: the page says in words what happens
        default_cell = rows[name][2]
        assert f"`{_plain_default(field.default)}`" in default_cell, (name, default_cell)


def _commands(bare_app: Flask) -> set[str]:
    group = FlaskGroup(create_app=lambda: bare_app)
    context = click.Context(group, obj=ScriptInfo(create_app=lambda: bare_app))
    names: set[str] = set()
    for name in group.list_commands(context):
        names.add(name)
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            names.update(f"{name} {sub}" for sub in command.list_commands(context))
    return names


def test_cli_page_has_a_heading_for_exactly_each_command(bare_app: Flask) -> None:
    commands = _commands(bare_app)
    # Not vacuous: the app's own groups are among them.
    assert {"users import", "api-keys create", "openapi"} <= commands
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#{2,3} `([^`]+)`$", page, re.MULTILINE))
    assert sorted(commands - headings) == [], "commands without a heading"
    assert sorted(headings - commands) == [], "headings naming no command"


def _defined_metrics() -> set[str]:
    names: set[str] = set()
    for module in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        constructors = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "prometheus_client"
            for alias in node.names
            if alias.name in METRIC_TYPES
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            imported = isinstance(func, ast.Name) and func.id in constructors
            qualified = (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "prometheus_client"
                and func.attr in METRIC_TYPES
            )
            if not (imported or qualified):
                continue
            given = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "name")]
            assert given, ast.dump(node)
            assert isinstance(given[0], ast.Constant), ast.dump(node)
            names.add(str(given[0].value))
    return names


def test_metrics_page_lists_exactly_the_metrics_defined() -> None:
    defined = _defined_metrics()
    assert "http_requests_total" in defined  # not vacuous: the search finds them
    page = (DOCS / "reference" / "metrics.md").read_text(encoding="utf-8")
    listed = {name for cells in table_rows(page) if (name := code_name(cells[0]))}
    assert sorted(defined - listed) == [], "metrics missing from the page"
    assert sorted(listed - defined) == [], "names on the page that are no metric"


def _contract_operations() -> set[tuple[str, str]]:
    page = (DOCS / "reference" / "contract.md").read_text(encoding="utf-8")
    operations: set[tuple[str, str]] = set()
    for section in re.split(r"^## ", page, flags=re.MULTILINE)[1:]:
        heading, _, body = section.partition("\n")
        if heading.rstrip().endswith(PLANNED) or heading.startswith(SCIM_SECTION):
            continue
        for cells in table_rows(body):
            for method, path in re.findall(rf"`({'|'.join(HTTP_METHODS)}) (/[^`]*)`", cells[0]):
                operations.add((method, re.sub(r"\{[^}]*\}", "{}", path)))
    return operations


SCIM_SECTION = "SCIM 2.0"


def test_contract_scim_operations_are_those_served(bare_app: Flask) -> None:
    # SCIM describes itself (its discovery endpoints), so its table is held to the routes.
    page = (DOCS / "reference" / "contract.md").read_text(encoding="utf-8")
    [section] = [
        s for s in re.split(r"^## ", page, flags=re.MULTILINE) if s.startswith(SCIM_SECTION)
    ]
    listed = {
        (method, re.sub(r"\{[^}]*\}", "{}", path))
        for cells in table_rows(section)
        for method, path in re.findall(rf"`({'|'.join(HTTP_METHODS)}) (/[^`]*)`", " ".join(cells))
        if path.startswith("/scim/v2/")
    }
    served = {
        (method, re.sub(r"<[^>]*>", "{}", rule.rule))
        for rule in bare_app.url_map.iter_rules()
        if rule.rule.startswith("/scim/v2/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert sorted(served - listed) == [], "served SCIM operations the contract does not list"
    assert sorted(listed - served) == [], "listed SCIM operations not served"


def test_contract_operations_are_those_served(bare_app: Flask) -> None:
    client = bare_app.test_client()
    document = client.get("/openapi.json").get_json()
    served = {
        (method.upper(), re.sub(r"\{[^}]*\}", "{}", path))
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in HTTP_METHODS
    }
    contract = _contract_operations()
    assert sorted(served - contract) == [], "served operations the contract does not list"
    assert sorted(contract - served - SELF_DESCRIBED) == [], "listed operations not served"
    assert contract >= SELF_DESCRIBED
    for method, path in SELF_DESCRIBED:
        assert client.open(path, method=method).status_code == 200, path


def test_readme_is_a_quick_start_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_MAX_LINES
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    set_up = [block.strip() for block in blocks if "python3 -m venv" in block]
    assert set_up == [RUN_COMMAND, TEST_COMMAND]

"""The lock files (requirements/app.txt, requirements/dev.txt; scripts/lock.sh writes them):
they satisfy pyproject.toml and requirements/every-3.11.in, agree with each other, pin every
package by version and hash, are what this venv has installed, and are what scripts/lock.sh
would write today.

Run alone: .venv/bin/pytest tests/test_lock.py -q (the last test asks PyPI).
"""

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.helpers import ROOT

LOCKS = ROOT / "requirements"
# What some CPython 3.11 patch releases need besides pyproject.toml (the file says why).
EVERY_311 = LOCKS / "every-3.11.in"
# Each lock file and the pyproject.toml extras it holds besides the runtime dependencies.
EXTRAS = {"app.txt": (), "dev.txt": ("mysql", "dev")}
_HASH = re.compile(r"\s--hash=sha256:([0-9a-f]{64})(?=\s|$)")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    version: Version
    hashes: frozenset[str]

    @property
    def applies(self) -> bool:
        """Whether pip installs it here: its marker, if any, holds on this platform."""
        marker = self.requirement.marker
        return marker is None or marker.evaluate()


def _logical_lines(path: Path) -> list[str]:
    """The file's requirements as pip reads them: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    lines = (re.sub(r"(^|\s)#.*", "", line).strip() for line in joined.splitlines())
    return [line for line in lines if line]


def _pin(line: str) -> Pin:
    hashes = frozenset(_HASH.findall(line))
    requirement = Requirement(_HASH.sub("", line).strip())
    specifiers = list(requirement.specifier)
    assert len(specifiers) == 1, f"not one version: {line}"
    (specifier,) = specifiers
    assert specifier.operator == "==", f"not pinned with ==: {line}"
    assert "*" not in specifier.version, f"a wildcard: {line}"
    return Pin(requirement, Version(specifier.version), hashes)


def _lock(name: str) -> dict[NormalizedName, Pin]:
    pins = [_pin(line) for line in _logical_lines(LOCKS / name)]
    found = {canonicalize_name(pin.requirement.name): pin for pin in pins}
    assert len(found) == len(pins), f"{name} pins a package twice"
    return found


def _pyproject_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    """The runtime dependencies and the named extras', self-references (app[mysql]) followed."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    own_name = canonicalize_name(project["name"])
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    found: list[Requirement] = []
    pending = [Requirement(text) for text in project["dependencies"]]
    seen: set[str] = set()
    for extra in extras:
        pending += [Requirement(text) for text in optional[extra]]
        seen.add(extra)
    while pending:
        requirement = pending.pop()
        if canonicalize_name(requirement.name) != own_name:
            found.append(requirement)
            continue
        for extra in sorted(requirement.extras - seen):
            pending += [Requirement(text) for text in optional[extra]]
            seen.add(extra)
    return found


def _every_311_requirements() -> list[Requirement]:
    return [Requirement(line) for line in _logical_lines(EVERY_311)]


def _extras_requirements(requirement: Requirement) -> list[Requirement]:
    """What ``requirement``'s extras add, from the installed metadata of its package."""
    try:
        declared = importlib.metadata.requires(requirement.name) or []
    except importlib.metadata.PackageNotFoundError:
        return []  # not installed: test_this_venv_has_the_locked_versions says so
    added = []
    for text in declared:
        needed = Requirement(text)
        if needed.marker is None:
            continue
        if any(needed.marker.evaluate({"extra": extra}) for extra in requirement.extras) and (
            not needed.marker.evaluate({"extra": ""})
        ):
            added.append(needed)
    return added


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_every_line_pins_one_version_with_its_hashes(name: str) -> None:
    lines = _logical_lines(LOCKS / name)
    assert lines, f"{name} is empty"
    for line in lines:
        pin = _pin(line)
        assert pin.requirement.url is None, f"{name}: {line}"
        # Stripped: dev.txt uses app.txt as a constraints file, where pip refuses extras.
        assert not pin.requirement.extras, f"{name}: {line}"
        assert pin.hashes, f"{name}: {pin.requirement} has no --hash"


@pytest.mark.parametrize("name", sorted(EXTRAS))
def test_the_lock_satisfies_its_sources(name: str) -> None:
    pins = _lock(name)
    unmet = []
    for requirement in _pyproject_requirements(EXTRAS[name]) + _every_311_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None or not requirement.specifier.contains(pin.version, prereleases=True):
            unmet.append(f"{requirement}: locked {pin.version if pin else 'nowhere'}")
            continue
        # flask[async], psycopg[binary], ...: what the extra adds is locked too.
        for needed in _extras_requirements(requirement):
            added = pins.get(canonicalize_name(needed.name))
            if added is None or not needed.specifier.contains(added.version, prereleases=True):
                locked = added.version if added else "nowhere"
                unmet.append(f"{needed} (for {requirement}): locked {locked}")
    assert not unmet, f"{name} does not satisfy its sources: run scripts/lock.sh\n" + "\n".join(
        unmet
    )


def test_dev_holds_every_app_pin_at_the_same_version() -> None:
    app, dev = _lock("app.txt"), _lock("dev.txt")
    differ = []
    for name, pin in sorted(app.items()):
        other = dev.get(name)
        if other is None or other.version != pin.version:
            differ.append(
                f"{name}: app.txt {pin.version}, dev.txt {other.version if other else 'none'}"
            )
        elif other.hashes != pin.hashes:
            differ.append(f"{name} {pin.version}: the two files list other hashes")
    assert not differ, "app.txt and dev.txt disagree: run scripts/lock.sh\n" + "\n".join(differ)


def test_this_venv_has_the_locked_versions() -> None:
    installed: dict[NormalizedName, set[Version]] = {}
    for distribution in importlib.metadata.distributions():
        name = canonicalize_name(distribution.metadata["Name"])
        installed.setdefault(name, set()).add(Version(distribution.version))
    differ = [
        f"{name}: locked {pin.version}, installed {sorted(map(str, installed.get(name, [])))}"
        for name, pin in sorted(_lock("dev.txt").items())
        if pin.applies and installed.get(name) != {pin.version}
    ]
    assert not differ, (
        f"{sys.prefix} is not requirements/dev.txt: install it (the README's test command)\n"
        + "\n".join(differ)
    )


# It asks PyPI: 11 to 22 s here, caches warm or cold (the committed hashes are reused).
def test_the_lock_is_what_the_lock_script_writes(tmp_path: Path) -> None:
    """The script, seeded with the committed lock and told to upgrade nothing, changes no pin
    and no hash: pyproject.toml and the lock agree (a pin pyproject.toml no longer allows, a
    dependency added or dropped, would each change one)."""
    env = {**os.environ, "LOCK_PYTHON": sys.executable}
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "lock.sh"), "--output-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for name in sorted(EXTRAS):
        committed = {key: (pin.version, pin.hashes) for key, pin in _lock(name).items()}
        written = {
            canonicalize_name(pin.requirement.name): (pin.version, pin.hashes)
            for pin in map(_pin, _logical_lines(tmp_path / name))
        }
        changed = sorted(
            f"{key}: {committed[key][0] if key in committed else 'none'} -> "
            f"{written[key][0] if key in written else 'none'}"
            + (" (hashes)" if key in committed and key in written else "")
            for key in committed.keys() | written.keys()
            if committed.get(key) != written.get(key)
        )
        assert not changed, f"requirements/{name} is stale: run scripts/lock.sh\n" + "\n".join(
            changed
        )

"""What a newcomer does: take the repository, run the README's run command, and replay the
tutorial's curl session (docs/tutorial.md) against the server it starts.

The copy holds the files git would give a clone (tracked and new, nothing ignored), taken
from the working tree so that uncommitted work is what is checked. The README's run command
runs there whole, verbatim but for its port: a virtual environment of its own, the lock's
install (about 30 s with pip's cache warm, as the suite's own install leaves it), the server.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import ROOT, doc_block, embedded_env, free_port, stop

pytestmark = pytest.mark.live

RUN_COMMAND_END = " && .venv/bin/flask --app app run"
MARKER = "<!-- newcomer-session -->"
DOCS_PORT = "127.0.0.1:5000"
STATUS_LINE = re.compile(r"^HTTP/[\d.]+ (\d{3})", re.MULTILINE)
KEY_LINE = re.compile(r"^\s+(umk_[A-Za-z0-9_-]+)\s*$", re.MULTILINE)
START_TIMEOUT = 60
INSTALL_TIMEOUT = 300
STEP_TIMEOUT = 30
GIT_TIMEOUT = 30


def copy_working_tree(target: Path) -> Path:
    """Copy the files a clone of the working tree would hold into ``target``."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=GIT_TIMEOUT,
    ).stdout.decode()
    copied = 0
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
        copied += 1
    assert copied, "git listed no files"
    return target


def session_steps(tutorial: str) -> list[tuple[str, list[int]]]:
    """Each marked sh block of the tutorial, with the statuses of the output shown after it."""
    steps = []
    for chunk in tutorial.split(MARKER)[1:]:
        match = re.match(r"\s*```sh\n(.*?)```\s*```text\n(.*?)```", chunk, re.DOTALL)
        assert match, f"a {MARKER} marker is not followed by a sh block and its output"
        expected = [int(status) for status in STATUS_LINE.findall(match.group(2))]
        assert expected, f"the output after {match.group(1)!r} shows no status line"
        steps.append((match.group(1), expected))
    return steps


def wait_for_key(process: "subprocess.Popen[bytes]", log: Path) -> str:
    """The key the server prints on its first start; fail with its log if it never does."""
    deadline = time.monotonic() + INSTALL_TIMEOUT + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        printed = KEY_LINE.search(log.read_text(errors="replace"))
        if printed:
            return printed.group(1)
        time.sleep(0.2)
    pytest.fail(f"the server printed no key:\n{log.read_text(errors='replace')}")


def wait_until_answering(base_url: str, process: "subprocess.Popen[bytes]", log: Path) -> None:
    """Wait until the server answers /healthz; fail with its log if it does not."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer:\n{log.read_text(errors='replace')}")


def test_tutorial_session_runs_on_a_fresh_copy(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the tutorial's session needs curl"
    project = copy_working_tree(tmp_path / "project")
    steps = session_steps((project / "docs" / "tutorial.md").read_text(encoding="utf-8"))
    assert steps, f"docs/tutorial.md has no {MARKER} blocks"

    port = free_port()
    log = tmp_path / "server.log"
    environment = {key: value for key, value in embedded_env().items() if key != "PYTHONPATH"}
    run = doc_block("README.md", "Run it", "sh").strip()
    assert run.endswith(RUN_COMMAND_END), run
    # exec: the server takes the shell's pid, so stopping that pid stops the server.
    run = (
        run.removesuffix(RUN_COMMAND_END) + f" && exec .venv/bin/flask --app app run --port {port}"
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", run],
            cwd=project,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        key = wait_for_key(process, log)
        wait_until_answering(f"http://127.0.0.1:{port}", process, log)
        started = log.read_text(errors="replace")
        assert "Traceback" not in started, started
        assert (project / "instance" / "app.db").is_file(), "not the copy's own instance folder"

        for commands, expected in steps:
            ran = subprocess.run(
                ["bash", "-c", commands.replace(DOCS_PORT, f"127.0.0.1:{port}")],
                cwd=tmp_path,
                env={**os.environ, "KEY": key},
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT,
                check=False,
            )
            statuses = [int(status) for status in STATUS_LINE.findall(ran.stdout)]
            assert statuses == expected, f"{commands}\n{ran.stdout}\n{ran.stderr}"
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace"), log.read_text(errors="replace")

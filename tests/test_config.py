"""Defaults the settings compute from the machine and from where the package is."""

import os
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.config import ENV_FILE, Settings, available_cpus, default_instance_path
from app.db.session import db
from app.services import api_keys

AFFINITY = len(os.sched_getaffinity(0))
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", AFFINITY),  # no quota
        ("100000 100000\n", 1),  # docker --cpus 1
        ("150000 100000\n", min(AFFINITY, 2)),  # --cpus 1.5: a part CPU counts
        ("5000 100000\n", 1),  # a twentieth is still one
        ("9900000 100000\n", AFFINITY),  # a quota above the CPUs there are
        ("garbage\n", AFFINITY),
        (None, AFFINITY),  # no cgroup file at all
    ],
)
def test_available_cpus_honours_a_cgroup_v2_quota(
    tmp_path: Path, cpu_max: str | None, expected: int
) -> None:
    if cpu_max is not None:
        (tmp_path / "cpu.max").write_text(cpu_max)
    assert available_cpus(tmp_path) == expected


@pytest.mark.parametrize(
    ("folder", "quota", "expected"),
    [
        ("cpu", "-1", AFFINITY),  # no quota
        ("cpu", "100000", 1),  # docker --cpus 1 on a cgroup v1 host
        ("cpu,cpuacct", "150000", min(AFFINITY, 2)),
    ],
)
def test_available_cpus_honours_a_cgroup_v1_quota(
    tmp_path: Path, folder: str, quota: str, expected: int
) -> None:
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (tmp_path / folder / "cpu.cfs_period_us").write_text("100000\n")
    assert available_cpus(tmp_path) == expected


def test_processes_default_to_two_per_cpu_and_the_environment_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("WEB_THREADS", raising=False)
    assert 2 * available_cpus() == Settings().WEB_CONCURRENCY
    assert Settings().WEB_THREADS == 4
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert Settings().WEB_CONCURRENCY == 3


def test_the_instance_folder_is_flasks_for_the_package_whatever_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INSTANCE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_instance_path() == ROOT / "instance"
    assert Path(Flask("app").instance_path) == default_instance_path()
    assert Settings().instance_path == ROOT / "instance"
    assert ENV_FILE == ROOT / ".env"


def test_an_install_into_site_packages_keeps_its_instance_under_the_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.config.paths._PREFIX", "/opt/venv")
    assert default_instance_path() == Path("/opt/venv/var/app-instance")


def test_instance_path_wins_and_reading_the_url_makes_nothing(tmp_path: Path) -> None:
    settings = Settings(INSTANCE_PATH=tmp_path / "elsewhere")
    assert settings.instance_path == (tmp_path / "elsewhere").resolve()
    assert settings.database_url == f"sqlite:///{settings.instance_path / 'app.db'}"
    assert not (tmp_path / "elsewhere").exists()


def test_rate_limit_is_off_on_the_embedded_default_only_when_unset(tmp_path: Path) -> None:
    assert Settings(INSTANCE_PATH=tmp_path).RATE_LIMIT == ""
    assert Settings(INSTANCE_PATH=tmp_path, RATE_LIMIT="5/minute").RATE_LIMIT == "5/minute"
    production = Settings(DATABASE_URL="postgresql://postgres@127.0.0.1/test")
    assert production.RATE_LIMIT == "1200/minute"


def test_the_readme_loop_of_1300_gets_is_not_throttled_on_the_embedded_default(
    tmp_path: Path,
) -> None:
    # A loop of 1,300 GETs with the printed local key once met a 429 at the 1,196th.
    app = create_app(Settings(INSTANCE_PATH=tmp_path), serving=True)
    with app.app_context():
        _, token = api_keys.create_api_key("loop", ["users:read"])
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    statuses = Counter(client.get("/users", headers=headers).status_code for _ in range(1300))
    assert statuses == {200: 1300}

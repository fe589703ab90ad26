"""Where this package lives, its instance folder and .env, and the CPUs it may use."""

import math
import os
import sys
from pathlib import Path, PurePath


def _find_package() -> tuple[str | None, str]:
    # flask.sansio.scaffold.find_package's answer for this package (a regular one, imported
    # from a folder), without importing Flask: importing the settings, or the models and
    # Alembic through them, loads no web framework (tests/test_imports.py compares both).
    home = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))  # app/config/paths.py
    prefix = os.path.abspath(sys.prefix)
    if PurePath(home).is_relative_to(prefix):
        return prefix, home
    site_parent, site_folder = os.path.split(home)
    if site_folder.lower() != "site-packages":
        return None, home
    parent, folder = os.path.split(site_parent)
    if folder.lower() == "lib":  # Windows: <prefix>/Lib/site-packages
        return parent, home
    if os.path.basename(parent).lower() == "lib":  # <prefix>/lib/pythonX.Y/site-packages
        return os.path.dirname(parent), home
    return site_parent, home


# Where this package is, found as Flask finds an app's instance folder: the folder on sys.path
# that holds it (the project, for a checkout or an editable install), and the prefix it is
# installed under (None unless it is in a site-packages). Never the current folder: a cron
# job or a script started elsewhere must find the same files as the server.
_PREFIX, _PACKAGE_HOME = _find_package()
# .env sits next to the package (the project's folder); values in the environment win.
ENV_FILE = Path(_PACKAGE_HOME) / ".env"


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup quota (--cpus)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    count = (len(affinity) if affinity is not None else os.cpu_count()) or 1
    quota = _cpu_quota(cgroup)
    return min(count, quota) if quota else count


def _cpu_quota(cgroup: Path) -> int | None:
    # cgroup v2: "cpu.max" holds "<quota> <period>" or "max <period>". v1 (Docker on older
    # hosts, this CI's engine): cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us.
    try:
        if (cgroup / "cpu.max").exists():
            quota, period = (cgroup / "cpu.max").read_text().split()
        else:
            v1 = next(d for d in (cgroup / "cpu", cgroup / "cpu,cpuacct") if d.is_dir())
            quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
            period = (v1 / "cpu.cfs_period_us").read_text().strip()
        if quota in {"max", "-1"}:
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError, StopIteration):
        return None  # no quota readable: the affinity is the limit


def default_instance_path() -> Path:
    """Return Flask's instance folder for this package, whatever the current folder."""
    # <project>/instance for a checkout or an editable install, as Flask's
    # auto_find_instance_path; <prefix>/var/app-instance for an install into site-packages.
    if _PREFIX is None:
        return Path(_PACKAGE_HOME) / "instance"
    return Path(_PREFIX) / "var" / "app-instance"

"""Fault tests: a private PostgreSQL cluster, the shipped server in front, a bounded load."""

from collections.abc import Iterator

import pytest

from tests.faults.cluster import PrivateCluster
from tests.helpers import free_port


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A migrated private cluster on a port of its own, removed afterwards."""
    private = PrivateCluster(free_port())
    try:
        private.create()  # inside: a failed initdb still removes its folder
        private.migrate()
        yield private
    finally:
        private.destroy()


@pytest.fixture(scope="module")
def token(cluster: PrivateCluster) -> str:
    """An API key with the users scopes on the private cluster."""
    return cluster.api_key("faults", ("users:read", "users:write"))

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .registry_client import RegistryClient
from .servers import DOMAIN, Gateway, ocigate

pytest_plugins = [
    "tests.services.redis",
    "tests.services.postgres",
    "tests.services.ceph",
    "tests.deploy.image_build",  # the image, built once for tests/deploy and tests/e2e
]


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One embedded-default server for the session, with registries `alpha` and `beta`."""
    data_dir = tmp_path_factory.mktemp("gateway") / "data"
    ocigate("registry", "create", "alpha", data_dir=data_dir)
    ocigate("registry", "create", "beta", data_dir=data_dir)
    server = Gateway(data_dir).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: Gateway) -> RegistryClient:
    """A client of the default registry (any Host that names no registry)."""
    return RegistryClient(gateway.url)


@pytest.fixture
def alpha(gateway: Gateway) -> RegistryClient:
    return RegistryClient(gateway.url, host=f"alpha.{DOMAIN}:{gateway.port}")


@pytest.fixture
def beta(gateway: Gateway) -> RegistryClient:
    return RegistryClient(gateway.url, host=f"beta.{DOMAIN}:{gateway.port}")


@pytest.fixture
def repository(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"test/{slug}"


def pytest_configure(config: pytest.Config) -> None:
    Path(config.rootpath, ".pytest_cache").mkdir(exist_ok=True)

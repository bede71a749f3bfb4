"""Shared fixtures. Every test runs with sockets blocked except loopback and Unix sockets."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator

import pytest

from tandemlm.bench.datasets import Item, load
from tandemlm.errors import ModelSourceError
from tandemlm.models.catalog import CATALOG
from tandemlm.models.sources import fetch_catalog

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else None
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


def _guard(real):  # type: ignore[no-untyped-def]
    def connect(self: socket.socket, address: object) -> object:
        if not _is_loopback(address):
            raise NetworkBlocked(f"tests may only connect to loopback, not {address!r}")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guard(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guard(_real_connect_ex))


def catalog_model_path(name: str) -> str:
    """A cached catalog model; tests never download (`make test` pulls first). Missing: skip, or fail in CI."""
    try:
        return str(fetch_catalog(CATALOG[name], fetch=False, progress=False))
    except ModelSourceError as err:
        if os.environ.get("CI"):
            pytest.fail(f"{err} (CI must pull the models before the tests)")
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def dataset() -> Callable[[str], list[Item]]:
    """A cached benchmark dataset; like the models, tests never download it (`make test` pulls first)."""

    def load_cached(name: str) -> list[Item]:
        try:
            return load(name, fetch=False)
        except ModelSourceError as err:
            if os.environ.get("CI"):
                pytest.fail(f"{err} (CI must pull the datasets before the tests)")
            pytest.skip(str(err))

    return load_cached


@pytest.fixture(scope="session")
def catalog_path() -> Callable[[str], str]:
    return catalog_model_path


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    return catalog_model_path("smollm2-135m")


@pytest.fixture(scope="session")
def smollm2(smollm2_path: str) -> Iterator[object]:
    from tandemlm.models.llamacpp import LlamaCppModel

    model = LlamaCppModel(smollm2_path, name="smollm2-135m", n_ctx=1024)
    yield model
    model.close()

"""A real uvicorn server on a loopback port, in a thread, for each gateway under test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from tandemlm.server.run import http_protocol


@contextmanager
def serving(app: FastAPI, wait_ready: bool = True) -> Iterator[str]:
    """Run `app` on 127.0.0.1 (a free port) until the block ends; yields the base URL once its models are loaded
    (`wait_ready`), since requests before that get 503 `loading`."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # the protocol `tandem serve` runs (uvicorn's httptools one, writing a head with its body)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", http=http_protocol()))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    while wait_ready and httpx.get(f"{url}/readyz").json()["status"] == "loading":
        if time.monotonic() > deadline + 40:  # models load in a thread after start-up; requests before get 503
            raise RuntimeError("the test server's models did not load")
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def _serve() -> Iterator[Callable[[FastAPI], str]]:
    stops = []

    def start(app: FastAPI, wait_ready: bool = True) -> str:
        cm = serving(app, wait_ready)
        url = cm.__enter__()
        stops.append(cm)
        return url

    yield start
    for cm in reversed(stops):
        cm.__exit__(None, None, None)


@pytest.fixture
def serve() -> Iterator[Callable[[FastAPI], str]]:
    """Start apps for one test; all stop at its end."""
    yield from _serve()


@pytest.fixture(scope="module")
def serve_module() -> Iterator[Callable[[FastAPI], str]]:
    """Start apps for a whole test module (a real config's models then load once)."""
    yield from _serve()

"""The gateway benchmark's load generator and instant backend, on loopback, in a second or so."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tandemlm.bench.gateway import (
    LAYERS,
    BenchError,
    Stats,
    free_port,
    measure,
    percentile,
    profile_request_path,
    server,
    start_backend,
)


def test_load_generator_against_the_in_process_backend() -> None:
    async def run() -> tuple[Stats, Stats]:
        backend = await start_backend()
        port = backend.sockets[0].getsockname()[1]
        try:
            return await measure(f"http://127.0.0.1:{port}", requests=40, concurrency=4, warmup=8)
        finally:
            backend.close()

    concurrent, sequential = asyncio.run(run())
    assert (concurrent.count, concurrent.errors) == (40, 0)
    assert (sequential.count, sequential.errors) == (10, 0)  # requests // 4, one at a time
    for stats in (concurrent, sequential):
        assert stats.rps > 0
        assert 0 < stats.p50_ms <= stats.p99_ms


def test_backend_process_serves_until_the_block_ends(tmp_path: Path) -> None:
    port = free_port()
    code = f"from tandemlm.bench.gateway import serve_backend; serve_backend({port})"
    url = f"http://127.0.0.1:{port}"
    with server([sys.executable, "-c", code], f"{url}/v1/models", tmp_path / "backend.log"):
        concurrent, _ = asyncio.run(measure(url, requests=12, concurrency=3, warmup=0))
    assert (concurrent.count, concurrent.errors) == (12, 0)
    with pytest.raises(OSError):  # the process is gone: nothing listens any more
        asyncio.run(asyncio.open_connection("127.0.0.1", port))


def test_a_server_that_dies_at_start_is_reported_with_its_output(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('no master key'); sys.exit(3)"]
    dead = server(argv, f"http://127.0.0.1:{free_port()}/", tmp_path / "dead.log")
    with pytest.raises(BenchError, match=r"exited with 3 before it was ready:\nno master key"), dead:
        pass


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([], 0.5) == 0.0


def test_the_in_process_profile_counts_each_layer_of_a_request() -> None:
    profile = profile_request_path(requests=100)
    assert 0 < profile["cpu_ms"] <= profile["median_batch_cpu_ms"]
    calls = profile["calls"]
    assert set(calls) <= {name for name, _ in LAYERS} | {"other"}
    for layer in ("ASGI, routing, body validation", "upstream HTTP client", "tandem gateway", "metrics"):
        assert next(n for name, n in calls.items() if name.startswith(layer)) > 0, layer

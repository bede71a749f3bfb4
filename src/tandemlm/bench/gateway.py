"""Gateway overhead benchmark: an instant OpenAI-compatible backend called directly, through a tandem gateway
and through LiteLLM's proxy, by one closed-loop load generator, in one run.

Every server is its own process on a free loopback port, so the load generator shares a GIL with none of
them. Targets alternate round by round (rotating order) so machine noise hits them alike; the report gives
medians over rounds. The backend is a raw asyncio HTTP/1.1 server with one canned answer, so what remains
is the proxies' own cost. Both gateways check a bearer key, as in production. LiteLLM lives in its own
virtual environment (it pins old dependencies), installed on first use.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import math
import os
import platform
import pstats
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Iterator, MutableMapping
from contextlib import AsyncExitStack, ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tandemlm.errors import TandemError

MODEL = "bench"
RPS_TARGET = 5.0  # tandem's requests/s over LiteLLM's, in the same run
REPLY = "Hello! How can I help you today?"
LITELLM_VENV = Path("~/.cache/tandemlm/bench/litellm-venv").expanduser()
LITELLM_ENV = {"LITELLM_TELEMETRY": "False", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
_CHAT = json.dumps({
    "id": "chatcmpl-instant", "object": "chat.completion", "created": 1700000000, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLY}, "finish_reason": "stop",
                 "logprobs": None}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
}).encode()  # fmt: skip
_MODELS = json.dumps(
    {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "me"}]}
).encode()
_BODY = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class BenchError(TandemError):
    """A benchmark target could not be started or answered wrongly."""


def _http(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body


_ROUTES = {b"POST /v1/chat/completions": _http("200 OK", _CHAT), b"GET /v1/models": _http("200 OK", _MODELS)}
_NOT_FOUND = _http("404 Not Found", b'{"error": {"message": "not found", "type": "invalid_request_error"}}')


class _InstantBackend(asyncio.Protocol):
    """HTTP/1.1 keep-alive (pipelining too) with a canned answer per route; Content-Length bodies only."""

    transport: asyncio.WriteTransport
    buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (head_end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = _CONTENT_LENGTH.search(self.buffer, 0, head_end + 2)
            end = head_end + 4 + (int(length.group(1)) if length else 0)
            if len(self.buffer) < end:
                return
            line, self.buffer = self.buffer[: self.buffer.find(b"\r\n")], self.buffer[end:]
            self.transport.write(_ROUTES.get(line.rsplit(b" ", 1)[0].split(b"?")[0], _NOT_FOUND))


async def start_backend(port: int = 0) -> asyncio.Server:
    """The instant backend on 127.0.0.1, in the running loop (port 0: any free one)."""
    return await asyncio.get_running_loop().create_server(_InstantBackend, "127.0.0.1", port, backlog=1024)


def serve_backend(port: int) -> None:
    """Run the instant backend until killed (the benchmark's backend process)."""

    async def forever() -> None:
        await (await start_backend(port)).serve_forever()

    asyncio.run(forever())


# ---- load generator -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """One measurement: successful requests, failures, wall time and latency percentiles."""

    count: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu_s: float = 0.0  # CPU time the target's server process spent meanwhile: robust to noisy neighbours

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1]) of unsorted values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))] if ordered else 0.0


async def drive(clients: list[Any], requests: int) -> Stats:
    """Closed loop: one worker per client sends chat completions until `requests` were sent in all."""
    latencies: list[float] = []
    errors, left = 0, requests

    async def worker(client: Any) -> None:
        nonlocal left, errors
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            try:
                ok = (await client.post("/v1/chat/completions", content=_BODY)).status_code == 200
            except Exception:  # a transport error is a failed request, counted, not a crash of the bench
                ok = False
            if ok:
                latencies.append(time.perf_counter() - t0)
            errors += not ok

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    seconds = time.perf_counter() - t0
    return Stats(len(latencies), errors, seconds, percentile(latencies, 0.5) * 1e3, percentile(latencies, 0.99) * 1e3)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0.0 where unknown)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def measure(
    url: str, requests: int, concurrency: int, warmup: int, key: str = "-", pid: int | None = None
) -> tuple[Stats, Stats]:
    """Warm-up, then `requests` at `concurrency`, then requests // 4 one at a time: (concurrent, sequential).

    Each worker has its own one-connection client: one shared httpx pool of 32 halves the generator's rate.
    """
    import httpx

    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=url, headers=headers, timeout=60.0, limits=httpx.Limits(max_connections=1))
            )
            for _ in range(concurrency)
        ]
        first = await clients[0].post("/v1/chat/completions", content=_BODY)
        if first.status_code != 200 or first.json()["choices"][0]["message"]["content"] != REPLY:
            raise BenchError(f"{url} answered {first.status_code} without the backend's reply: {first.text[:300]}")
        await drive(clients, warmup)
        cpu = cpu_seconds(pid)
        conc = replace(await drive(clients, requests), server_cpu_s=cpu_seconds(pid) - cpu)
        cpu = cpu_seconds(pid)
        return conc, replace(await drive(clients[:1], max(requests // 4, 1)), server_cpu_s=cpu_seconds(pid) - cpu)


# ---- where a request's time goes ------------------------------------------------------------------------

#: Python frame entries are counted by the module that defines the function, grouped into the request path's layers
LAYERS = (
    ("ASGI, routing, body validation (fastapi, starlette, pydantic)", r"/(fastapi|starlette|pydantic|email)/"),
    (
        "upstream HTTP client (aiohttp, httpx, httpcore, h11, tandem's http1)",
        r"/(aiohttp|httpx|httpcore|h11|multidict|yarl)/|tandemlm/models/(http1|transport)\.py",
    ),
    ("event loop and cancel scopes (asyncio, anyio, contextlib)", r"/(asyncio|anyio|sniffio|contextlib\.py)"),
    ("metrics (prometheus_client)", r"/prometheus_client/"),
    ("JSON (json)", r"/json/"),
    ("tandem gateway (tandemlm/server)", r"tandemlm/server/"),
    ("tandem model call (models, execution, trace, types)", r"tandemlm/(models|execution|trace|types|collab)"),
    ("instant backend (not the gateway)", r"tandemlm/bench/"),
)


def profile_request_path(requests: int = 2000) -> dict[str, Any]:
    """The gateway app in-process, without an HTTP server or a second process, against the instant backend: CPU
    per request (the least of batches of 100, so other load on the machine moves it little), Python frame
    entries per request by layer (deterministic): calls, and coroutine resumptions, since each await that
    suspends re-enters every frame of the ASGI chain above it; and CPU µs per request by layer: that CPU split
    in the shares of self time (CPU clock) cProfile gives each layer's functions, C calls (json, pydantic-core,
    socket sends) counted to the layer that made them. uvicorn's own protocol is not in it."""

    async def main() -> dict[str, Any]:
        from tandemlm.config import TandemConfig
        from tandemlm.server import create_app

        backend = await start_backend()
        url = f"http://127.0.0.1:{backend.sockets[0].getsockname()[1]}/v1"
        model = {"engine": "openai", "model": MODEL, "base_url": url, "location": "cloud", "api_key": "-"}
        config = {"models": {"backend": model}, "pipelines": {MODEL: {"model": "backend"}},
                  "server": {"api_keys": ["k"]}}  # fmt: skip
        app = create_app(TandemConfig.model_validate(config))
        body = _BODY.encode()
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"authorization", b"Bearer k"),
                   (b"content-length", str(len(body)).encode())]  # fmt: skip

        async def call() -> None:
            scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                     "scheme": "http", "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions",
                     "query_string": b"", "root_path": "", "headers": headers, "client": ("127.0.0.1", 1),
                     "server": ("127.0.0.1", 2), "state": {}}  # fmt: skip
            sent, done, read = [], asyncio.Event(), [False]

            async def receive() -> dict[str, Any]:
                if not read[0]:
                    read[0] = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await done.wait()
                return {"type": "http.disconnect"}

            async def send(message: MutableMapping[str, Any]) -> None:
                sent.append(message)
                done.set() if message["type"] == "http.response.body" and not message.get("more_body") else None

            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise BenchError(f"the in-process gateway answered {sent[0]['status']}: {sent[1:]}")

        async with app.router.lifespan_context(app):
            while not app.state.tandem.ready:
                await asyncio.sleep(0.01)
            for _ in range(300):
                await call()
            batches = []
            for _ in range(max(requests // 100, 1)):
                started = time.process_time()
                for _ in range(100):
                    await call()
                batches.append((time.process_time() - started) / 100)
            counts: dict[str, int] = {}
            layers = [(name, re.compile(pattern)) for name, pattern in LAYERS]

            def count(frame: Any, event: str, arg: Any) -> None:
                if event == "call":
                    path = frame.f_code.co_filename
                    name = next((n for n, r in layers if r.search(path)), "other")
                    counts[name] = counts.get(name, 0) + 1

            sys.setprofile(count)
            try:
                for _ in range(100):
                    await call()
            finally:
                sys.setprofile(None)
            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
            try:
                for _ in range(500):
                    await call()
            finally:
                profiler.disable()
        backend.close()
        calls = {name: round(n / 100, 1) for name, n in sorted(counts.items(), key=lambda kv: -kv[1])}
        median = statistics.median(batches)
        return {"cpu_ms": round(min(batches) * 1e3, 3), "median_batch_cpu_ms": round(median * 1e3, 3), "calls": calls,
                "cpu_us": _cpu_by_layer(profiler, layers, min(batches) * 1e6)}  # fmt: skip

    return asyncio.run(main())


def _cpu_by_layer(profiler: cProfile.Profile, layers: list[tuple[str, re.Pattern[str]]], cpu_us: float
                  ) -> dict[str, float]:  # fmt: skip
    """`cpu_us` split by layer in the shares of the profiled self time; a C function's time goes to the layer of
    its callers (in their shares), since cProfile names it only by `~`."""
    own: dict[str, float] = {}

    def layer(path: str) -> str:
        return next((n for n, r in layers if r.search(path)), "other")

    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (path, _, _), (_, _, self_s, _, callers) in stats.items():
        if path != "~":
            own[layer(path)] = own.get(layer(path), 0.0) + self_s
            continue
        total = sum(c[2] for c in callers.values()) or 1.0  # per caller: (calls, calls, self time, cumulative)
        for (caller_path, _, _), c in callers.items():
            name = layer(caller_path) if caller_path != "~" else "other"
            own[name] = own.get(name, 0.0) + self_s * c[2] / total
    profiled = sum(own.values()) or 1.0
    return {name: round(cpu_us * t / profiled, 1) for name, t in sorted(own.items(), key=lambda kv: -kv[1])}


# ---- servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(
    argv: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process until the block ends (however it ends), once `ready_url` answers 200."""
    import httpx

    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip()[-1500:]
                raise BenchError(f"{Path(argv[0]).name} exited with {proc.returncode} before it was ready:\n{tail}")
            if time.monotonic() > deadline:
                raise BenchError(f"{' '.join(argv)} was not ready at {ready_url} after 180 s; see {log}")
            try:
                if httpx.get(ready_url, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (it may have workers), SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def litellm_executable() -> tuple[Path, float | None]:
    """The `litellm` CLI of the bench's own venv, created on first use: (path, seconds the install took)."""
    exe = LITELLM_VENV / "bin" / "litellm"
    if exe.exists():
        return exe, None
    t0 = time.perf_counter()
    for step in ([sys.executable, "-m", "venv", str(LITELLM_VENV)],
                 [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "litellm[proxy]"]):  # fmt: skip
        done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(step)}` failed ({done.returncode}): {done.stderr.strip()[-1500:]}")
    return exe, time.perf_counter() - t0


def _stack_info(python: str) -> dict[str, str]:
    """Versions of a venv's server stack, and which event loop and HTTP parser uvicorn finds there."""
    listed = subprocess.run([python, "-m", "pip", "list", "--format=json"], capture_output=True, check=True).stdout
    have = {p["name"].lower(): p["version"] for p in json.loads(listed)}
    names = ("tandemlm", "litellm", "fastapi", "starlette", "uvicorn", "httpx")
    return {**{n: have.get(n, "-") for n in names}, "loop": "uvloop" if "uvloop" in have else "asyncio",
            "http": "httptools" if "httptools" in have else "h11"}  # fmt: skip


def _start_targets(stack: ExitStack, tmp: Path, key: str, litellm: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start the backend, tandem and (if asked and possible) LiteLLM: name -> (URL, pid), and LiteLLM's story."""
    targets: dict[str, tuple[str, int]] = {}

    def start(name: str, port: int, argv: list[str], ready: str, env: dict[str, str] | None = None) -> str:
        url = f"http://127.0.0.1:{port}"
        targets[name] = (url, stack.enter_context(server(argv, url + ready, tmp / f"{name}.log", env)).pid)
        return url

    code = f"from {__name__} import serve_backend; serve_backend({(port := free_port())})"
    backend = start("direct", port, [sys.executable, "-c", code], "/v1/models")
    model = {"engine": "openai", "model": MODEL, "base_url": f"{backend}/v1", "location": "cloud", "api_key": "-"}
    config = {"models": {"backend": model}, "pipelines": {MODEL: {"model": "backend"}}, "server": {"api_keys": [key]}}
    (tmp / "tandem.yaml").write_text(json.dumps(config))
    serve = ["serve", "-c", str(tmp / "tandem.yaml"), "--port", str(port := free_port()), "--log-level", "warning"]
    start("tandem", port, [sys.executable, "-m", "tandemlm.cli", *serve], "/readyz")
    info: dict[str, Any] = {"missing": None if litellm else "skipped (--no-litellm)", "install_s": None}
    if not litellm:
        return targets, info
    try:
        exe, info["install_s"] = litellm_executable()
        info |= _stack_info(str(exe.parent / "python"))
        params = {"model": f"openai/{MODEL}", "api_base": f"{backend}/v1", "api_key": "-"}
        entry = {"model_name": MODEL, "litellm_params": params}
        (cfg := tmp / "litellm.yaml").write_text(
            json.dumps({"model_list": [entry], "general_settings": {"master_key": key}})
        )
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | LITELLM_ENV
        argv = [str(exe), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port := free_port())]
        start("litellm", port, argv, "/health/liveliness", env)
    except (BenchError, OSError, subprocess.SubprocessError) as err:
        info["missing"] = f"{type(err).__name__}: {err}"
    return targets, info


# ---- the run and its report ---------------------------------------------------------------------------


def run_gateway_bench(
    requests: int = 2000, concurrency: int = 32, rounds: int = 3, warmup: int = 100, litellm: bool = True,
    out: str = "bench/results/gateway.md", profile: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Run the benchmark; the JSON-ready result names the command that made it (`out` is only quoted there)."""
    command = (f"tandem bench gateway --requests {requests} --concurrency {concurrency} --rounds {rounds} "
               f"--warmup {warmup} --out {out}" + ("" if litellm else " --no-litellm")
               + ("" if profile else " --no-profile"))  # fmt: skip
    key, load = f"sk-{secrets.token_hex(16)}", [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        targets, info = _start_targets(stack, Path(tmp), key, litellm)
        samples: dict[str, list[tuple[Stats, Stats]]] = {name: [] for name in targets}
        names = list(targets)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                url, pid = targets[name]
                conc, seq = asyncio.run(measure(url, requests, concurrency, warmup, key, pid))
                samples[name].append((conc, seq))
                print(f"round {r + 1} {name}: {conc.rps:.0f} req/s, p50 {conc.p50_ms:.2f} ms, p99 {conc.p99_ms:.2f} "
                      f"ms, sequential p50 {seq.p50_ms:.3f} ms", file=sys.stderr)  # fmt: skip
    table, load = {name: _medians(s) for name, s in samples.items()}, [*load, os.getloadavg()[0]]
    layers = profile_request_path(requests) if profile else None
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "")
    speed = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6  # compare machines by this
    machine = {"nproc": os.cpu_count(), "cpu": cpu or platform.machine(), "os": platform.platform(),
               "python": platform.python_version(), "load_1m": load, "sum_range_1000_us": speed}  # fmt: skip
    added = table["tandem"]["seq_p50_ms"] - table["direct"]["seq_p50_ms"]
    ratio = table["tandem"]["rps"] / table["litellm"]["rps"] if "litellm" in table else None
    return {
        "command": command, "machine": machine, "tandem": _stack_info(sys.executable), "litellm": info,
        "settings": {"requests": requests, "concurrency": concurrency, "rounds": rounds, "warmup": warmup,
                     "sequential_requests": max(requests // 4, 1)},
        "table": table,
        "targets": {"tandem_added_p50_ms": round(added, 3), "added_p50_met": added <= 1.0,
                    "tandem_over_litellm_rps": None if ratio is None else round(ratio, 2),
                    "rps_ratio_met": None if ratio is None else ratio >= RPS_TARGET},
        "profile": layers,
        "samples": {n: [{"concurrent": asdict(c), "sequential": asdict(s)} for c, s in v] for n, v in samples.items()},
    }  # fmt: skip


def _medians(samples: list[tuple[Stats, Stats]]) -> dict[str, float]:
    conc, seq = [c for c, _ in samples], [s for _, s in samples]
    rows = {"rps": [c.rps for c in conc], "p50_ms": [c.p50_ms for c in conc], "p99_ms": [c.p99_ms for c in conc],
            "cpu_ms": [1e3 * c.server_cpu_s / max(c.count, 1) for c in conc], "seq_p50_ms": [s.p50_ms for s in seq],
            "seq_cpu_ms": [1e3 * s.server_cpu_s / max(s.count, 1) for s in seq]}  # fmt: skip
    return {k: round(statistics.median(v), 3) for k, v in rows.items()} | {"errors": sum(x.errors for x in conc + seq)}


def to_markdown(result: dict[str, Any]) -> str:
    """The report: command, machine, the table of medians, and whether each target was met."""
    m, tv, lv, s, t = (result[k] for k in ("machine", "tandem", "litellm", "settings", "targets"))
    stack = "fastapi {fastapi}, starlette {starlette}, uvicorn {uvicorn} ({loop}, {http})"
    lines = [
        "# Gateway overhead: direct vs tandem vs LiteLLM", "", f"Command: `{result['command']}`", "",
        f"Machine: {m['cpu']}, nproc {m['nproc']}, {m['os']}, Python {m['python']} (`sum(range(1000))`: "
        f"{m['sum_range_1000_us']:.1f} µs); 1-minute load average "
        f"{m['load_1m'][0]:.2f} before, {m['load_1m'][1]:.2f} after the run.", "",
        f"- tandem {tv['tandemlm']}: {stack.format(**tv)}; load generator httpx {tv['httpx']}.",
        f"- LiteLLM {lv['litellm']} (own venv): {stack.format(**lv)}." if "litellm" in lv else "- LiteLLM: not run.",
        "", f"Non-streaming chat completions to an instant backend (raw asyncio, canned answer). Each round runs "
        f"every target once, in rotating order: {s['warmup']} warm-up requests, {s['requests']} at concurrency "
        f"{s['concurrency']} (closed loop, one httpx.AsyncClient per worker), then {s['sequential_requests']} one at "
        f"a time. Medians of {s['rounds']} rounds. Load generator, gateway and backend share the {m['nproc']} CPUs. "
        "CPU ms/req: CPU time of the target's own server process per request (the backend's for direct); other "
        "load on the machine moves it less than the wall-clock columns.",
        "", "| target | req/s | p50 ms | p99 ms | CPU ms/req | sequential p50 ms | sequential CPU ms/req | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in result["table"].items():
        lines.append(f"| {name} | {row['rps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['cpu_ms']:.3f} "
                     f"| {row['seq_p50_ms']:.3f} | {row['seq_cpu_ms']:.3f} | {row['errors']} |")  # fmt: skip
    if lv["missing"]:
        lines += ["", f"LiteLLM is missing from this run: {lv['missing']}"]
    if lv["install_s"] is not None:
        lines += ["", f"LiteLLM was installed into {LITELLM_VENV} by this run in {lv['install_s']:.0f} s."]
    met = {True: "**met**", False: "**not met**", None: "**not measured** (no LiteLLM)"}
    ratio = t["tandem_over_litellm_rps"]
    lines += [
        "", "Targets:", "",
        f"- tandem's added p50 at concurrency 1 (tandem − direct) ≤ 1 ms: {t['tandem_added_p50_ms']:.3f} ms, "
        f"{met[t['added_p50_met']]}.",
        f"- tandem ≥ {RPS_TARGET:g}× LiteLLM requests/s at concurrency {s['concurrency']}: "
        + ("" if ratio is None else f"{ratio:.2f}×, ") + f"{met[t['rps_ratio_met']]}.",
    ]  # fmt: skip
    if (prof := result.get("profile")) is not None:
        cpu = prof.get("cpu_us", {})
        lines += [
            "", "## Where a request's time goes", "",
            f"The gateway app driven in-process (no HTTP server, no second process) against the instant backend: "
            f"{prof['cpu_ms']:.3f} ms of CPU per request (least of batches of 100; median batch "
            f"{prof['median_batch_cpu_ms']:.3f} ms), backend included. Python frame entries per request by the layer "
            "that defines the function (deterministic): calls, and coroutine resumptions, since each await that "
            "suspends re-enters every frame of the ASGI chain above it; uvicorn's own protocol is not counted. CPU µs: "
            "the least batch's CPU per request split in the shares of self time cProfile (on the CPU clock) gives "
            "each layer, a C function's time counted to the layers that called it; the profiler's own cost per call "
            "tilts the split towards layers of many small Python calls.", "",
            "| layer | frame entries per request | CPU µs per request |", "|---|---|---|",
            *[f"| {name} | {n:g} | {cpu.get(name, 0.0):.0f} |" for name, n in prof["calls"].items()],
            f"| total | {sum(prof['calls'].values()):g} | {sum(cpu.values()):.0f} |",
        ]  # fmt: skip
    return "\n".join(lines) + "\n"

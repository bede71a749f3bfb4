"""Soak test of the gateway as real clients use it: `tandem serve` in its own process, many short requests
over every pipeline (chat streamed and not, /v1/completions), clients that drop their stream or give up
after 1 s, then SIGTERM with requests in flight.

Every request ends in one outcome: 200, 499 (the client went away: it dropped its stream or its deadline
passed), 503, 504 or other (status code, in-band error type or exception name). A hang is a request with
neither a complete answer nor an error within the server's request deadline + 5 s. The soak itself is
bounded: each request by its deadline, the run by a time budget, and it stops sending once 2 × concurrency
requests in a row hung (the gateway is wedged; more would only cost time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from tqdm import tqdm

from tandemlm.bench.gateway import free_port, percentile, server
from tandemlm.config import PACKAGED, parse_config
from tandemlm.errors import ConfigError

OUTCOMES = ("200", "499", "503", "504", "other")
DROP_SHARE, DEADLINE_SHARE = 0.10, 0.05
CLIENT_DEADLINE_S = 1.0
HANG_GRACE_S = 5.0  # a request with no answer and no error this long after the server's own deadline hangs
KILL_AFTER_S = 30.0
SHUTDOWN_TARGET_S = 10.0
# in-band SSE errors carry OpenAI's error type (server/errors.py `error_response`); the status it stands for
ERROR_TYPE_STATUS = {"server_busy": 503, "timeout": 504, "upstream_error": 502, "server_error": 500,
                     "invalid_request_error": 400, "authentication_error": 401, "cancelled": 499}  # fmt: skip
Endpoint = Literal["chat", "chat-stream", "text", "text-stream"]
ENDPOINTS: tuple[Endpoint, ...] = ("chat-stream", "chat", "text", "text-stream")
ENDPOINT_WEIGHTS = (4, 3, 2, 1)
PROMPTS = (
    "What is {a} plus {b}?", "Name a colour that starts with {letter}.", "Give one word that rhymes with {word}.",
    "Say hello to {name} in one short sentence.", "Count from {a} to {b}.", "What is the capital of {country}?",
    "Translate '{word}' into French.", "Give a synonym for {word}.", "Is {a} an even number? Answer yes or no.",
    "Write a greeting to {name}, whose e-mail is {first}@example.com.",
)  # fmt: skip
TEXT_PROMPTS = ("The capital of {country} is", "{a} + {b} =", "def add_{a}(x):\n    return", "Dear {name},\n")
_FILL = {
    "word": ("cat", "light", "river", "green", "stone", "happy"), "letter": tuple("BCGPRT"),
    "name": ("Alice Martin", "Bob Chen", "Carla Diaz", "Dev Patel"), "country": ("France", "Japan", "Peru", "Kenya"),
}  # fmt: skip


@dataclass(frozen=True)
class Shot:
    """One planned request. `drop_after` > 0: the client reads that many events of its stream, then hangs up."""

    pipeline: str
    endpoint: Endpoint
    prompt: str
    max_tokens: int
    client: Literal["normal", "drop", "deadline"] = "normal"
    drop_after: int = 0

    @property
    def stream(self) -> bool:
        return self.endpoint.endswith("-stream")

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.pipeline, "max_tokens": self.max_tokens, "temperature": 0.0,
                                "stream": self.stream}  # fmt: skip
        if self.endpoint.startswith("chat"):
            return body | {"messages": [{"role": "user", "content": self.prompt}]}
        return body | {"prompt": self.prompt}

    @property
    def path(self) -> str:
        return "/v1/chat/completions" if self.endpoint.startswith("chat") else "/v1/completions"


@dataclass(frozen=True)
class Outcome:
    """How one request ended: one of OUTCOMES, what exactly (status, error type, exception), and how long."""

    outcome: str
    detail: str
    seconds: float = 0.0
    hang: bool = False
    unexpected_5xx: bool = False
    pipeline: str = ""
    client: str = "normal"


def plan(n: int, pipelines: Sequence[str], seed: int, mixed_clients: bool = True) -> list[Shot]:
    """n requests round-robin over the pipelines; endpoint, prompt and client behaviour drawn from `seed`."""
    rng = random.Random(seed)
    shots = []
    for i in range(n):
        roll = rng.random() if mixed_clients else 1.0
        client: Literal["normal", "drop", "deadline"] = (
            "drop" if roll < DROP_SHARE else "deadline" if roll < DROP_SHARE + DEADLINE_SHARE else "normal"
        )
        endpoint = rng.choices(ENDPOINTS, ENDPOINT_WEIGHTS)[0]
        if client == "drop" and not endpoint.endswith("-stream"):
            endpoint = "chat-stream" if endpoint == "chat" else "text-stream"
        templates = TEXT_PROMPTS if endpoint.startswith("text") else PROMPTS
        words = {k: rng.choice(v) for k, v in _FILL.items()}
        numbers = {"a": rng.randint(1, 99), "b": rng.randint(1, 99)}
        prompt = rng.choice(templates).format(first=words["name"].split()[0].lower(), **words, **numbers)
        shots.append(Shot(pipelines[i % len(pipelines)], endpoint, prompt, rng.choice((16, 24, 32)), client,
                          rng.randint(1, 3) if client == "drop" else 0))  # fmt: skip
    return shots


# ---- classification -----------------------------------------------------------------------------------


def from_status(status: int, detail: str | None = None) -> Outcome:
    """The outcome of an HTTP status a client read; a 5xx other than 503 and 504 is unexpected. A 499 the
    client reads is not its own choice (a client that went away reads nothing): the server cancelled it."""
    key = str(status) if str(status) in OUTCOMES and status != 499 else "other"
    return Outcome(key, detail or str(status), unexpected_5xx=status >= 500 and status not in (503, 504))


def from_error_event(event: dict[str, Any]) -> Outcome:
    """The outcome of an in-band error event of a stream (`data: {"error": {...}}` after a 200)."""
    kind = str((event.get("error") or {}).get("type", "unknown"))
    return from_status(ERROR_TYPE_STATUS.get(kind, 500), f"in-band {kind}")


def timed_out(shot: Shot) -> Outcome:
    """No answer within the client's limit: a deadline client chose to go away; anyone else saw a hang."""
    if shot.client == "deadline":
        return Outcome("499", "client deadline")
    return Outcome("other", "hang", hang=True)


class SseReader:
    """Classifies a stream line by line: [DONE] is 200, an error event its status, and once `drop_after` data
    events were read a 499 (the client hangs up). `feed` answers None while the stream needs more lines."""

    def __init__(self, drop_after: int = 0) -> None:
        self.drop_after = drop_after
        self.events = 0

    def feed(self, line: str) -> Outcome | None:
        if not line.startswith("data:"):
            return None
        data = line[5:].strip()
        if data == "[DONE]":
            return Outcome("200", "200")
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            return Outcome("other", "bad event")
        if isinstance(event, dict) and "error" in event:
            return from_error_event(event)
        self.events += 1
        if self.drop_after and self.events >= self.drop_after:
            return Outcome("499", "dropped stream")
        return None


# ---- metrics ------------------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> tuple[dict[str, list[tuple[dict[str, str], float]]], set[str]]:
    """Samples of a Prometheus text exposition by series name, and the metric families it declares (# TYPE)."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    declared: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
        elif line and not line.startswith("#") and (m := _SAMPLE.match(line)):
            labels = {k: v.encode().decode("unicode_escape") for k, v in _LABEL.findall(m.group(2) or "")}
            try:
                samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
            except ValueError:
                continue
    return samples, declared


def _present(name: str, samples: dict[str, Any], declared: set[str]) -> bool:
    return name in samples or name.removesuffix("_total") in declared


def model_metrics(text: str, wall_s: float) -> tuple[int | None, dict[str, float] | None]:
    """From /metrics: calls to cloud models (sum over models), and each model's busy share of `wall_s`.
    None for a series the gateway does not export."""
    samples, declared = parse_prometheus(text)
    calls, busy = "tandem_model_calls_total", "tandem_model_busy_seconds_total"
    cloud = (round(sum(v for labels, v in samples.get(calls, []) if labels.get("location") == "cloud"))
             if _present(calls, samples, declared) else None)  # fmt: skip
    if not _present(busy, samples, declared):
        return cloud, None
    seconds: dict[str, float] = {}
    for labels, v in samples.get(busy, []):
        seconds[labels.get("model", "")] = seconds.get(labels.get("model", ""), 0.0) + v
    return cloud, {m: round(s / wall_s, 4) if wall_s > 0 else 0.0 for m, s in sorted(seconds.items())}


_LOGGED = re.compile(r"^[ |+]*((?:[A-Za-z_][\w.]*)?(?:Error|Exception|ExceptionGroup|Exit|Interrupt))(?::|$)", re.M)


def log_errors(text: str) -> dict[str, int]:
    """Exception classes named in a server log (tracebacks' last lines, exception groups' members), counted."""
    return dict(Counter(m.rsplit(".", 1)[-1] for m in _LOGGED.findall(text)).most_common())


def count_lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except FileNotFoundError:
        return 0


# ---- the clients --------------------------------------------------------------------------------------


async def send(client: Any, shot: Shot, hang_after_s: float) -> Outcome:
    """One request as its client behaves; never raises, never outlives its limit."""
    import httpx

    limit = CLIENT_DEADLINE_S if shot.client == "deadline" else hang_after_s
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(limit):
            outcome = await _exchange(client, shot, limit)
    except (TimeoutError, httpx.TimeoutException):
        outcome = timed_out(shot)
    except httpx.HTTPError as err:
        outcome = Outcome("other", type(err).__name__)
    except (OSError, ValueError) as err:  # a body that is not JSON, a socket error outside httpx's wrapping
        outcome = Outcome("other", type(err).__name__)
    return Outcome(outcome.outcome, outcome.detail, time.perf_counter() - t0, outcome.hang, outcome.unexpected_5xx,
                   shot.pipeline, shot.client)  # fmt: skip


async def _exchange(client: Any, shot: Shot, limit: float) -> Outcome:
    if not shot.stream:
        response = await client.post(shot.path, json=shot.body(), timeout=limit)
        if response.status_code != 200:
            return from_status(response.status_code)
        body = response.json()
        ok = isinstance(body, dict) and body.get("choices")
        return Outcome("200", "200") if ok else Outcome("other", "200 without choices")
    async with client.stream("POST", shot.path, json=shot.body(), timeout=limit) as response:
        if response.status_code != 200:
            await response.aread()
            return from_status(response.status_code)
        reader = SseReader(shot.drop_after)
        async for line in response.aiter_lines():
            if (outcome := reader.feed(line)) is not None:
                return outcome  # leaving the block unread closes the connection: a dropped client hangs up
        return Outcome("other", "stream cut short")


async def _drive(
    client: Any, shots: list[Shot], concurrency: int, hang_after_s: float, budget_s: float, bar: tqdm[Any]
) -> tuple[list[Outcome], str | None]:
    """Send `shots` from `concurrency` closed-loop clients; stop early when the budget is spent or it is wedged."""
    results: list[Outcome] = []
    queue = iter(shots)
    stop: str | None = None
    in_a_row = 0
    end = time.monotonic() + budget_s

    async def worker() -> None:
        nonlocal stop, in_a_row
        for shot in queue:
            if stop is not None:
                return
            outcome = await send(client, shot, hang_after_s)
            results.append(outcome)
            bar.update()
            in_a_row = in_a_row + 1 if outcome.hang else 0
            if in_a_row >= 2 * concurrency:
                stop = stop or f"stopped sending: {in_a_row} requests in a row hung (the gateway is wedged)"
            elif time.monotonic() > end:
                stop = stop or f"stopped sending: the run's budget of {budget_s:.0f} s was spent"

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results, stop


async def _settled_metrics(client: Any, ledger: Path) -> tuple[str, int]:
    """/metrics and the ledger's line count once they stop moving (a dropped stream's work may still finish);
    no metrics ("") when the gateway does not answer."""
    import httpx

    last: tuple[object, ...] | None = None
    text, lines = "", count_lines(ledger)
    for _ in range(20):
        try:
            text, lines = (await client.get("/metrics", timeout=10)).text, count_lines(ledger)
        except httpx.HTTPError:
            return "", lines
        samples, _ = parse_prometheus(text)
        now = (lines, model_metrics(text, 1.0)[0], sum(v for _, v in samples.get("tandem_answers_total", [])))
        if now == last:
            break
        last = now
        await asyncio.sleep(0.5)
    return text, lines


async def _session(
    url: str, key: str, proc: subprocess.Popen[bytes], ledger: Path, n: int, concurrency: int, seed: int,
    hang_after_s: float, budget_s: float,
) -> dict[str, Any]:  # fmt: skip
    import httpx

    headers = {"authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=2 * concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=hang_after_s, limits=limits) as client:
        pipelines = [m["id"] for m in (await client.get("/v1/models", timeout=10)).json()["data"]]
        shots = plan(n, pipelines, seed)
        t0 = time.perf_counter()
        with tqdm(total=n, desc="soak", file=sys.stderr, mininterval=2.0) as bar:
            soak, stopped = await _drive(client, shots, concurrency, hang_after_s, budget_s, bar)
        text, ledger_lines = await _settled_metrics(client, ledger)
        wall_s = time.perf_counter() - t0
        cloud_calls, busy_share = model_metrics(text, wall_s)
        print(f"soak: {len(soak)} requests in {wall_s:.0f} s; now SIGTERM with {concurrency} more in flight",
              file=sys.stderr)  # fmt: skip
        wave = plan(concurrency, pipelines, seed + 1, mixed_clients=False)
        tasks = [asyncio.create_task(send(client, shot, hang_after_s)) for shot in wave]
        await asyncio.wait(tasks, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)  # fast models: before they end
        in_flight = sum(not t.done() for t in tasks)
        early = proc.poll()  # the server died during the soak: there is no shutdown to time
        shutdown_s, killed = await _terminate(proc) if early is None else (None, False)
        last = list(await asyncio.gather(*tasks))
    return {"pipelines": pipelines, "soak": soak, "wave": last, "stopped": stopped, "wall_s": wall_s,
            "cloud_calls": cloud_calls, "busy_share": busy_share, "ledger_lines": ledger_lines,
            "shutdown_s": shutdown_s, "killed": killed, "in_flight_at_sigterm": in_flight,
            "exit_code": proc.returncode, "exited_before_sigterm": early is not None}  # fmt: skip


async def _terminate(proc: subprocess.Popen[bytes]) -> tuple[float, bool]:
    """SIGTERM, as a supervisor sends it; seconds until the process exited, and whether it had to be killed."""
    t0 = time.perf_counter()
    os.kill(proc.pid, signal.SIGTERM)
    try:
        await asyncio.to_thread(proc.wait, KILL_AFTER_S)
        return time.perf_counter() - t0, False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):  # it may exit just now
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 10)
        return time.perf_counter() - t0, True


# ---- the run and its report ---------------------------------------------------------------------------


def soak_config(source: str, ledger: Path, request_timeout_s: float, key: str) -> str:
    """The named config's YAML with the soak's ledger, request deadline and API key (validated)."""
    path = Path(source).expanduser()
    if source in PACKAGED and not path.exists():
        text = resources.files("tandemlm.data").joinpath(f"{source}.yaml").read_text(encoding="utf-8")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from err
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with 'models' and 'pipelines' at the top level")
    data["ledger"] = str(ledger)
    data["server"] = {**(data.get("server") or {}), "request_timeout_s": request_timeout_s, "api_keys": [key]}
    out = yaml.safe_dump(data, sort_keys=False)
    parse_config(out, f"{source} (soak)")
    return out


def run_soak(
    config: str = "tiny", requests: int = 2000, concurrency: int = 16, seed: int = 0, request_timeout_s: float = 15.0,
    budget_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Start `tandem serve`, soak it, SIGTERM it; the JSON-ready result with its targets."""
    budget = budget_s if budget_s is not None else max(300.0, 1.5 * requests)
    hang_after_s = request_timeout_s + HANG_GRACE_S
    key = f"sk-{secrets.token_hex(16)}"
    started, load = datetime.now(timezone.utc), [os.getloadavg()[0]]  # noqa: UP017 (readable on 3.11 too)
    with tempfile.TemporaryDirectory(prefix="tandem-soak-") as tmp:
        ledger, log = Path(tmp) / "egress.jsonl", Path(tmp) / "serve.log"
        (cfg := Path(tmp) / "soak.yaml").write_text(soak_config(config, ledger, request_timeout_s, key))
        port = free_port()
        argv = [sys.executable, "-m", "tandemlm.cli", "serve", "-c", str(cfg), "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning"]  # fmt: skip
        print(f"soak: starting tandem serve on 127.0.0.1:{port} with config {config}", file=sys.stderr)
        t0 = time.perf_counter()
        try:
            with server(argv, f"http://127.0.0.1:{port}/readyz", log) as proc:
                ready_s = time.perf_counter() - t0
                got = asyncio.run(_session(f"http://127.0.0.1:{port}", key, proc, ledger, requests, concurrency, seed,
                                           hang_after_s, budget))  # fmt: skip
        finally:
            logged = log.read_text(errors="replace") if log.exists() else ""
    result = summarize(got["soak"], got["wave"], requests)
    machine = {"nproc": os.cpu_count(), "load_1m": [*load, os.getloadavg()[0]], "revision": _revision()}
    result |= {
        "command": f"tandem bench soak --config {config} --requests {requests} --concurrency {concurrency} "
                   f"--seed {seed}",
        "date": started.isoformat(timespec="seconds"), "config": config, "concurrency": concurrency, "seed": seed,
        "machine": machine, "request_timeout_s": request_timeout_s, "hang_after_s": hang_after_s,
        "ready_s": round(ready_s, 2),
        "pipelines": got["pipelines"], "wall_s": round(got["wall_s"], 2), "stopped": got["stopped"],
        "ledger_lines": got["ledger_lines"], "cloud_calls": got["cloud_calls"], "busy_share": got["busy_share"],
        "shutdown_s": None if got["shutdown_s"] is None else round(got["shutdown_s"], 2), "killed": got["killed"],
        "exit_code": got["exit_code"], "exited_before_sigterm": got["exited_before_sigterm"],
        "in_flight_at_sigterm": got["in_flight_at_sigterm"], "server_errors": log_errors(logged),
        "server_log_tail": logged[-2000:],
    }  # fmt: skip
    result["targets"] = targets(result)
    return result


def _revision() -> str | None:
    """The checkout's commit, `-dirty` with uncommitted changes (None outside a git checkout)."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("-dirty" if dirty else "")


def summarize(soak: list[Outcome], wave: list[Outcome], planned: int) -> dict[str, Any]:
    """Counts by outcome (soak, shutdown wave, all), hangs, unexpected 5xx, latency of 200s, per pipeline."""
    every = soak + wave

    def counts(outcomes: list[Outcome]) -> dict[str, int]:
        found = Counter(o.outcome for o in outcomes)
        return {k: found.get(k, 0) for k in OUTCOMES}

    ok = [o.seconds for o in every if o.outcome == "200"]
    by_pipeline = {}
    for name in dict.fromkeys(o.pipeline for o in every):
        mine = [o for o in every if o.pipeline == name]
        fast = [o.seconds for o in mine if o.outcome == "200"]
        by_pipeline[name] = counts(mine) | {"requests": len(mine), "hangs": sum(o.hang for o in mine),
                                            "p50_s": round(percentile(fast, 0.5), 3) if fast else None}  # fmt: skip
    return {
        "requests": planned + len(wave), "soak_requests": planned, "shutdown_wave": len(wave),
        "outcomes": counts(every), "outcomes_soak": counts(soak), "outcomes_shutdown_wave": counts(wave),
        "other": dict(Counter(o.detail for o in every if o.outcome == "other").most_common()),
        "other_shutdown_wave": dict(Counter(o.detail for o in wave if o.outcome == "other").most_common()),
        "details": dict(Counter(o.detail for o in every).most_common()),
        "hangs": sum(o.hang for o in every), "unexpected_5xx": sum(o.unexpected_5xx for o in every),
        "p50_s": round(percentile(ok, 0.5), 3) if ok else None, "p99_s": round(percentile(ok, 0.99), 3) if ok else None,
        "by_pipeline": by_pipeline,
        "by_client": {c: dict(Counter(o.detail for o in every if o.client == c).most_common())
                      for c in ("normal", "drop", "deadline")},
    }  # fmt: skip


def targets(result: dict[str, Any]) -> dict[str, bool | None]:
    """Whether each target held; None where it could not be measured (the gateway exports no such series)."""
    cloud = result.get("cloud_calls")
    return {
        "no_hangs": result["hangs"] == 0,
        "no_unexpected_5xx": result["unexpected_5xx"] == 0,
        "all_accounted": sum(result["outcomes"].values()) == result["requests"],
        "ledger_matches_cloud_calls": None if cloud is None else result["ledger_lines"] == cloud,
        "shutdown_under_10s": result["shutdown_s"] is not None
        and not result["killed"]
        and result["shutdown_s"] < SHUTDOWN_TARGET_S,
    }


def failed(result: dict[str, Any]) -> list[str]:
    """The targets that were missed (not those that could not be measured)."""
    return [name for name, met in result["targets"].items() if met is False]


def to_markdown(result: dict[str, Any], command: str | None = None) -> str:
    """The report: command and date, outcomes by phase and pipeline, metrics, shutdown, PASS/FAIL per target."""
    r, t = result, result["targets"]
    lines = [
        "# Gateway soak: `tandem serve` under real clients", "",
        f"Command: `{command or r['command']}`", "", f"Date: {r['date']}", "",
        f"Config `{r['config']}` (pipelines {', '.join(r['pipelines'])}), request_timeout_s "
        f"{r['request_timeout_s']:g}. "
        f"{r['soak_requests']} requests round-robin over the pipelines at concurrency {r['concurrency']} (seed "
        f"{r['seed']}): chat streamed and not, /v1/completions; {DROP_SHARE:.0%} of clients drop their stream after "
        f"1–3 events, {DEADLINE_SHARE:.0%} give up after {CLIENT_DEADLINE_S:g} s. Then {r['shutdown_wave']} more and "
        f"SIGTERM 0.5 s later ({r['in_flight_at_sigterm']} still in flight). A hang: no complete answer and no "
        f"error within {r['hang_after_s']:g} s. Server ready after {r['ready_s']:.1f} s; soak {r['wall_s']:.0f} s.",
        "", f"Machine: nproc {r['machine']['nproc']}, 1-minute load {r['machine']['load_1m'][0]:.2f} before, "
        f"{r['machine']['load_1m'][1]:.2f} after; tandemlm at {r['machine']['revision'] or 'an unknown revision'}.",
        "", "| outcome | soak | shutdown wave | all |", "|---|---|---|---|",
    ]  # fmt: skip
    for k in OUTCOMES:
        lines.append(f"| {k} | {r['outcomes_soak'][k]} | {r['outcomes_shutdown_wave'][k]} | {r['outcomes'][k]} |")
    lines.append(f"| **requests** | {r['soak_requests']} | {r['shutdown_wave']} | {r['requests']} |")
    if r["other"]:
        wave = ", ".join(f"{d} × {n}" for d, n in r["other_shutdown_wave"].items())
        lines += ["", "Other: " + ", ".join(f"{d} × {n}" for d, n in r["other"].items())
                  + (f" (shutdown wave: {wave})." if wave else ".")]  # fmt: skip
    clients = [f"{c}: " + ", ".join(f"{d} × {n}" for d, n in got.items()) for c, got in r["by_client"].items() if got]
    lines += ["", "By client: " + "; ".join(clients) + "."]
    if r.get("server_errors"):
        lines += ["", "Errors in the server's log: " + ", ".join(f"{e} × {n}" for e, n in r["server_errors"].items())
                  + "."]  # fmt: skip
    if r.get("stopped"):
        lines += ["", f"**{r['stopped']}**; the rest were not sent."]
    lines += ["", "| pipeline | requests | 200 | 499 | 503 | 504 | other | hangs | p50 s of 200s |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, p in r["by_pipeline"].items():
        p50 = "–" if p["p50_s"] is None else f"{p['p50_s']:.3f}"
        lines.append(f"| {name} | {p['requests']} | " + " | ".join(str(p[k]) for k in OUTCOMES) + f" | {p['hangs']} | "
                     f"{p50} |")  # fmt: skip
    busy = r["busy_share"]
    busy_text = "not exported" if busy is None else ", ".join(f"{m} {s:.0%}" for m, s in busy.items()) or "none"
    lat = "–" if r["p50_s"] is None else f"p50 {r['p50_s']:.3f} s, p99 {r['p99_s']:.3f} s"
    lines += [
        "", f"- Latency of 200s: {lat}.",
        f"- Cloud model calls (/metrics): {'not exported' if r['cloud_calls'] is None else r['cloud_calls']}; "
        f"egress ledger lines: {r['ledger_lines']}.",
        f"- Busy share of the soak's wall time per model: {busy_text}.",
        f"- SIGTERM to exit: {_shutdown(r)}, exit code {r['exit_code']}.",
    ]  # fmt: skip
    ledger = "not measured (no cloud call series)" if t["ledger_matches_cloud_calls"] is None else None
    rows = [
        ("0 hangs", str(r["hangs"]), t["no_hangs"]),
        ("0 unexpected 5xx", str(r["unexpected_5xx"]), t["no_unexpected_5xx"]),
        ("every request accounted for", f"{sum(r['outcomes'].values())} of {r['requests']}", t["all_accounted"]),
        ("ledger lines == cloud calls", ledger or f"{r['ledger_lines']} vs {r['cloud_calls']}",
         t["ledger_matches_cloud_calls"]),
        (f"shutdown < {SHUTDOWN_TARGET_S:g} s", _shutdown(r), t["shutdown_under_10s"]),
    ]  # fmt: skip
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    verdict = {True: "PASS", False: "**FAIL**", None: "not measured"}
    lines += [f"| {name} | {value} | {verdict[met]} |" for name, value, met in rows]
    if failed(r) and r.get("server_log_tail", "").strip():
        tail = "\n".join(r["server_log_tail"].strip().splitlines()[-15:])
        lines += ["", "Server log (tail):", "", "```", tail, "```"]
    return "\n".join(lines) + "\n"


def _shutdown(r: dict[str, Any]) -> str:
    if r["shutdown_s"] is None:
        return "**the server had already exited**"
    return f"{r['shutdown_s']:.2f} s" + (f" (**killed** after {KILL_AFTER_S:g} s)" if r["killed"] else "")

"""The gateway's execution model over HTTP: deadlines on remote-only strategies, start-up loading, and the
egress ledger written where bytes leave, through the gateway and the CLI alike."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.errors import RemoteError
from tandemlm.models import ENGINES
from tandemlm.server import create_app

Serve = Callable[[FastAPI], str]
CHAT = {"messages": [{"role": "user", "content": "a question"}], "max_tokens": 8}


def test_a_deadline_bounds_a_strategy_built_only_from_remote_models(serve: Serve, tmp_path: Path) -> None:
    upstream_config = "models:\n  small: {engine: scripted, location: edge}\npipelines:\n  edge: {model: small}\n"
    slow = ScriptedModel("slow answer", name="small", delay_s=5.0)
    upstream = serve(create_app(Runtime(parse_config(upstream_config), models={"small": slow})))
    ledger = tmp_path / "egress.jsonl"
    config = f"""
models:
  a: {{engine: openai, model: edge, base_url: "{upstream}/v1", location: cloud, max_retries: 0}}
  b: {{engine: openai, model: edge, base_url: "{upstream}/v1", location: cloud, max_retries: 0}}
pipelines:
  both-remote:
    strategy: {{cascade: {{small: a, large: b, threshold: 0.5}}}}
ledger: {ledger}
server: {{request_timeout_s: 0.5}}
"""
    url = serve(create_app(Runtime(parse_config(config))))
    started = time.monotonic()
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "both-remote", **CHAT}, timeout=30)
    took = time.monotonic() - started
    assert r.status_code == 504 and r.json()["error"]["code"] == "request_timeout"
    assert took < 2.5  # not the upstream's 5 s
    (line,) = [json.loads(x) for x in ledger.read_text().splitlines()]  # the call timed out after its bytes left
    assert line["model"] == "a" and json.loads(line["text"])["messages"] == CHAT["messages"]


def test_the_ledger_holds_failed_cloud_calls_through_the_gateway(serve: Serve, tmp_path: Path) -> None:
    ledger = tmp_path / "egress.jsonl"
    config = f"""
models:
  small: {{engine: scripted, replies: "edge says hi", location: edge}}
  big: {{engine: scripted, replies: "unused", location: cloud}}
pipelines:
  cloud: {{model: big}}
ledger: {ledger}
"""
    broken = ScriptedModel(RemoteError("upstream said 502", status=502), name="big", location="cloud")
    url = serve(create_app(Runtime(parse_config(config), models={"big": broken})))
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "cloud", **CHAT}, timeout=30)
    assert r.status_code == 502
    (line,) = [json.loads(x) for x in ledger.read_text().splitlines()]
    assert json.loads(line["text"]) == CHAT["messages"] and line["model"] == "big"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'tandem_model_calls_total{location="cloud",model="big"} 1.0' in metrics


def test_requests_during_start_up_get_503_loading_and_each_model_loads_once(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []
    go = threading.Event()
    real = ENGINES["scripted"]

    def slow_load(**options: object) -> ScriptedModel:
        loads.append(str(options["name"]))
        go.wait(10)
        return real(**options)  # type: ignore[no-any-return]

    monkeypatch.setitem(ENGINES, "scripted", slow_load)
    config = """
models:
  small: {engine: scripted, replies: "hi", location: edge}
pipelines:
  edge: {model: small}
  again: {model: small}
server: {retry_after_s: 2}
"""
    url = serve(create_app(Runtime(parse_config(config))), wait_ready=False)  # type: ignore[call-arg]
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "edge", **CHAT}, timeout=10)
    assert r.status_code == 503 and r.json()["error"]["code"] == "loading" and r.headers["retry-after"] == "2"
    assert httpx.get(f"{url}/readyz").json()["status"] == "loading"
    assert httpx.post(f"{url}/v1/chat/completions", json={"model": "nope", **CHAT}).status_code == 404
    go.set()
    deadline = time.monotonic() + 10
    while httpx.get(f"{url}/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    for pipeline in ("edge", "again"):
        assert httpx.post(f"{url}/v1/chat/completions", json={"model": pipeline, **CHAT}).status_code == 200
    assert loads == ["small"]


def test_wait_while_loading_holds_the_request_until_the_models_are_in(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ENGINES["scripted"]
    monkeypatch.setitem(ENGINES, "scripted", lambda **options: (time.sleep(0.5), real(**options))[1])
    config = "models:\n  small: {engine: scripted, replies: hi}\npipelines:\n  edge: {model: small}\n"
    config += "server: {wait_while_loading: true}\n"
    url = serve(create_app(Runtime(parse_config(config))), wait_ready=False)  # type: ignore[call-arg]
    r = httpx.post(f"{url}/v1/chat/completions", json={"model": "edge", **CHAT}, timeout=10)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "hi"


def test_counting_a_long_prompt_never_stalls_the_event_loop(serve: Serve) -> None:
    """A model with a context window counts the prompt's tokens before it answers; for a long prompt that is
    seconds of CPU, done off the event loop: /healthz answers meanwhile, and the check still refuses it."""
    config = "models:\n  small: {engine: scripted, location: edge}\npipelines:\n  edge: {model: small}\n"
    model = ScriptedModel("hi", name="small", context_length=1000)
    url = serve(create_app(Runtime(parse_config(config), models={"small": model})))
    prompt = {"model": "edge", "messages": [{"role": "user", "content": "hello world " * 100_000}]}  # 1.2 MB
    answer: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answer.append(httpx.post(f"{url}/v1/chat/completions", json=prompt,
                                                                        timeout=60)))  # fmt: skip
    started = time.monotonic()
    poster.start()
    waits = []
    while poster.is_alive():
        t0 = time.monotonic()
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
        waits.append(time.monotonic() - t0)
        time.sleep(0.02)
    took = time.monotonic() - started
    (r,) = answer
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    assert took > 0.5 and len(waits) >= 5  # the count took a while, and /healthz was asked all along
    assert max(waits) < min(0.5, took / 2)

"""The soak: its plan, how it classifies outcomes and reads /metrics, its report; a scripted gateway end to end
in seconds, and the tiny real config (slow)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from tandemlm.bench import soak
from tandemlm.bench.soak import (
    OUTCOMES,
    Outcome,
    Shot,
    SseReader,
    failed,
    from_status,
    model_metrics,
    plan,
    soak_config,
    summarize,
    targets,
    timed_out,
    to_markdown,
)
from tandemlm.cli import main
from tandemlm.config import parse_config

PIPELINES = ["edge", "cloud", "cascade"]


def test_plan_covers_every_pipeline_and_mixes_clients_and_endpoints() -> None:
    shots = plan(2000, PIPELINES, seed=7)
    assert shots == plan(2000, PIPELINES, seed=7) and shots != plan(2000, PIPELINES, seed=8)
    assert Counter(s.pipeline for s in shots) == {"edge": 667, "cloud": 667, "cascade": 666}
    clients = Counter(s.client for s in shots)
    assert 160 <= clients["drop"] <= 240 and 70 <= clients["deadline"] <= 130
    assert set(Counter(s.endpoint for s in shots)) == {"chat", "chat-stream", "text", "text-stream"}
    drops = [s for s in shots if s.client == "drop"]
    assert all(s.stream and 1 <= s.drop_after <= 3 for s in drops)
    assert all(s.drop_after == 0 for s in shots if s.client != "drop")
    assert {s.max_tokens for s in shots} == {16, 24, 32}
    assert len({s.prompt for s in shots}) > 500
    assert {s.client for s in plan(50, PIPELINES, 0, mixed_clients=False)} == {"normal"}


def test_shot_bodies_follow_the_openai_wire_format() -> None:
    chat = Shot("edge", "chat-stream", "Hi", 16)
    assert (chat.path, chat.stream) == ("/v1/chat/completions", True)
    assert chat.body() == {"model": "edge", "max_tokens": 16, "temperature": 0.0, "stream": True,
                           "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    text = Shot("cloud", "text", "2 + 2 =", 24)
    assert (text.path, text.body()["prompt"], text.body()["stream"]) == ("/v1/completions", "2 + 2 =", False)


@pytest.mark.parametrize(
    ("status", "outcome", "unexpected"),
    [(200, "200", False), (499, "other", False), (503, "503", False), (504, "504", False), (500, "other", True),
     (502, "other", True), (404, "other", False), (401, "other", False)],
)  # fmt: skip
def test_status_codes_map_to_outcomes(status: int, outcome: str, unexpected: bool) -> None:
    """499 is the client's own choice only when it went away; a 499 it reads is the server cancelling it."""
    got = from_status(status)
    assert (got.outcome, got.detail, got.unexpected_5xx) == (outcome, str(status), unexpected)


def _sse(*events: dict[str, Any] | str) -> list[str]:
    return [f"data: {e if isinstance(e, str) else json.dumps(e)}" for e in events]


def _feed(reader: SseReader, lines: list[str]) -> Outcome | None:
    for line in ["", ": keep-alive", *lines]:
        if (got := reader.feed(line)) is not None:
            return got
    return None


def _error(kind: str) -> dict[str, Any]:
    return {"error": {"message": "x", "type": kind, "param": None, "code": None}}


def test_a_stream_is_classified_by_its_events() -> None:
    piece = {"choices": [{"delta": {"content": "hi"}}]}
    assert _feed(SseReader(), _sse(piece, piece, "[DONE]")) == Outcome("200", "200")
    assert _feed(SseReader(), _sse(piece, piece)) is None  # not finished: the caller decides (cut short)
    dropped = SseReader(drop_after=2)
    assert _feed(dropped, _sse(piece, piece, piece, "[DONE]")) == Outcome("499", "dropped stream")
    assert dropped.events == 2
    assert _feed(SseReader(drop_after=3), _sse(piece, "[DONE]")) == Outcome("200", "200")  # done before the drop
    assert _feed(SseReader(), ["data: {not json"]) == Outcome("other", "bad event")


@pytest.mark.parametrize(
    ("kind", "outcome", "unexpected"),
    [("timeout", "504", False), ("server_busy", "503", False), ("server_error", "other", True),
     ("upstream_error", "other", True), ("invalid_request_error", "other", False), ("cancelled", "other", False),
     ("something_new", "other", True)],
)  # fmt: skip
def test_in_band_errors_count_as_their_status(kind: str, outcome: str, unexpected: bool) -> None:
    got = _feed(SseReader(), _sse({"choices": []}, _error(kind)))
    assert got is not None
    assert (got.outcome, got.detail, got.unexpected_5xx) == (outcome, f"in-band {kind}", unexpected)


def test_no_answer_is_a_choice_for_a_deadline_client_and_a_hang_for_anyone_else() -> None:
    assert timed_out(Shot("edge", "chat", "x", 16, "deadline")) == Outcome("499", "client deadline")
    assert timed_out(Shot("edge", "chat", "x", 16)) == Outcome("other", "hang", hang=True)
    assert timed_out(Shot("edge", "chat-stream", "x", 16, "drop", 2)).hang  # it never got its first events


def _client(handler: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://gateway")


def _send(handler: Any, shot: Shot, hang_after_s: float = 5.0) -> Outcome:
    async def go() -> Outcome:
        async with _client(handler) as client:
            return await soak.send(client, shot, hang_after_s)

    return asyncio.run(go())


class _Stalls(httpx.AsyncByteStream):
    """A stream that sends its first events, then nothing."""

    async def __aiter__(self) -> Any:
        yield b'data: {"choices": []}\n\n'
        await asyncio.sleep(30)


def test_send_reports_answers_errors_hangs_and_deadlines_without_outliving_its_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok = {"choices": [{"message": {"content": "hi"}}]}
    assert _send(lambda r: httpx.Response(200, json=ok), Shot("edge", "chat", "x", 16)).outcome == "200"
    done = _send(lambda r: httpx.Response(200, content=b'data: {"choices": []}\n\ndata: [DONE]\n\n'),
                 Shot("cloud", "text-stream", "x", 16))  # fmt: skip
    assert (done.outcome, done.pipeline) == ("200", "cloud") and done.seconds >= 0
    assert _send(lambda r: httpx.Response(503, json=_error("server_busy")), Shot("e", "chat-stream", "x", 16)) == \
        Outcome("503", "503", pipeline="e", seconds=pytest.approx(0, abs=1))  # fmt: skip
    assert _send(lambda r: httpx.Response(200, json={}), Shot("e", "chat", "x", 16)).detail == "200 without choices"
    cut = _send(lambda r: httpx.Response(200, content=b'data: {"choices": []}\n\n'), Shot("e", "chat-stream", "x", 8))
    assert cut.detail == "stream cut short"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert _send(refuse, Shot("e", "chat", "x", 16)) == Outcome("other", "ConnectError", pipeline="e",
                                                                  seconds=pytest.approx(0, abs=1))  # fmt: skip
    stalls = lambda r: httpx.Response(200, stream=_Stalls())  # noqa: E731
    hung = _send(stalls, Shot("e", "chat-stream", "x", 16), hang_after_s=0.2)
    assert (hung.outcome, hung.detail, hung.hang) == ("other", "hang", True) and 0.2 <= hung.seconds < 2
    assert _send(stalls, Shot("e", "chat-stream", "x", 16, "drop", 1), hang_after_s=0.2).outcome == "499"
    monkeypatch.setattr(soak, "CLIENT_DEADLINE_S", 0.1)
    late = _send(stalls, Shot("e", "chat-stream", "x", 16, "deadline"))
    assert (late.outcome, late.detail, late.hang) == ("499", "client deadline", False) and late.seconds < 2


METRICS = """\
# HELP tandem_model_calls_total Model calls by model and location
# TYPE tandem_model_calls_total counter
tandem_model_calls_total{location="edge",model="edge"} 40.0
tandem_model_calls_total{location="cloud",model="cloud"} 25.0
tandem_model_calls_total{location="cloud",model="big \\"one\\""} 5.0
# HELP tandem_model_busy_seconds_total Seconds each model spent generating
# TYPE tandem_model_busy_seconds_total counter
tandem_model_busy_seconds_total{model="edge"} 12.5
tandem_model_busy_seconds_total{model="cloud"} 30.0
tandem_requests_total{endpoint="/metrics",status="200"} 1.0
"""


def test_metrics_give_cloud_calls_and_busy_share_or_none_when_not_exported() -> None:
    assert model_metrics(METRICS, wall_s=50.0) == (30, {"cloud": 0.6, "edge": 0.25})
    without_busy = "\n".join(ln for ln in METRICS.splitlines() if "busy" not in ln)
    assert model_metrics(without_busy, 50.0) == (30, None)
    assert model_metrics("tandem_requests_total{} 3.0\n", 50.0) == (None, None)
    declared_only = "# TYPE tandem_model_calls counter\n# TYPE tandem_model_busy_seconds counter\n"
    assert model_metrics(declared_only, 50.0) == (0, {})  # exported, nothing counted yet


def _result(soak_outcomes: list[Outcome], wave: list[Outcome], planned: int, **extra: Any) -> dict[str, Any]:
    result = summarize(soak_outcomes, wave, planned) | {
        "command": "tandem bench soak", "date": "2025-01-01T00:00:00+00:00", "config": "tiny", "concurrency": 2,
        "seed": 0, "request_timeout_s": 15.0, "hang_after_s": 20.0, "ready_s": 1.0, "pipelines": ["a", "b"],
        "wall_s": 9.0, "stopped": None, "ledger_lines": 3, "cloud_calls": 3, "busy_share": {"cloud": 0.5},
        "shutdown_s": 1.5, "killed": False, "in_flight_at_sigterm": 2, "exit_code": 0,
        "machine": {"nproc": 2, "load_1m": [0.5, 1.5], "revision": None}, "server_log_tail": "Traceback: boom",
    } | extra  # fmt: skip
    result["targets"] = targets(result)
    return result


def test_summary_counts_every_request_and_the_targets_follow() -> None:
    soak_outcomes = [
        Outcome("200", "200", 0.1, pipeline="a"),
        Outcome("200", "200", 0.3, pipeline="b"),
        Outcome("499", "dropped stream", 0.05, pipeline="a"),
        Outcome("504", "504", 15, pipeline="b"),
    ]
    wave = [Outcome("200", "200", 0.2, pipeline="a"), Outcome("other", "ConnectError", 0.01, pipeline="b")]
    result = _result(soak_outcomes, wave, 4)
    assert result["requests"] == 6 and result["outcomes"] == {"200": 3, "499": 1, "503": 0, "504": 1, "other": 1}
    assert result["outcomes_shutdown_wave"] == {"200": 1, "499": 0, "503": 0, "504": 0, "other": 1}
    assert (result["p50_s"], result["p99_s"], result["hangs"], result["unexpected_5xx"]) == (0.2, 0.3, 0, 0)
    assert result["other"] == result["other_shutdown_wave"] == {"ConnectError": 1}
    assert result["by_pipeline"]["a"] == {"200": 2, "499": 1, "503": 0, "504": 0, "other": 0, "requests": 3,
                                          "hangs": 0, "p50_s": 0.1}  # fmt: skip
    assert all(result["targets"].values()) and failed(result) == []
    report = to_markdown(result, "tandem bench soak --requests 4")
    assert "Command: `tandem bench soak --requests 4`" in report and "Date: 2025-01-01" in report
    assert report.count("| PASS |") == 5 and "Traceback" not in report


def test_missed_targets_fail_and_unmeasured_ones_do_not() -> None:
    bad = [Outcome("other", "hang", 20, hang=True, pipeline="a"), Outcome("other", "500", 1, unexpected_5xx=True)]
    result = _result(bad, [], 3, cloud_calls=None, shutdown_s=30.4, killed=True)
    assert result["targets"] == {"no_hangs": False, "no_unexpected_5xx": False, "all_accounted": False,
                                 "ledger_matches_cloud_calls": None, "shutdown_under_10s": False}  # fmt: skip
    assert failed(result) == ["no_hangs", "no_unexpected_5xx", "all_accounted", "shutdown_under_10s"]
    report = to_markdown(result)
    assert report.count("**FAIL**") == 4 and "not measured" in report and "**killed**" in report
    assert "Traceback: boom" in report  # the server's log tail comes with a failure
    assert _result([], [], 0, ledger_lines=2, cloud_calls=3)["targets"]["ledger_matches_cloud_calls"] is False
    crashed = _result([], [], 0, shutdown_s=None, exit_code=-11)
    assert crashed["targets"]["shutdown_under_10s"] is False
    assert "**the server had already exited**" in to_markdown(crashed)


def test_the_server_log_is_digested_by_exception_class() -> None:
    log = """ERROR:    Exception in ASGI application
  + Exception Group Traceback (most recent call last):
  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
    | Traceback (most recent call last):
    | tandemlm.server.errors.ShuttingDownError: the gateway is shutting down
    | tandemlm.server.errors.ShuttingDownError: the gateway is shutting down
asyncio.exceptions.CancelledError
INFO:     Shutting down
"""
    assert soak.log_errors(log) == {"ShuttingDownError": 2, "ExceptionGroup": 1, "CancelledError": 1}


def test_soak_config_sets_ledger_deadline_and_key_and_keeps_the_rest(tmp_path: Path) -> None:
    text = soak_config("tiny", tmp_path / "egress.jsonl", 15.0, "sk-test")
    data = yaml.safe_load(text)
    assert data["ledger"] == str(tmp_path / "egress.jsonl")
    assert data["server"] == {"request_timeout_s": 15.0, "api_keys": ["sk-test"]}
    assert parse_config(text).pipelines.keys() == parse_config(
        soak_config("tiny", tmp_path / "x", 1.0, "k")).pipelines.keys()  # fmt: skip
    own = tmp_path / "own.yaml"
    own.write_text(yaml.safe_dump({**SCRIPTED, "server": {"queue_size": 3, "request_timeout_s": 600}}))
    assert yaml.safe_load(soak_config(str(own), tmp_path / "l", 5.0, "k"))["server"] == {
        "queue_size": 3, "request_timeout_s": 5.0, "api_keys": ["k"]}  # fmt: skip


def test_the_command_writes_both_files_and_exits_1_on_a_missed_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canned = _result([Outcome("200", "200", 0.1, pipeline="a")], [], 1, shutdown_s=12.0)
    monkeypatch.setattr(soak, "run_soak", lambda *a, **k: dict(canned))
    args = ["bench", "soak", "--requests", "1", "--json", str(tmp_path / "s.json"), "--out", str(tmp_path / "s.md")]
    missed = CliRunner().invoke(main, args)
    assert missed.exit_code == 1, missed.output
    assert "| shutdown < 10 s | 12.00 s | **FAIL** |" in missed.stdout
    assert json.loads((tmp_path / "s.json").read_text())["shutdown_s"] == 12.0
    assert "**FAIL**" in (tmp_path / "s.md").read_text()
    assert CliRunner().invoke(main, [*args, "--no-fail"]).exit_code == 0


SCRIPTED = {
    "models": {
        "edge": {"engine": "scripted", "replies": "a short local answer", "delay_s": 0.05, "max_concurrency": 1},
        "cloud": {"engine": "scripted", "replies": "a short cloud answer", "location": "cloud", "delay_s": 0.02},
    },
    "pipelines": {"edge": {"model": "edge"}, "cloud": {"model": "cloud"}},
}

FIELDS = ("requests", "outcomes", "hangs", "unexpected_5xx", "ledger_lines", "cloud_calls", "shutdown_s", "p50_s",
          "p99_s", "busy_share", "config", "concurrency", "command", "targets")  # fmt: skip


def test_a_scripted_gateway_end_to_end(tmp_path: Path) -> None:
    """The harness itself against `tandem serve` on scripted models: every request comes back classified."""
    (config := tmp_path / "scripted.yaml").write_text(yaml.safe_dump(SCRIPTED))
    result = soak.run_soak(str(config), requests=40, concurrency=4, request_timeout_s=5.0)
    assert set(FIELDS) <= set(result) and set(result["outcomes"]) == set(OUTCOMES)
    assert sum(result["outcomes"].values()) == result["requests"] == 44
    assert set(result["by_pipeline"]) == {"edge", "cloud"} and result["outcomes"]["200"] > 0
    assert result["cloud_calls"] is not None and result["cloud_calls"] > 0
    json.dumps(result)


@pytest.mark.slow
def test_soak_of_the_tiny_config_meets_its_targets(smollm2_path: str) -> None:
    result = soak.run_soak("tiny", requests=200, concurrency=8)
    assert set(FIELDS) <= set(result)
    summary = {k: result[k] for k in ("outcomes", "other", "hangs", "unexpected_5xx", "shutdown_s", "killed",
                                      "ledger_lines", "cloud_calls", "stopped")}  # fmt: skip
    assert sum(result["outcomes"].values()) == result["requests"] == 208, summary
    assert result["hangs"] == 0, summary
    assert result["unexpected_5xx"] == 0, summary
    assert result["shutdown_s"] < 10 and not result["killed"], summary
    if result["cloud_calls"] is not None:
        assert result["ledger_lines"] == result["cloud_calls"], summary

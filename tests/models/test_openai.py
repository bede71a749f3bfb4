"""The openai engine: exact wire behaviour against httpx.MockTransport, then a real llama.cpp server (slow)."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tandemlm import Message, Price, Recorder, Request, Usage
from tandemlm.errors import (
    AuthenticationError,
    DeadlineExceededError,
    RateLimitError,
    RemoteError,
    RemoteTimeoutError,
    RequestCancelledError,
    UnsupportedOperationError,
)
from tandemlm.execution import CancelToken, cancel_scope, use_token
from tandemlm.models.openai import OpenAIModel

Reply = Callable[[], httpx.Response] | Exception
SECRET = "sk-test-0123456789abcdef"


def reply(status: int = 200, **kwargs: object) -> Callable[[], httpx.Response]:
    """A fresh response each time it is served."""
    return functools.partial(httpx.Response, status, **kwargs)  # type: ignore[arg-type]


def chat(text: str = "four", finish: str = "stop", usage: tuple[int, int] | None = (7, 2)) -> Reply:
    body: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return reply(json=body)


def sse(*events: object) -> Reply:
    """An event stream: dicts become JSON data events, strings are sent as data, ": comments" as they are."""
    lines = (
        e if isinstance(e, str) and e.startswith(":") else f"data: {e if isinstance(e, str) else json.dumps(e)}"
        for e in events
    )
    text = "".join(f"{line}\n\n" for line in lines)
    return reply(text=text, headers={"Content-Type": "text/event-stream"})


def delta(content: str | None = None, finish: str | None = None, role: str | None = None) -> dict[str, object]:
    d = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


class Endpoint:
    """A scripted OpenAI-compatible endpoint: serves the replies in order, repeating the last; records requests."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(step, Exception):
            raise step
        return step()

    def body(self, i: int = -1) -> dict[str, object]:
        return json.loads(self.requests[i].content)


def model_for(endpoint: Endpoint, **options: object) -> OpenAIModel:
    options = {"base_url": "https://api.example.test/v1", "backoff": 0.0, "max_retries": 3, **options}
    return OpenAIModel("gpt-test", transport=httpx.MockTransport(endpoint), **options)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


# ---- the request body and the egress ledger --------------------------------------------------------


def test_body_maps_params_and_omits_unset_stop_and_seed() -> None:
    ep = Endpoint(chat())
    model = model_for(ep)
    msgs = (Message("system", "be brief"), Message("user", "2+2?"))
    model.generate(Request(msgs))
    req = ep.requests[0]
    assert (req.method, str(req.url)) == ("POST", "https://api.example.test/v1/chat/completions")
    assert req.headers["content-type"] == "application/json"
    assert ep.body() == {
        "model": "gpt-test",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}],
        "max_tokens": 256,
        "temperature": 0.0,
        "top_p": 1.0,
    }
    model.generate(Request.of("hi", max_tokens=5, temperature=0.7, top_p=0.9, stop=["\n", "END"], seed=0))
    body = ep.body()
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (5, 0.7, 0.9)
    assert (body["stop"], body["seed"]) == (["\n", "END"], 0)
    assert "stream" not in body


def test_generate_parses_text_usage_finish_and_prices_the_call() -> None:
    model = model_for(Endpoint(chat("four", "length", (7, 2))), name="big", price=Price(input=2.0, output=10.0))
    c = model.generate("2+2?")
    assert (c.text, c.finish_reason, c.usage, c.model) == ("four", "length", Usage(7, 2), "big")
    (event,) = c.trace
    assert (event.model, event.location, event.operation) == ("big", "cloud", "generate")
    assert event.cost_usd == pytest.approx((7 * 2.0 + 2 * 10.0) / 1e6)


def test_egress_is_exactly_the_bytes_sent() -> None:
    ep = Endpoint(chat())
    model = model_for(ep)
    c = model.generate(Request.of("my card is 4111 1111 1111 1111 — ünïcode", stop=["x"], seed=3))
    assert c.egress == (ep.requests[0].content.decode("utf-8"),)


def test_stream_egress_is_exactly_the_streaming_body_sent() -> None:
    ep = Endpoint(sse(delta("ok", "stop"), "[DONE]"))
    *_, last = model_for(ep).stream(Request.of("hello"))
    assert last.completion is not None
    sent = ep.requests[0].content.decode("utf-8")
    assert last.completion.egress == (sent,)
    assert json.loads(sent)["stream"] is True
    assert json.loads(sent)["stream_options"] == {"include_usage": True}


def test_edge_location_records_no_egress() -> None:
    c = model_for(Endpoint(chat()), location="edge").generate("hi")
    assert c.egress == () and c.trace[0].location == "edge"


def test_raw_requests_use_the_text_completions_endpoint() -> None:
    ep = Endpoint(reply(json={"choices": [{"index": 0, "text": " Paris", "finish_reason": "length"}]}))
    c = model_for(ep).generate(Request.completion("The capital of France is", max_tokens=2))
    assert str(ep.requests[0].url).endswith("/v1/completions")
    assert ep.body()["prompt"] == "The capital of France is" and "messages" not in ep.body()
    assert (c.text, c.finish_reason, c.usage) == (" Paris", "length", Usage(0, 0))


# ---- the API key ------------------------------------------------------------------------------------


def test_api_key_is_sent_as_bearer_and_never_recorded() -> None:
    ep = Endpoint(chat())
    model = model_for(ep, api_key=SECRET)
    c = model.generate("hi")
    assert ep.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in json.dumps(c.to_dict())
    assert SECRET not in repr(model)


def test_api_key_comes_from_the_named_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_TEST_KEY", SECRET)
    ep = Endpoint(chat())
    model_for(ep, api_key_env="TANDEM_TEST_KEY").generate("hi")
    assert ep.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_no_key_sends_no_authorization_header() -> None:
    ep = Endpoint(chat())
    model_for(ep).generate("hi")
    assert "authorization" not in ep.requests[0].headers


def test_construction_touches_no_network() -> None:
    model = OpenAIModel("m", base_url="http://192.0.2.1:9/v1", context_length=4096)  # the socket guard would fail
    assert model.context_length == 4096 and model.name == "m"
    model.close()


# ---- retries and typed errors -----------------------------------------------------------------------


def test_retries_503_then_succeeds() -> None:
    ep = Endpoint(reply(503, text="busy"), reply(503, text="busy"), chat("ok"))
    assert model_for(ep).generate("hi").text == "ok"
    assert len(ep.requests) == 3
    assert ep.requests[0].content == ep.requests[2].content  # every attempt sends the recorded bytes


def test_backoff_doubles_and_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(CancelToken, "sleep", lambda self, seconds: slept.append(seconds))
    ep = Endpoint(
        reply(500), reply(502), reply(429, headers={"Retry-After": "1.5"}), reply(429, headers={"Retry-After": "999"})
    )
    with pytest.raises(RateLimitError):
        model_for(ep, backoff=0.25).generate("hi")
    assert slept == [0.25, 0.5, 1.5]  # the 4th answer is the last attempt: no sleep after it
    assert len(ep.requests) == 4


def test_429_exhausted_raises_rate_limit_error() -> None:
    ep = Endpoint(reply(429, json={"error": {"message": "Rate limit reached for gpt-test", "type": "requests"}}))
    with pytest.raises(RateLimitError) as info:
        model_for(ep, max_retries=2).generate("hi")
    assert len(ep.requests) == 3
    assert info.value.status == 429
    assert "Rate limit reached for gpt-test" in str(info.value) and "429" in str(info.value)
    assert "after 3 attempts" in str(info.value)
    assert isinstance(info.value.__cause__, httpx.HTTPStatusError)


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried(status: int) -> None:
    ep = Endpoint(reply(status, json={"error": {"message": "Incorrect API key provided: sk-te***cdef"}}))
    model = model_for(ep, api_key=SECRET)
    with pytest.raises(AuthenticationError) as info:
        model.generate("hi")
    assert len(ep.requests) == 1
    assert info.value.status == status
    assert "Incorrect API key provided" in str(info.value) and "$OPENAI_API_KEY" in str(info.value)
    assert SECRET not in str(info.value)


def test_400_carries_the_server_message_and_status_and_is_not_retried() -> None:
    message = "This model's maximum context length is 8192 tokens"
    ep = Endpoint(reply(400, json={"error": {"message": message, "type": "invalid_request_error"}}))
    with pytest.raises(RemoteError) as info:
        model_for(ep).generate("hi")
    assert type(info.value) is RemoteError and info.value.status == 400
    assert message in str(info.value) and "HTTP 400" in str(info.value)
    assert len(ep.requests) == 1


def test_failed_call_is_traced_with_its_error() -> None:
    with Recorder() as rec, pytest.raises(RemoteError):
        model_for(Endpoint(reply(404, json={"detail": "Not Found"}))).generate("hi")
    (event,) = rec.events
    assert event.error is not None and "Not Found" in event.error and event.egress is not None


def test_non_json_500_body_is_quoted_after_retries() -> None:
    ep = Endpoint(reply(500, text="<html>upstream exploded</html>"))
    with pytest.raises(RemoteError) as info:
        model_for(ep, max_retries=1).generate("hi")
    assert info.value.status == 500 and len(ep.requests) == 2
    assert "<html>upstream exploded</html>" in str(info.value)


def test_timeouts_are_retried_then_raise_remote_timeout_error() -> None:
    ep = Endpoint(httpx.ReadTimeout("timed out"))
    with pytest.raises(RemoteTimeoutError) as info:
        model_for(ep, max_retries=2, timeout=5).generate("hi")
    assert len(ep.requests) == 3 and info.value.status is None
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert "timed out after 3 attempts" in str(info.value)


def test_connection_errors_are_retried_then_raise_remote_error() -> None:
    ep = Endpoint(httpx.ConnectError("connection refused"), chat("back"))
    assert model_for(ep).generate("hi").text == "back"
    ep = Endpoint(httpx.ConnectError("connection refused"))
    with pytest.raises(RemoteError) as info:
        model_for(ep, max_retries=0).generate("hi")
    assert type(info.value) is RemoteError and "connection refused" in str(info.value)


def test_malformed_success_body_is_a_remote_error() -> None:
    with pytest.raises(RemoteError, match="unexpected response"):
        model_for(Endpoint(reply(json={"choices": []}))).generate("hi")


# ---- streaming ----------------------------------------------------------------------------------


def test_stream_yields_pieces_then_final_chunk_with_server_usage() -> None:
    ep = Endpoint(
        sse(
            delta(role="assistant"),
            delta("The"),
            delta(" answer"),
            ": keep-alive comment",
            delta(" is 4"),
            delta(finish="stop"),
            {"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
            "[DONE]",
        )
    )
    chunks = list(model_for(ep, price=Price(input=1.0, output=1.0)).stream("2+2?"))
    assert [c.text for c in chunks] == ["The", " answer", " is 4", ""]
    final = chunks[-1]
    assert final.finish_reason == "stop" and final.completion is not None
    assert (final.completion.text, final.completion.usage) == ("The answer is 4", Usage(9, 4))
    (event,) = final.completion.trace
    assert (event.operation, event.cost_usd) == ("stream", pytest.approx(13 / 1e6))


def test_stream_without_usage_counts_pieces() -> None:
    ep = Endpoint(sse(delta("a"), delta("b"), delta("c", "length"), "[DONE]"))
    *_, last = model_for(ep).stream("hi")
    assert last.completion is not None
    assert (last.completion.text, last.completion.finish_reason, last.completion.usage) == (
        "abc",
        "length",
        Usage(0, 3),
    )


def test_stream_error_event_raises_remote_error() -> None:
    ep = Endpoint(sse(delta("a"), {"error": {"message": "the model crashed", "type": "server_error"}}))
    with pytest.raises(RemoteError, match="the model crashed"):
        list(model_for(ep).stream("hi"))


def test_stream_cut_before_finish_raises_remote_error() -> None:
    with pytest.raises(RemoteError, match="without a finish reason"):
        list(model_for(Endpoint(sse(delta("a")))).stream("hi"))


def test_stream_http_errors_are_retried_and_typed() -> None:
    ep = Endpoint(reply(503), sse(delta("ok", "stop"), "[DONE]"))
    assert [c.text for c in model_for(ep).stream("hi")] == ["ok", ""]
    ep = Endpoint(reply(401, json={"error": {"message": "bad key"}}))
    with pytest.raises(AuthenticationError, match="bad key"):
        list(model_for(ep).stream("hi"))


# ---- async ----------------------------------------------------------------------------------------


def test_agenerate_and_astream_use_the_async_client() -> None:
    ep = Endpoint(reply(503), chat("async ok"), sse(delta("x"), delta("y", "stop"), "[DONE]"))
    model = model_for(ep, price=Price(input=1.0, output=0.0))

    async def main() -> tuple[str, list[str]]:
        c = await model.agenerate("hi")
        assert c.trace[0].cost_usd == pytest.approx(7 / 1e6)
        pieces = [chunk.text async for chunk in model.astream("hi")]
        await model.aclose()
        return c.text, pieces

    text, pieces = asyncio.run(main())
    assert (text, pieces) == ("async ok", ["x", "y", ""])
    assert len(ep.requests) == 3 and json.loads(ep.requests[2].content)["stream"] is True


def test_async_errors_are_typed() -> None:
    ep = Endpoint(reply(400, json={"error": {"message": "bad request body"}}))
    with pytest.raises(RemoteError, match="bad request body"):
        asyncio.run(model_for(ep).agenerate("hi"))
    assert len(ep.requests) == 1


class ClosingTransport(httpx.MockTransport):
    """Counts how often the clients close it."""

    closed: tuple[str, ...] = ()

    def close(self) -> None:
        self.closed += ("sync",)

    async def aclose(self) -> None:
        self.closed += ("async",)


def test_close_closes_both_clients_even_from_sync_code_inside_the_loop() -> None:
    transport = ClosingTransport(Endpoint(chat()))
    model = OpenAIModel("m", base_url="https://api.example.test/v1", transport=transport)
    model.generate("hi")

    async def main() -> None:
        await model.agenerate("hi")
        model.close()  # sync code on the loop's own thread: the async close is scheduled there
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert sorted(transport.closed) == ["async", "sync"]
    model.close()  # idempotent
    assert len(transport.closed) == 2


def test_each_event_loop_gets_its_own_async_client() -> None:
    transport = ClosingTransport(Endpoint(chat("a")))
    model = OpenAIModel("m", base_url="https://api.example.test/v1", transport=transport)

    async def call() -> str:
        return (await model.agenerate("hi")).text

    assert asyncio.run(call()) == asyncio.run(call()) == "a"  # no "attached to a different loop" errors
    model.close()  # after the loop ended: nothing to schedule, nothing raised


# ---- logprobs ---------------------------------------------------------------------------------------


def test_logprobs_from_a_plain_endpoint_are_unsupported_with_a_clear_message() -> None:
    ep = Endpoint(reply(status=404, json={"detail": "Not Found"}))
    model = model_for(ep)
    with Recorder() as rec, pytest.raises(UnsupportedOperationError, match="not a tandem gateway"):
        model.next_token_logprobs([1, 2, 3], top_k=5)
    assert ep.requests[0].url.path == "/v1/tandem/logprobs" and len(ep.requests) == 1  # a 404 is not retried
    assert rec.events[0].egress == ep.requests[0].content.decode()  # what left is on the ledger


def test_logprobs_through_the_extension_send_only_new_tokens() -> None:
    answers = [
        {"session_id": "s1", "n_tokens": 3, "vocab_size": 4,
         "logprobs": [{"position": 2, "top": [[2, -0.1], [1, -2.4]]}]},
        {"session_id": "s1", "n_tokens": 5, "vocab_size": 4,
         "logprobs": [{"position": 3, "values": [-3.0, -2.0, -1.0, -0.5]}, {"position": 4, "values": [-1.5] * 4}]},
    ]  # fmt: skip
    ep = Endpoint(*(reply(json=a) for a in answers))
    model = model_for(ep)
    with Recorder() as rec:
        first = model.next_token_logprobs([1, 2, 3], top_k=2)
        second = model.logprobs_after([1, 2, 3, 3, 1], [3, 4])
    assert first.top(2) == [(2, -0.1), (1, -2.4)] and not first.complete
    assert second[0].complete and second[0].argmax() == 3
    bodies = [ep.body(0), ep.body(1)]
    assert bodies[0] == {
        "model": "gpt-test",
        "session_id": None,
        "offset": 0,
        "tokens": [1, 2, 3],
        "positions": [2],
        "top_k": 2,
    }
    assert bodies[1] == {"model": "gpt-test", "session_id": "s1", "offset": 3, "tokens": [3, 1], "positions": [3, 4],
                         "top_k": None}  # fmt: skip
    assert [e.egress for e in rec.events] == [r.content.decode() for r in ep.requests]


# ---- a real OpenAI-compatible server: llama-cpp-python's own, over smollm2 ------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server(smollm2_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama_cpp.server on a free loopback port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_path, "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", "2048", "--verbose", "False"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(process, base_url, log_path)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"llama_cpp.server did not answer within 60 s:\n{log_path.read_text()[-2000:]}")


@pytest.fixture
def served(llama_server: str) -> Iterator[OpenAIModel]:
    model = OpenAIModel("smollm2", base_url=llama_server, name="served", price=Price(input=3.0, output=15.0))
    yield model
    model.close()


GREEDY = Request.of("What is the capital of France?", max_tokens=16, temperature=0.0)


@pytest.mark.slow
def test_real_server_generate(served: OpenAIModel) -> None:
    c = served.generate(GREEDY)
    assert c.text.strip() and c.finish_reason in ("stop", "length")
    assert c.usage.prompt_tokens > 0 and 0 < c.usage.completion_tokens <= 16
    (event,) = c.trace
    assert (event.model, event.location, event.operation) == ("served", "cloud", "generate")
    assert event.cost_usd == pytest.approx((c.usage.prompt_tokens * 3.0 + c.usage.completion_tokens * 15.0) / 1e6)
    assert event.cost_usd > 0
    assert json.loads(c.egress[0])["messages"] == [{"role": "user", "content": GREEDY.messages[0].content}]


@pytest.mark.slow
def test_real_server_stream_matches_generate(served: OpenAIModel) -> None:
    served.generate(GREEDY)  # the server keeps this prompt's KV cache, so the next two calls compute alike
    chunks = list(served.stream(GREEDY))
    final = chunks[-1].completion
    assert final is not None
    streamed = "".join(c.text for c in chunks)
    assert streamed == final.text
    assert streamed == served.generate(GREEDY).text
    assert final.usage.completion_tokens > 0 and final.trace[0].location == "cloud"
    assert json.loads(final.egress[0])["stream"] is True


@pytest.mark.slow
def test_real_server_context_overflow_surfaces_as_remote_error(served: OpenAIModel) -> None:
    with pytest.raises(RemoteError) as info:
        served.generate(Request.of("word " * 3000, max_tokens=16))
    assert info.value.status == 400
    assert "maximum context length is 2048 tokens" in str(info.value)
    assert "attempts" not in str(info.value)  # a 4xx is not retried


@pytest.mark.slow
def test_real_server_async_and_raw_completion(served: OpenAIModel) -> None:
    served.generate(GREEDY)  # warm the server's cache, as above

    async def main() -> tuple[str, str]:
        c = await served.agenerate(GREEDY)
        pieces = [chunk.text async for chunk in served.astream(GREEDY)]
        await served.aclose()
        return c.text, "".join(pieces)

    text, streamed = asyncio.run(main())
    assert text.strip() and streamed == text
    raw = served.generate(Request.completion("The capital of France is", max_tokens=4))
    assert raw.text and raw.usage.completion_tokens > 0


# ---- egress is written where it leaves, whatever happens after ---------------------------------------


def _ledger(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_ledger_holds_a_call_that_failed_after_its_bytes_left(tmp_path: Path) -> None:
    ep = Endpoint(reply(400, json={"error": {"message": "bad"}}))
    model = model_for(ep)
    model.ledger = tmp_path / "egress.jsonl"
    with pytest.raises(RemoteError, match="400"):
        model.generate("the secret plan")
    (line,) = _ledger(model.ledger)
    assert line["text"] == ep.requests[0].content.decode() and line["model"] == "gpt-test"
    assert model.calls == 1


def test_the_ledger_holds_a_call_that_timed_out(tmp_path: Path) -> None:
    ep = Endpoint(httpx.ReadTimeout("slow"))
    model = model_for(ep, max_retries=0)
    model.ledger = tmp_path / "egress.jsonl"
    with pytest.raises(RemoteTimeoutError):
        model.generate("tell me")
    assert [line["text"] for line in _ledger(model.ledger)] == [ep.requests[0].content.decode()]


def test_the_ledger_holds_a_call_cancelled_after_sending_and_the_retry_never_goes(tmp_path: Path) -> None:
    ep = Endpoint(reply(503, text="busy"), chat("late"))
    model = model_for(ep, backoff=30.0)
    model.ledger = tmp_path / "egress.jsonl"
    token = CancelToken()
    threading.Timer(0.2, token.cancel, args=("the client disconnected",)).start()
    started = time.monotonic()
    with use_token(token), pytest.raises(RequestCancelledError, match="the client disconnected"):
        model.generate("cancel me")
    assert time.monotonic() - started < 5  # woke from the 30 s backoff at once
    assert len(ep.requests) == 1 and len(_ledger(model.ledger)) == 1


def test_a_deadline_bounds_each_attempt_of_a_sync_call(tmp_path: Path) -> None:
    seen: list[float] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("slow")

    model = OpenAIModel("gpt-test", base_url="https://api.example.test/v1", transport=httpx.MockTransport(slow),
                        timeout=60.0, max_retries=2, backoff=0.0)  # fmt: skip
    with cancel_scope(timeout=0.5), pytest.raises((RemoteTimeoutError, DeadlineExceededError)):
        model.generate("hi")
    assert seen and all(t <= 0.5 for t in seen)  # never the engine's own 60 s


def test_an_edge_located_remote_model_writes_no_egress(tmp_path: Path) -> None:
    model = model_for(Endpoint(chat()), location="edge")
    model.ledger = tmp_path / "egress.jsonl"
    with Recorder() as rec:
        model.generate("local only")
    assert not model.ledger.exists() and rec.events[0].egress is None


# ---- structured output, tools and logprobs passed through ---------------------------------------------------


def _tools_request(structured: bool = True, **params: object) -> Request:
    from tandemlm.types import ResponseFormat, Tool, ToolCall

    schema = json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    history = [
        Message("user", "weather?"),
        Message("assistant", "", (ToolCall("c1", "get_weather", '{"city": "Oslo"}'),)),
        Message("tool", "3 C", tool_call_id="c1"),
    ]
    rf = ResponseFormat("json_schema", schema, "answer") if structured else None
    return Request.of(history, tools=[Tool("get_weather", "weather", schema)], response_format=rf, **params)


CALL = {"id": "c9", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
ENTRY = {"token": "hi", "logprob": -0.5, "bytes": [104, 105], "top_logprobs": [{"token": "hi", "logprob": -0.5}]}


def called(**choice: object) -> Reply:
    message = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    return reply(json={"choices": [{"message": message, "finish_reason": "tool_calls", **choice}]})


def tool_delta(arguments: str, head: bool = False, finish: str | None = None) -> dict[str, object]:
    call: dict[str, object] = {"index": 0, "function": {"arguments": arguments}}
    if head:
        call.update(id="c9", type="function", function={"name": "get_weather", "arguments": arguments})
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": finish}]}


def test_tools_formats_and_logprobs_go_on_the_wire_as_openai_spells_them() -> None:
    ep = Endpoint(called())
    model_for(ep).generate(_tools_request(tool_choice="get_weather", parallel_tool_calls=False, logprobs=2))
    body = ep.body()
    wire_call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    assert body["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [wire_call]}  # type: ignore[index]
    assert body["messages"][2] == {"role": "tool", "content": "3 C", "tool_call_id": "c1"}  # type: ignore[index]
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]  # type: ignore[index]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False and (body["logprobs"], body["top_logprobs"]) == (True, 2)
    rf = body["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "answer"  # type: ignore[index]


def test_tool_calls_and_logprobs_are_parsed_plain_and_streamed() -> None:
    c = model_for(Endpoint(called(logprobs={"content": [ENTRY]}))).generate(_tools_request(False, logprobs=1))
    assert (
        c.finish_reason == "tool_calls"
        and c.text == ""
        and [(t.id, t.name) for t in c.tool_calls] == [("c9", "get_weather")]
    )
    assert c.logprobs is not None and c.logprobs[0].bytes == b"hi" and c.logprobs[0].top[0].logprob == -0.5
    streamed = sse(
        tool_delta("", head=True), tool_delta('{"city": '), tool_delta('"Rome"}', finish="tool_calls"), "[DONE]"
    )
    chunks = list(model_for(Endpoint(streamed)).stream(_tools_request(False)))
    final = chunks[-1].completion
    assert final is not None and final.finish_reason == "tool_calls"
    assert json.loads(final.tool_calls[0].arguments) == {"city": "Rome"}


def test_a_broken_structured_answer_is_sent_for_again_and_both_sends_are_in_the_ledger(tmp_path: Path) -> None:
    from tandemlm.errors import InvalidOutputError

    ep = Endpoint(chat("Oslo!"), chat("still not JSON"))
    model = model_for(ep)
    model.ledger = tmp_path / "egress.jsonl"
    with pytest.raises(InvalidOutputError, match="after 2 attempts: the answer is not valid JSON"):
        model.generate(_tools_request(tool_choice="none"))
    assert len(ep.requests) == 2 and len(model.ledger.read_text().splitlines()) == 2

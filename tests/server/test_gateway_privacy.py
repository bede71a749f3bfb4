"""Through the gateway: the bytes that reach a recording cloud backend, and the egress ledger, hold no secret."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx  # noqa: F401  # imported before the server threads start, which import it too
import openai
import pytest

from tandemlm import Request, Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.privacy.audit import audit_ledger, find_leaks
from tandemlm.server import create_app

SECRETS = ["ann.lee@example.com", "4111 1111 1111 1111", "+44 20 7946 0958", "DE89 3704 0044 0532 0130 00",
           "ghp_abcdefghijklmnopqrstuvwxyz0123456789"]  # fmt: skip
PROMPT = f"Mail {SECRETS[0]}, card {SECRETS[1]}, phone {SECRETS[2]}, IBAN {SECRETS[3]}, token {SECRETS[4]}. 2+3?"
Serve = Callable[[Any], str]


class RecordingBackend:
    """An ASGI wrapper that keeps the exact request bodies a cloud endpoint received."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):  # kept before the answer is sent: no race with the client
                    self.bodies.append(b"".join(parts))
            return message

        await self.app(scope, recording_receive, send)


def echo(request: Request) -> str:
    return "You wrote: " + request.messages[-1].content


@pytest.fixture
def setup(serve: Serve, tmp_path: Path) -> tuple[openai.OpenAI, RecordingBackend, Path]:
    backend_cfg = parse_config("models: {echo: {engine: scripted}}\npipelines: {echo: {model: echo}}")
    backend = RecordingBackend(create_app(Runtime(backend_cfg, models={"echo": ScriptedModel(echo, name="echo")})))
    url = serve(backend)
    ledger = tmp_path / "egress.jsonl"
    front = f"""
models:
  edge: {{engine: scripted, replies: "edge answer", location: edge}}
  cloud: {{engine: openai, model: echo, base_url: "{url}/v1", api_key: unused, max_retries: 0}}
pipelines:
  private: {{model: cloud, privacy: {{detectors: [patterns], edge: edge}}}}
  strict: {{model: cloud, privacy: {{detectors: [patterns], entities: {{IBAN: block}}}}}}
  guardian: {{model: cloud, privacy: {{detectors: [patterns], edge: edge, mode: guardian}}}}
  disclosure: {{model: cloud, privacy: {{detectors: [patterns], edge: edge, mode: disclosure}}}}
  raw: {{model: cloud}}
ledger: "{ledger}"
"""
    client = openai.OpenAI(base_url=f"{serve(create_app(parse_config(front)))}/v1", api_key="unused", max_retries=0)
    return client, backend, ledger


def test_no_secret_leaves_and_the_answer_is_restored_plain_and_streamed(setup: Any) -> None:
    client, backend, ledger = setup
    messages = [{"role": "user", "content": PROMPT}]
    plain = client.chat.completions.create(model="private", messages=messages)
    assert plain.choices[0].message.content == "You wrote: " + PROMPT
    stream = client.chat.completions.create(model="private", messages=messages, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "You wrote: " + PROMPT
    assert len(backend.bodies) == 2 and all(b"<EMAIL_1>" in body for body in backend.bodies)
    records = [(i, "backend", body.decode()) for i, body in enumerate(backend.bodies, 1)]
    assert find_leaks(records, SECRETS) == []  # exact and normalised (spacing, case, digit grouping)
    assert len(ledger.read_text().splitlines()) == 2 and audit_ledger(ledger, SECRETS) == []
    assert [line.encode() for line in ledger.read_text().splitlines()] != []


def test_the_same_checks_catch_a_pipeline_without_privacy(setup: Any) -> None:
    client, backend, ledger = setup
    client.chat.completions.create(model="raw", messages=[{"role": "user", "content": PROMPT}])
    assert {leak.secret for leak in audit_ledger(ledger, SECRETS)} == set(range(len(SECRETS)))
    assert len(find_leaks([(1, "backend", backend.bodies[0].decode())], SECRETS)) == len(SECRETS)


def test_a_blocked_request_is_a_400_and_reaches_nobody(setup: Any) -> None:
    client, backend, ledger = setup
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="strict", messages=[{"role": "user", "content": PROMPT}])
    assert err.value.code == "pii_blocked" and "1 IBAN" in err.value.message and SECRETS[3] not in err.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="strict", messages=[{"role": "user", "content": PROMPT}], stream=True)
    assert backend.bodies == [] and not ledger.exists()


def test_stop_sequences_leave_masked(setup: Any) -> None:
    client, backend, ledger = setup
    messages = [{"role": "user", "content": PROMPT}]
    client.chat.completions.create(model="private", messages=messages, stop=[SECRETS[0], f"IBAN {SECRETS[3]}"])
    (body,) = backend.bodies
    assert json.loads(body)["stop"] == ["<EMAIL_1>", "IBAN <IBAN_1>"]
    assert find_leaks([(1, "backend", body.decode())], SECRETS) == [] and audit_ledger(ledger, SECRETS) == []


@pytest.mark.parametrize("mode", ["guardian", "disclosure"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_rewriting_mode_on_v1_completions_is_a_400_naming_it(setup: Any, mode: str, stream: bool) -> None:
    client, backend, ledger = setup
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=mode, prompt=PROMPT, stream=stream)
    assert f"privacy mode '{mode}'" in err.value.message and "/v1/chat/completions" in err.value.message
    assert SECRETS[0] not in err.value.message
    assert backend.bodies == [] and not ledger.exists()


# ---- tool calls through the gatekeeper ----------------------------------------------------------------------

SEND = {
    "type": "function",
    "function": {
        "name": "send_email",
        "description": "Send an e-mail",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
            "required": ["to", "body"],
        },
    },
}


def tool_caller(request: Request) -> str:
    """A cloud that e-mails what it was given (the stand-ins it sees), or reports a tool result it got back."""
    last = request.messages[-1]
    if last.role == "tool":
        return "Done: " + last.content
    to = re.search(r"<EMAIL[^>]*>", last.content)
    arguments = {"to": to.group() if to else "", "body": last.content}
    return "<tool_call>\n" + json.dumps({"name": "send_email", "arguments": arguments}) + "\n</tool_call>"


@pytest.fixture
def tools_setup(serve: Serve, tmp_path: Path) -> tuple[openai.OpenAI, RecordingBackend, Path]:
    backend_cfg = parse_config("models: {cloud: {engine: scripted}}\npipelines: {cloud: {model: cloud}}")
    backend = RecordingBackend(create_app(Runtime(backend_cfg, models={"cloud": ScriptedModel(tool_caller)})))
    url = serve(backend)
    ledger = tmp_path / "egress.jsonl"
    front = f"""
models:
  cloud: {{engine: openai, model: cloud, base_url: "{url}/v1", api_key: unused, max_retries: 0}}
pipelines:
  private: {{model: cloud, privacy: {{detectors: [patterns]}}}}
ledger: "{ledger}"
"""
    client = openai.OpenAI(base_url=f"{serve(create_app(parse_config(front)))}/v1", api_key="unused", max_retries=0)
    return client, backend, ledger


def test_tool_arguments_and_results_are_masked_out_and_restored_back(tools_setup: Any) -> None:
    client, backend, ledger = tools_setup
    ask = [{"role": "user", "content": PROMPT}]
    r = client.chat.completions.create(model="private", messages=ask, tools=[SEND])  # type: ignore[arg-type, list-item]
    (call,) = r.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"to": SECRETS[0], "body": PROMPT}  # restored for the client
    stream = client.chat.completions.create(model="private", messages=ask, tools=[SEND], stream=True)  # type: ignore[arg-type, list-item]
    fragments = [
        t.function.arguments or "" for ch in stream if ch.choices for t in ch.choices[0].delta.tool_calls or []
    ]
    assert json.loads("".join(fragments)) == {"to": SECRETS[0], "body": PROMPT}
    result = f"sent to {SECRETS[0]}; they replied from {SECRETS[2]}"
    history = [*ask, r.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": result}]  # fmt: skip
    final = client.chat.completions.create(model="private", messages=history, tools=[SEND])  # type: ignore[arg-type, list-item]
    assert final.choices[0].message.content == "Done: " + result
    sent = [json.loads(body) for body in backend.bodies]
    assert len(sent) == 3 and sent[2]["messages"][1]["tool_calls"][0]["function"]["name"] == "send_email"
    assert "<EMAIL_1>" in sent[2]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert "<EMAIL_1>" in sent[2]["messages"][2]["content"] and sent[2]["tools"][0]["function"]["name"] == "send_email"
    records = [(i, "backend", body.decode()) for i, body in enumerate(backend.bodies, 1)]
    assert find_leaks(records, SECRETS) == [] and audit_ledger(ledger, SECRETS) == []


def test_pii_in_tool_definitions_leaves_masked_and_logprobs_are_refused(tools_setup: Any) -> None:
    client, backend, ledger = tools_setup
    leaky = json.loads(json.dumps(SEND))
    leaky["function"]["description"] = f"Send an e-mail, copying {SECRETS[0]}"
    leaky["function"]["parameters"]["properties"]["to"]["enum"] = [SECRETS[0], "bob@example.org"]
    r = client.chat.completions.create(
        model="private", messages=[{"role": "user", "content": f"mail {SECRETS[0]}"}], tools=[leaky]
    )
    assert json.loads((r.choices[0].message.tool_calls or [])[0].function.arguments)["to"] == SECRETS[0]
    (body,) = backend.bodies
    tool = json.loads(body)["tools"][0]["function"]
    assert tool["description"] == "Send an e-mail, copying <EMAIL_1>" and tool["parameters"]["properties"]["to"][
        "enum"
    ] == ["<EMAIL_1>", "<EMAIL_2>"]
    assert find_leaks([(1, "backend", body.decode())], SECRETS) == [] and audit_ledger(ledger, SECRETS) == []
    with pytest.raises(openai.BadRequestError, match="does not support logprobs"):
        client.chat.completions.create(model="private", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert len(backend.bodies) == 1

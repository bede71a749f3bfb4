"""The gateway's edge: body size limit, text that cannot be encoded, empty prompts, model lookup, docs behind the
key, and every error in OpenAI's `{"error": {...}}` shape (raw bytes with httpx, client calls with `openai`)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi import FastAPI

from tandemlm import Runtime
from tandemlm.config import parse_config
from tandemlm.server import create_app

CONFIG = """
models:
  small: {engine: scripted, replies: "edge says hi", location: edge}
pipelines:
  edge: {model: small, description: the edge alone}
  team/edge: {model: small}
"""
LIMIT = 4096
CHAT = "/v1/chat/completions"

Serve = Callable[[FastAPI], str]


def app(**server: object) -> FastAPI:
    cfg = parse_config(CONFIG)
    cfg = cfg.model_copy(update={"server": cfg.server.model_copy(update={"max_body_bytes": LIMIT, **server})})
    return create_app(Runtime(cfg))


def client(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def openai_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """The response is `status` with exactly OpenAI's error body; returns its `error` object."""
    assert r.status_code == status, r.text
    body = r.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["type"], body
    error: dict[str, Any] = body["error"]
    return error


def post_raw(url: str, path: str, content: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=content, headers={"content-type": "application/json", **headers})


def chat(content: str) -> dict[str, Any]:
    return {"model": "edge", "messages": [{"role": "user", "content": content}]}


# -- the body size limit --


def test_a_body_over_the_limit_is_a_413_the_sdk_reports(serve: Serve) -> None:
    c = client(serve(app()))
    assert c.chat.completions.create(**chat("x" * (LIMIT - 200))).choices[0].message.content == "edge says hi"
    with pytest.raises(openai.APIStatusError) as caught:
        c.chat.completions.create(**chat("x" * LIMIT))
    err = caught.value
    assert err.status_code == 413 and (err.type, err.code) == ("invalid_request_error", "request_too_large")
    assert f"limit of {LIMIT} bytes" in err.message and "server.max_body_bytes" in err.message


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(serve: Serve) -> None:
    """A client announcing 100 MB gets its 413 after the headers: the server waits for none of the body."""
    url = serve(app())
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {100 * 1024 * 1024}\r\n\r\n".encode()
            + b'{"model": "edge", "messages": ['
        )
        head, body = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 413 ")
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large" and f"limit of {LIMIT} bytes" in error["message"]


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536) or _closed()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line[15:]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536) or _closed()
    return head, body


def _closed() -> bytes:
    raise AssertionError("the server closed the connection before answering")


def test_a_chunked_body_over_the_limit_is_a_413(serve: Serve) -> None:
    url = serve(app())
    body = json.dumps(chat("x" * 3 * LIMIT)).encode()
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))  # no Content-Length: Transfer-Encoding: chunked
    r = post_raw(url, CHAT, chunks)
    assert openai_error(r, 413)["code"] == "request_too_large"
    small = json.dumps(chat("hi")).encode()
    assert post_raw(url, CHAT, iter([small[:10], small[10:]])).status_code == 200


def test_the_rest_of_an_oversize_body_is_never_read() -> None:
    """The limit counts bytes as `receive()` delivers them and stops there, so memory stays bounded."""
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"model": "edge", "messages": [{"role": "user", "content": "'
        while True:
            pulled += 1
            yield b"x" * 1000

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url="http://gateway") as http:
            return await http.post(CHAT, content=endless(), headers={"content-type": "application/json"})

    assert openai_error(asyncio.run(post()), 413)["code"] == "request_too_large"
    assert pulled <= LIMIT // 1000 + 1


# -- text that cannot be encoded --


@pytest.mark.parametrize(
    ("path", "body", "param", "message"),
    [
        (CHAT, chat("ab\\ud800c"), "messages.0.content", "lone surrogate (\\ud800) at character 2"),
        (CHAT, chat("\\udfff"), "messages.0.content", "lone surrogate (\\udfff) at character 0"),
        (
            CHAT,
            {"model": "edge", "messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud83d"}]}]},
            "messages.0.content",
            "lone surrogate (\\ud83d) at item 0, character 0",
        ),
        (CHAT, {**chat("hi"), "model": "edge\\ud800"}, "model", "lone surrogate (\\ud800) at character 4"),
        (CHAT, {**chat("hi"), "stop": ["ok", "\\ud800"]}, "stop", "lone surrogate (\\ud800) at item 1, character 0"),
        ("/v1/completions", {"model": "edge", "prompt": "x\\udc80"}, "prompt", "(\\udc80) at character 1"),
        ("/v1/completions", {"model": "edge", "prompt": ["\\ud800"]}, "prompt", "at item 0, character 0"),
        ("/v1/tandem/logprobs", {"model": "\\ud800", "tokens": [1]}, "model", "lone surrogate (\\ud800)"),
        (CHAT, {**chat("hi"), "\\ud800": 1}, None, "the key '\\ud800' contains a lone surrogate; send valid UTF-8"),
        (
            CHAT,
            {"model": "edge", "messages": [{"role": "user", "content": "hi", "x\\udfff": 1}]},
            "messages.0",
            "'messages.0': the key 'x\\udfff' contains a lone surrogate; send valid UTF-8 text",
        ),
    ],
)
def test_a_lone_surrogate_is_a_400_naming_the_field(
    serve: Serve, path: str, body: dict[str, Any], param: str | None, message: str
) -> None:
    # json.dumps would escape the backslash; the escapes must reach the server as JSON's own \\uXXXX
    raw = json.dumps(body).replace("\\\\u", "\\u").encode()
    error = openai_error(post_raw(serve(app()), path, raw), 400)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert message in error["message"]
    assert error["message"].startswith(f"'{param}': " if param else "the key")
    assert error["message"].endswith("; send valid UTF-8 text")


def test_surrogates_as_utf8_bytes_are_a_400_and_a_surrogate_pair_is_text(serve: Serve) -> None:
    url = serve(app())
    encoded = b'{"model": "edge", "messages": [{"role": "user", "content": "a\xed\xa0\x80"}]}'  # CESU-style \ud800
    assert "lone surrogate (\\ud800)" in openai_error(post_raw(url, CHAT, encoded), 400)["message"]
    pair = b'{"model": "edge", "messages": [{"role": "user", "content": "\\ud83d\\ude00 hi"}]}'  # one emoji
    assert post_raw(url, CHAT, pair).status_code == 200


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"model": "edge", "messages": [{"role": "user", "content": "caf\xe9"}]}', "invalid continuation byte"),
        (b'{"model": "edge", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "invalid start byte"),
        (b'{"model": "edge", "messages": [{"role": "user", "content": "\xe2\x82"}]}', "invalid continuation byte"),
    ],
)
def test_invalid_utf8_is_a_400_saying_so(serve: Serve, raw: bytes, where: str) -> None:
    error = openai_error(post_raw(serve(app()), CHAT, raw), 400)
    assert error["message"].startswith("the body is not valid UTF-8 (") and where in error["message"]
    assert error["type"] == "invalid_request_error"


# -- empty prompts --


@pytest.mark.parametrize("prompt", ["", [], [""]])
def test_an_empty_prompt_is_a_400(serve: Serve, prompt: object) -> None:
    r = httpx.post(f"{serve(app())}/v1/completions", json={"model": "edge", "prompt": prompt})
    assert openai_error(r, 400)["message"] == "prompt is empty: send the text to complete"


# -- errors of the HTTP layer itself --


def test_routing_and_parsing_errors_are_in_openai_shape(serve: Serve) -> None:
    url = serve(app())
    error = openai_error(httpx.get(f"{url}/v1/nope"), 404)
    assert error["message"] == "no such endpoint: GET /v1/nope; the OpenAI API is under /v1 (see /docs)"
    r = httpx.delete(f"{url}/v1/chat/completions")
    assert "method not allowed: DELETE /v1/chat/completions; allowed: POST" in openai_error(r, 405)["message"]
    assert r.headers["allow"] == "POST"
    assert "not valid JSON" in openai_error(post_raw(url, CHAT, b'{"model": '), 400)["message"]
    as_text = post_raw(url, CHAT, b"hello", **{"content-type": "text/plain"})
    assert "valid dictionary" in openai_error(as_text, 400)["message"]
    with pytest.raises(openai.NotFoundError) as caught:
        client(url).post("/tandem/nothing", cast_to=object, body={})
    assert caught.value.type == "invalid_request_error" and "no such endpoint: POST" in caught.value.message


# -- models, docs and the key --


def test_models_retrieve_matches_the_list_entry(serve: Serve) -> None:
    c = client(serve(app()))
    listed = {m.id: m for m in c.models.list()}
    for name in ("edge", "team/edge"):
        model = c.models.retrieve(name)
        assert (model.id, model.object, model.owned_by, model.created) == (name, "model", "tandemlm", 0)
        assert model.model_dump() == listed[name].model_dump()
    assert c.models.retrieve("edge").model_extra == {"description": "the edge alone"}
    with pytest.raises(openai.NotFoundError) as caught:
        c.models.retrieve("gpt-5")
    assert caught.value.code == "model_not_found" and "no pipeline named 'gpt-5'" in caught.value.message


def test_docs_and_schema_need_the_key_when_keys_are_set(serve: Serve) -> None:
    url = serve(app(api_keys=["k"]))
    for path in ("/docs", "/redoc", "/openapi.json", "/v1/models/edge"):
        assert openai_error(httpx.get(f"{url}{path}"), 401)["code"] == "invalid_api_key"
        assert httpx.get(f"{url}{path}", headers={"Authorization": "Bearer k"}).status_code == 200
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{url}{path}").status_code == 200
    schema = httpx.get(f"{url}/openapi.json", headers={"Authorization": "Bearer k"}).json()
    assert "/v1/models/{model}" in schema["paths"]

"""Schemathesis against the gateway's own OpenAPI schema, on a scripted backend: no input may produce a 5xx.
And any text or bytes in a message, lone surrogates and invalid UTF-8 included, is answered or refused in OpenAI's
error shape by a real server."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import parse_config
from tandemlm.server import create_app

CONFIG = """
models:
  small: {engine: scripted, replies: "edge says hi", location: edge, max_concurrency: 1}
  big: {engine: scripted, replies: "cloud says hi", location: cloud}
pipelines:
  edge: {model: small}
  cloud: {model: big}
"""
VOCAB = ("<unk>", "a", "b", "c")


def _app():  # type: ignore[no-untyped-def]
    logits = ScriptedModel("ab", name="small", vocab=VOCAB, logits=lambda t: [0.0, 1.0, 2.0, 3.0], max_concurrency=1)
    return create_app(Runtime(parse_config(CONFIG), models={"small": logits}))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])


ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # surrogates (category Cs) included


def test_any_text_or_bytes_is_answered_or_refused_in_openai_shape(serve: Callable[[FastAPI], str]) -> None:
    url = serve(_app())

    @given(text=ANY_TEXT, junk=st.binary(max_size=6), stream=st.booleans())
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(text: str, junk: bytes, stream: bool) -> None:
        body = {"model": "edge", "messages": [{"role": "user", "content": text}], "stream": stream}
        raw = json.dumps(body).encode().replace(b'"content": "', b'"content": "' + junk.replace(b'"', b""), 1)
        r = http.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
        elif stream:
            assert r.text.rstrip().endswith("data: [DONE]")

    with httpx.Client(base_url=url, timeout=30) as http:
        check()

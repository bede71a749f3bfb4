"""Schemathesis against the gateway's own OpenAPI schema, on a scripted backend: no input may produce a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

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

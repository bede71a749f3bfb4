"""`tandem serve` on the tiny real config, called with the `openai` SDK: chat, stream and a 400 from the model."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest
from fastapi import FastAPI

from tandemlm.config import load_config
from tandemlm.server import create_app

pytestmark = pytest.mark.slow


def test_smollm2_through_the_gateway(serve: Callable[[FastAPI], str], smollm2_path: str) -> None:
    c = openai.OpenAI(base_url=f"{serve(create_app(load_config('tiny')))}/v1", api_key="x", max_retries=0)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    r = c.chat.completions.create(model="cloud", messages=messages, max_tokens=12, temperature=0)  # type: ignore[arg-type]
    assert r.choices[0].message.content and 0 < r.usage.completion_tokens <= 12
    calls = r.model_extra["tandem"]["calls"]
    assert calls[0]["location"] == "cloud" and calls[0]["cost_usd"] > 0
    stream = c.chat.completions.create(model="edge", messages=messages, max_tokens=12, temperature=0, stream=True)  # type: ignore[arg-type]
    assert "".join(ch.choices[0].delta.content or "" for ch in stream).strip()
    with pytest.raises(openai.BadRequestError, match="exceeds the context window of 2048"):
        c.chat.completions.create(model="edge", messages=[{"role": "user", "content": "word " * 3000}], max_tokens=8)


def test_strategies_are_models_of_the_gateway(serve: Callable[[FastAPI], str], smollm2_path: str) -> None:
    c = openai.OpenAI(base_url=f"{serve(create_app(load_config('tiny')))}/v1", api_key="x", max_retries=0)
    assert {"speculative", "token-routing", "cascade"} <= {m.id for m in c.models.list()}
    messages = [{"role": "user", "content": "Name a colour."}]
    for pipeline, prefix in (
        ("speculative", "speculative: rounds="),
        ("token-routing", "token_routing: edge_tokens="),
        ("cascade", "cascade: "),
    ):
        r = c.chat.completions.create(model=pipeline, messages=messages, max_tokens=8, temperature=0)  # type: ignore[arg-type]
        assert r.choices[0].message.content and r.model_extra["tandem"]["decision"].startswith(prefix)
        stream = c.chat.completions.create(model=pipeline, messages=messages, max_tokens=8, temperature=0, stream=True)  # type: ignore[arg-type]
        assert "".join(ch.choices[0].delta.content or "" for ch in stream)

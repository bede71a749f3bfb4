"""The fused pipelines of tests/collab/test_fusion_real.py (SmolLM2-135M in both roles) as gateway models, called
with the openai SDK."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from fastapi import FastAPI

from tandemlm.config import Runtime, parse_config
from tandemlm.server import create_app

pytestmark = pytest.mark.slow


def _fused_cases() -> Any:
    """tests/collab/test_fusion_real.py's pipelines (one table for both tests)."""
    path = Path(__file__).parents[1] / "collab" / "test_fusion_real.py"
    spec = importlib.util.spec_from_file_location("fusion_real_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _fused_cases()


@pytest.fixture(scope="module")
def gateway(serve_module: Callable[[FastAPI], str], smollm2_path: str) -> Iterator[str]:
    runtime = Runtime(parse_config(CASES.fused_yaml(), "fused"))
    yield serve_module(create_app(runtime))
    runtime.close()


def test_every_fused_pipeline_is_a_model_of_the_gateway(gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0, timeout=120)
    assert set(CASES.FUSED) <= {m.id for m in client.models.list()}
    messages: Any = [{"role": "user", "content": "What is 2 plus 3?"}]
    for pipeline, (strategy, decision, roles) in CASES.FUSED.items():
        r = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=6, temperature=0)
        tandem = (r.model_extra or {})["tandem"]
        text = r.choices[0].message.content
        assert text and tandem["decision"].startswith(decision), (pipeline, tandem["decision"])
        assert roles <= {c["role"] for c in tandem["calls"]}
        report = tandem[next(iter(strategy))]
        assert report["tokens"] and set(report["tokens"][0]["members"]) == set(report["roles"])
        if pipeline == "fusion":
            chunks = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=6, temperature=0,
                                                    stream=True)  # fmt: skip
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    sampled = client.chat.completions.create(model="contrastive", messages=messages, max_tokens=6, temperature=0.8,
                                             top_p=0.9, seed=1)  # fmt: skip
    assert sampled.choices[0].message.content

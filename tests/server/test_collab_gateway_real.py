"""The performance collaborations of the tiny real config as models of the gateway, called with the openai SDK."""

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


def _collab_cases() -> Any:
    """The cases of tests/collab/test_collab_real.py (one table of prompts and decisions for both tests)."""
    path = Path(__file__).parents[1] / "collab" / "test_collab_real.py"
    spec = importlib.util.spec_from_file_location("collab_real_cases", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CASES = _collab_cases()


@pytest.fixture(scope="module")
def gateway(
    serve_module: Callable[[FastAPI], str], smollm2_path: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    runtime = Runtime(parse_config(CASES.tiny_yaml(tmp_path_factory.mktemp("guides")), "tiny"))
    yield serve_module(create_app(runtime))
    runtime.close()


def test_every_collaboration_is_a_model_of_the_gateway(gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="x", max_retries=0, timeout=120)
    assert set(CASES.CASES) <= {m.id for m in client.models.list()}
    for pipeline, (prompt, decision, _) in CASES.CASES.items():
        messages: Any = [{"role": "user", "content": prompt}]
        r = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=8, temperature=0)
        tandem = (r.model_extra or {})["tandem"]
        assert r.choices[0].message.content is not None and tandem["decision"].startswith(decision), pipeline
        if pipeline in CASES.STREAMED:
            chunks = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=8, temperature=0,
                                                    stream=True)  # fmt: skip
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip(), pipeline
    with pytest.raises(openai.BadRequestError, match="rewrites the prompt between its models"):
        client.chat.completions.create(model="vote", messages=[{"role": "user", "content": "hi"}], logprobs=True)

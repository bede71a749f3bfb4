"""The tiny config's guarded pipeline through the gateway and the `openai` SDK: a blocked request is a 400 with
code content_filter, a cut stream ends with finish_reason content_filter and releases nothing it did not pass.

SmolLM2-135M is a weak judge, so the verdicts are forced with the judge's threshold (0: every text is unsafe,
1: none is): the scores still come from the real model's logits, and what is tested is the gateway's path."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path

import httpx  # noqa: F401  # imported before the server threads start, which import it too
import openai
import pytest
import yaml
from fastapi import FastAPI

from tandemlm.config import TandemConfig
from tandemlm.server import create_app

pytestmark = pytest.mark.slow


def tiny_guarded(ledger: Path) -> TandemConfig:
    """The packaged tiny config, its judge forced to flag everything, plus a copy of guarded-cloud that passes
    every request and flags every answer."""
    data = yaml.safe_load(resources.files("tandemlm.data").joinpath("tiny.yaml").read_text(encoding="utf-8"))
    data["guards"]["judge"]["threshold"] = 0.0
    data["guards"]["pass"] = {**data["guards"]["judge"], "threshold": 1.0}
    cut = {**data["pipelines"]["guarded-cloud"]}
    cut["guard"] = {**cut["guard"], "input": "pass", "output": "judge"}  # windows of 200: 8 tokens fit in one
    data["pipelines"]["guarded-cut"] = cut
    data["ledger"] = str(ledger)
    return TandemConfig.model_validate(data)


def test_the_guarded_pipeline_blocks_and_cuts(
    serve: Callable[[FastAPI], str], smollm2_path: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "egress.jsonl"
    url = serve(create_app(tiny_guarded(ledger)))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    messages = [{"role": "user", "content": "Name a colour."}]
    with pytest.raises(openai.BadRequestError, match=r"flagged the request \(category S\d+") as err:
        client.chat.completions.create(model="guarded-cloud", messages=messages, max_tokens=8)  # type: ignore[arg-type]
    assert err.value.code == "content_filter"
    assert not ledger.exists()  # nothing left the device
    stream = client.chat.completions.create(
        model="guarded-cut",
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""  # the first window failed
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    tandem = chunks[-1].model_extra["tandem"]
    assert "the output guard 'judge' flagged window 0" in tandem["decision"]
    roles = [call["role"] for call in tandem["calls"]]
    assert roles[0] == "guard-input" and "guard-output" in roles and "guarded" in roles  # the cloud's call
    assert len(ledger.read_text().splitlines()) == 1  # the request passed: it went to the cloud once

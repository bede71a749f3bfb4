"""`/v1/embeddings` through the `openai` SDK: MiniLM's vectors, float and base64, string and list input, errors."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import openai
import pytest
from fastapi import FastAPI

from tandemlm import Runtime
from tandemlm.config import parse_config
from tandemlm.server import create_app

Serve = Callable[[FastAPI], str]
CONFIG = "models: {m: {engine: scripted, replies: hi}}\npipelines: {chat: {model: m}}"


def test_bad_embedding_requests_are_4xx_before_any_model_loads(serve: Serve) -> None:
    url = serve(create_app(Runtime(parse_config(CONFIG))))
    for body, status, why in (
        ({"model": "text-embedding-3-small", "input": "x"}, 404, "no embeddings model named"),
        ({"model": "minilm", "input": [1, 2, 3]}, 400, "token ids"),
        ({"model": "minilm", "input": []}, 400, "input is empty"),
        ({"model": "minilm", "input": "x", "dimensions": 256}, 400, "dimensions must be 384"),
        ({"model": "minilm", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
    ):
        r = httpx.post(f"{url}/v1/embeddings", json=body)
        assert r.status_code == status and why in r.json()["error"]["message"], r.text
    assert "minilm" not in {m["id"] for m in httpx.get(f"{url}/v1/models").json()["data"]}  # not a pipeline


@pytest.mark.slow
def test_minilm_embeddings_in_openai_shape(serve: Serve) -> None:
    from tandemlm.collab.routing.embeddings import MiniLM
    from tandemlm.errors import ModelSourceError

    try:
        reference = MiniLM(fetch=False)
    except ModelSourceError as err:
        pytest.skip(str(err))
    texts = ["How do I sort a list in Python?", "The weather in Paris is mild."]
    c = openai.OpenAI(base_url=f"{serve(create_app(Runtime(parse_config(CONFIG))))}/v1", api_key="x", max_retries=0)
    as_base64 = c.embeddings.create(model="minilm", input=texts)  # the SDK asks for base64 and decodes it
    as_float = c.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    one = c.embeddings.create(model="minilm", input=texts[0], encoding_format="float")
    expected = reference.embed(texts)
    for r in (as_base64, as_float):
        assert [d.index for d in r.data] == [0, 1] and r.object == "list"
        np.testing.assert_allclose(np.array([d.embedding for d in r.data]), expected, atol=1e-6)
        assert (
            r.usage.prompt_tokens
            == r.usage.total_tokens
            == sum(len(e.ids) for e in reference.tokenizer.encode_batch(texts))
        )
    np.testing.assert_allclose(one.data[0].embedding, expected[0], atol=1e-6)
    assert len(one.data[0].embedding) == 384 and as_float.model == "all-MiniLM-L6-v2"

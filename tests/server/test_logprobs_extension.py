"""tandem's /v1/tandem/logprobs extension: exact on scripted logits, equal to the local model on smollm2."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from tandemlm import Runtime, ScriptedModel
from tandemlm.config import load_config, parse_config
from tandemlm.models.llamacpp import LlamaCppModel
from tandemlm.server import create_app

Serve = Callable[[FastAPI], str]
VOCAB = ("<unk>", "a", "b", "c")
CONFIG = """
models:
  small: {engine: scripted}
pipelines:
  edge: {model: small}
"""


def _logits(prefix: list[int]) -> list[float]:
    return [0.0, float(len(prefix)), 1.0, float(prefix[-1])]


@pytest.fixture
def scripted(serve: Serve) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(name="small", vocab=VOCAB, logits=_logits)
    return serve(create_app(Runtime(parse_config(CONFIG), models={"small": model}))), model


def test_values_at_positions_equal_the_local_model(scripted: tuple[str, ScriptedModel]) -> None:
    url, model = scripted
    r = httpx.post(
        f"{url}/v1/tandem/logprobs", json={"model": "edge", "tokens": [1, 2, 3], "positions": [0, 2], "top_k": None}
    )
    body = r.json()
    assert r.status_code == 200 and body["n_tokens"] == 3 and body["vocab_size"] == 4
    for item in body["logprobs"]:
        local = model.next_token_logprobs([1, 2, 3][: item["position"] + 1])
        np.testing.assert_allclose(item["values"], local.values, rtol=0, atol=1e-12)
    top = httpx.post(f"{url}/v1/tandem/logprobs", json={"model": "edge", "tokens": [1, 2, 3], "top_k": 2}).json()
    local = model.next_token_logprobs([1, 2, 3]).top(2)
    assert [tuple(x) for x in top["logprobs"][0]["top"]] == [(i, pytest.approx(v)) for i, v in local]


def test_sessions_take_only_the_new_tokens(scripted: tuple[str, ScriptedModel]) -> None:
    url, model = scripted
    first = httpx.post(f"{url}/v1/tandem/logprobs", json={"model": "edge", "tokens": [1, 2], "top_k": None}).json()
    session = first["session_id"]
    # the session holds [1, 2]; send one more token after both
    more = httpx.post(
        f"{url}/v1/tandem/logprobs",
        json={"model": "edge", "session_id": session, "offset": 2, "tokens": [3], "top_k": None},
    ).json()
    assert more["n_tokens"] == 3 and more["session_id"] == session
    assert more["logprobs"][0]["values"] == pytest.approx(model.next_token_logprobs([1, 2, 3]).values.tolist())
    # rewind: keep one token, replace the rest
    rewind = httpx.post(
        f"{url}/v1/tandem/logprobs",
        json={"model": "edge", "session_id": session, "offset": 1, "tokens": [1], "top_k": None},
    ).json()
    assert rewind["logprobs"][0]["values"] == pytest.approx(model.next_token_logprobs([1, 1]).values.tolist())
    bad = httpx.post(
        f"{url}/v1/tandem/logprobs", json={"model": "edge", "session_id": session, "offset": 9, "tokens": [1]}
    )
    assert bad.status_code == 400 and "resend the whole sequence" in bad.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "edge", "tokens": []}, "sequence is empty"),
        ({"model": "edge", "tokens": [1], "positions": [5]}, "positions must be"),
        ({"model": "edge", "tokens": [1], "top_k": 0}, "'top_k'"),
        ({"model": "nope", "tokens": [1]}, "no pipeline named"),
    ],
)
def test_bad_logprob_requests(scripted: tuple[str, ScriptedModel], body: dict, message: str) -> None:  # type: ignore[type-arg]
    url, _ = scripted
    r = httpx.post(f"{url}/v1/tandem/logprobs", json=body)
    assert 400 <= r.status_code < 500 and message in r.json()["error"]["message"]


@pytest.mark.slow
def test_served_smollm2_matches_the_local_model(serve: Serve, smollm2: LlamaCppModel) -> None:
    url = serve(create_app(load_config("tiny")))
    ids = smollm2.tokenize("def add(a, b):\n    return a +")
    r = httpx.post(
        f"{url}/v1/tandem/logprobs",
        json={"model": "edge", "tokens": ids, "positions": [3, len(ids) - 1], "top_k": None},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    remote = r.json()["logprobs"]
    for item in remote:
        local = smollm2.next_token_logprobs(ids[: item["position"] + 1])
        assert int(np.argmax(item["values"])) == local.argmax()
        np.testing.assert_allclose(np.exp(item["values"]), np.exp(local.values), atol=2e-3)
    info = httpx.get(f"{url}/v1/tandem/models/edge").json()
    assert info["vocab_fingerprint"] == smollm2.vocab_fingerprint and info["context_length"] == 2048
    assert math.isclose(float(np.exp(remote[-1]["values"]).sum()), 1.0, rel_tol=1e-6)


@pytest.mark.slow
def test_a_remote_model_through_the_openai_engine_verifies_for_a_local_draft(
    serve: Serve, smollm2: LlamaCppModel
) -> None:
    from tandemlm import Recorder, Request
    from tandemlm.collab.speculative import SpeculativeDecoder
    from tandemlm.models.openai import OpenAIModel

    url = serve(create_app(load_config("tiny")))
    remote = OpenAIModel("cloud", base_url=f"{url}/v1", name="remote", timeout=120)
    try:
        ids = smollm2.tokenize("The capital of France is")
        far, near = remote.next_token_logprobs(ids, top_k=None), smollm2.next_token_logprobs(ids)
        assert far.argmax() == near.argmax()
        np.testing.assert_allclose(np.exp(far.values), np.exp(near.values), atol=2e-3)
        assert remote.vocab_fingerprint == smollm2.vocab_fingerprint

        spec = SpeculativeDecoder(smollm2, remote, k=4, adaptive=False)
        with Recorder() as rec:
            c = spec.generate(Request.of("Name a colour.", max_tokens=12))
        assert c.text and spec.last_stats.rounds > 1
        sent = [json.loads(e.egress) for e in rec.events if e.model == "remote"]
        assert len(sent) == spec.last_stats.rounds
        assert sent[0]["offset"] == 0 and all(s["offset"] > 0 for s in sent[1:])  # later rounds send only new tokens
        assert max(len(s["tokens"]) for s in sent[1:]) <= 4 + 1
    finally:
        remote.close()

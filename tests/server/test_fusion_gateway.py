"""Fusion with a remote member (an `openai` engine on a tandem gateway, through the logprobs extension), and fused
pipelines served by the gateway to the openai client: scripted logits, exact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import openai
from fastapi import FastAPI

from tandemlm import Recorder, Request, Runtime, ScriptedModel
from tandemlm.collab.fusion import LogitFusion, ProxyTuned
from tandemlm.config import parse_config
from tandemlm.models.base import LanguageModel
from tandemlm.models.openai import OpenAIModel
from tandemlm.server import create_app

Serve = Callable[[FastAPI], str]
VOCAB = ("<unk>", "a", "b", "c", "d", "e", "<end>")
END = 6
CONFIG = """
models:
  big: {engine: scripted}
  small: {engine: scripted}
  tuned: {engine: scripted}
pipelines:
  small: {model: small}
  fused: {strategy: {fusion: {members: [big, small], weights: [0.6, 0.4], trace_tokens: 4}}}
  contrastive: {strategy: {contrastive: {expert: big, amateur: small}}}
  proxy: {strategy: {proxy_tuned: {large: big, tuned_small: tuned, base_small: small}}}
  safe: {strategy: {safety_guided: {model: big, safe_small: tuned, base_small: small, first_m: 2}}}
"""


def noisy(seed: str) -> Callable[[Sequence[int]], list[float]]:
    def logits(prefix: Sequence[int]) -> list[float]:
        digest = hashlib.sha256((seed + ",".join(map(str, prefix))).encode()).digest()
        values = [b / 255 * 5 for b in digest[: len(VOCAB)]]
        values[0] = -20.0
        values[END] += 8.0 if len(prefix) > 12 else -8.0
        return values

    return logits


def scripted(seed: str, name: str) -> ScriptedModel:
    return ScriptedModel(name=name, vocab=VOCAB, logits=noisy(seed), end_token=END)


def models() -> dict[str, LanguageModel]:
    return {"big": scripted("big", "big"), "small": scripted("small", "small"), "tuned": scripted("tuned", "tuned")}


def test_a_remote_member_sends_only_new_token_ids(serve: Serve) -> None:
    url = serve(create_app(Runtime(parse_config(CONFIG), models())))
    remote = OpenAIModel("small", base_url=f"{url}/v1", name="remote", timeout=30)
    try:
        request = Request.of("abcd", max_tokens=16)
        local = LogitFusion([scripted("big", "big"), scripted("small", "small")], [0.6, 0.4])
        expected = local.generate(request)
        fused = LogitFusion([scripted("big", "big"), remote], [0.6, 0.4])
        with Recorder() as rec:
            c = fused.generate(request)
        assert c.text == expected.text and len(c.text) > 3
        steps = fused.last_stats.steps
        sent = [json.loads(e.egress or "") for e in rec.events if e.model == "remote"]
        assert len(sent) == steps and sent[0]["offset"] == 0 and sent[0]["tokens"] == [1, 2, 3, 4]
        assert all(len(s["tokens"]) == 1 and s["offset"] == 4 + i for i, s in enumerate(sent[1:]))  # the new one
        assert all(s["top_k"] is None for s in sent)  # the whole vector comes back: fusion needs every token
        assert f"to remote (the prompt's 4 and the answer's first {steps - 1})" in (c.decision or "")
        # proxy-tuning with the large model remote: what left is token ids, never the small models' logits
        proxy = ProxyTuned(remote, scripted("tuned", "tuned"), scripted("big", "base"), alpha=1.0)
        with Recorder() as rec:
            proxy.generate(request)
        bodies = [json.loads(e.egress) for e in rec.events if e.egress is not None]
        assert bodies and {e.model for e in rec.events if e.egress is not None} == {"remote"}
        assert all(set(b) == {"model", "session_id", "offset", "tokens", "positions", "top_k"} for b in bodies)
        assert all(isinstance(t, int) for b in bodies for t in b["tokens"])
    finally:
        remote.close()


def test_fused_pipelines_are_models_of_the_gateway(serve: Serve) -> None:
    url = serve(create_app(Runtime(parse_config(CONFIG), models())))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
    assert {"fused", "contrastive", "proxy", "safe"} <= {m.id for m in client.models.list()}
    messages: Any = [{"role": "user", "content": "abcd"}]
    for pipeline, kind in (("fused", "fusion"), ("contrastive", "contrastive"), ("proxy", "proxy_tuned"),
                           ("safe", "safety_guided")):  # fmt: skip
        r = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=12, temperature=0)
        tandem = (r.model_extra or {})["tandem"]
        text = r.choices[0].message.content
        assert text and tandem["decision"].startswith(f"{kind}: "), pipeline
        report = tandem[kind]
        first = report["tokens"][0]
        assert text.startswith(first["text"]) and set(first["members"]) == set(report["roles"])
        chunks = client.chat.completions.create(model=pipeline, messages=messages, max_tokens=12, temperature=0,
                                                stream=True)  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text, pipeline
    r = client.chat.completions.create(model="fused", messages=messages, max_tokens=12, temperature=0)
    report = (r.model_extra or {})["tandem"]["fusion"]
    assert len(report["tokens"]) == 4 and report["more_tokens"] == r.usage.completion_tokens - 4  # type: ignore[union-attr]

"""Continuous batching on a real model (smollm2-135m): `generate_many` decodes several answers together."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from tandemlm import Request
from tandemlm.errors import DeadlineExceededError
from tandemlm.execution import cancel_scope
from tandemlm.models.llamacpp import LlamaCppModel

pytestmark = pytest.mark.slow

PROMPTS = [
    "Count from 1 to 10, separated by commas.",
    "Name three colours.",
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List the days of the week.",
]


def _requests() -> list[Request]:
    return [
        Request.of(PROMPTS[0], max_tokens=40, stop=["5"]),  # ends at a stop sequence
        Request.of(PROMPTS[1], max_tokens=3),  # ends at max_tokens
        *(Request.of(p, max_tokens=20) for p in PROMPTS[2:]),
    ]


@pytest.mark.parametrize("slots", [1, 2, 3])
def test_greedy_batches_give_exactly_the_answers_of_generate(
    smollm2: LlamaCppModel, monkeypatch: pytest.MonkeyPatch, slots: int
) -> None:
    # five requests through `slots` slots: the others wait for a free one. Fewer than four sequences per step keep
    # llama.cpp's one-sequence kernels, so the text is the same to the character as each request alone
    monkeypatch.setattr(smollm2, "exact_slots", slots)
    requests = _requests()
    alone = []
    for r in requests:
        smollm2.clear_cache()
        alone.append(smollm2.generate(r))
    together = smollm2.generate_many(requests)
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.finish_reason for c in together] == [c.finish_reason for c in alone]
    assert [c.usage for c in together] == [c.usage for c in alone]
    assert alone[0].finish_reason == "stop" and "5" not in alone[0].text  # cut at the stop sequence
    assert alone[1].finish_reason == "length" and alone[1].usage.completion_tokens == 3
    for c in together:  # each answer has its own trace event
        (event,) = c.trace
        assert event.operation == "generate" and event.model == "smollm2-135m" and event.latency_s > 0


def test_seeded_samples_in_a_batch_repeat_and_differ_by_seed(smollm2: LlamaCppModel) -> None:
    base = Request.of("Tell me a short story about a cat.", max_tokens=24)
    sampled = [replace(base, params=replace(base.params, temperature=1.0, seed=s)) for s in range(1, 7)]
    texts = [c.text for c in smollm2.generate_many(sampled)]  # six sequences in one step
    assert texts == [c.text for c in smollm2.generate_many(sampled)]
    assert len(set(texts)) > 1 and all(t.strip() for t in texts)


def test_a_batch_past_its_deadline_stops_between_steps(smollm2: LlamaCppModel) -> None:
    requests = [Request.of(p, max_tokens=400) for p in PROMPTS[:3]]
    began = time.perf_counter()
    with pytest.raises(DeadlineExceededError), cancel_scope(timeout=0.5):
        smollm2.generate_many(requests)
    assert time.perf_counter() - began < 5  # 1200 tokens would take far longer
    assert smollm2.generate_many(requests[:2])[0].text  # the model is free again


def test_requests_the_batch_cannot_serve_are_answered_one_by_one(smollm2: LlamaCppModel) -> None:
    requests = [Request.of(p, max_tokens=4, logprobs=2) for p in PROMPTS[:2]]
    answers = smollm2.generate_many(requests)
    assert all(c.logprobs is not None and len(c.logprobs) == c.usage.completion_tokens for c in answers)

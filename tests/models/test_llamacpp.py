"""The llama.cpp engine on real models: smollm2-135m, and a smoke test of the Qwen pair."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from tandemlm import Message, Request
from tandemlm.errors import ContextLengthError, ValidationError
from tandemlm.models.llamacpp import LlamaCppModel, load_llamacpp

pytestmark = pytest.mark.slow


def test_greedy_generate_is_deterministic_and_counts_tokens(smollm2: LlamaCppModel) -> None:
    request = Request.of("What is the capital of France?", max_tokens=12)
    smollm2.clear_cache()
    a = smollm2.generate(request)
    smollm2.clear_cache()
    b = smollm2.generate(request)
    assert a.text == b.text and a.text.strip()
    assert a.usage.prompt_tokens == len(smollm2.tokenize(smollm2.render(request)))
    assert 0 < a.usage.completion_tokens <= 12
    assert a.finish_reason in ("stop", "length")
    assert a.trace[0].location == "edge" and a.trace[0].egress is None


def test_stream_joins_to_the_same_text_as_generate(smollm2: LlamaCppModel) -> None:
    request = Request.of("Name three colours.", max_tokens=24)
    smollm2.clear_cache()
    chunks = list(smollm2.stream(request))
    final = chunks[-1].completion
    assert final is not None
    smollm2.clear_cache()
    assert "".join(c.text for c in chunks) == final.text == smollm2.generate(request).text
    assert len(chunks) > 3  # it really streams


def test_stop_sequence_cuts_the_text_and_is_never_streamed(smollm2: LlamaCppModel) -> None:
    smollm2.clear_cache()
    full = smollm2.generate(Request.of("Count from 1 to 10, separated by commas.", max_tokens=40)).text
    assert "3" in full
    stop = full[full.index("3") :][:2]  # a two-character stop that occurs in the greedy answer
    request = Request.of("Count from 1 to 10, separated by commas.", max_tokens=40, stop=[stop])
    smollm2.clear_cache()
    chunks = list(smollm2.stream(request))
    text = "".join(c.text for c in chunks)
    assert text == full[: full.index(stop)] and chunks[-1].finish_reason == "stop"


def test_next_token_logprobs_is_a_distribution_with_the_obvious_answer_on_top(smollm2: LlamaCppModel) -> None:
    lp = smollm2.next_token_logprobs(smollm2.tokenize("The capital of France is"))
    assert lp.complete and lp.vocab_size == 49152
    assert math.isclose(float(np.exp(lp.values).sum()), 1.0, rel_tol=1e-6)
    assert smollm2.detokenize([lp.argmax()]) == " Paris"
    top = smollm2.next_token_logprobs(smollm2.tokenize("The capital of France is"), top_k=5)
    assert [i for i, _ in top.top(5)] == [i for i, _ in lp.top(5)]


def test_score_ranks_a_likely_continuation_above_an_unlikely_one(smollm2: LlamaCppModel) -> None:
    prompt = "The capital of France is"
    assert smollm2.score(prompt, " Paris") > smollm2.score(prompt, " banana") + 5
    # score of one token equals the next-token log-probability of that token
    paris = smollm2.tokenize(" Paris")
    assert len(paris) == 1
    assert smollm2.score(prompt, " Paris") == pytest.approx(
        smollm2.next_token_logprobs(smollm2.tokenize(prompt)).logprob(paris[0]), abs=1e-3
    )


def test_kv_reuse_gives_the_same_logits_as_a_fresh_model(smollm2: LlamaCppModel, smollm2_path: str) -> None:
    prefix = smollm2.tokenize("def fibonacci(n):\n    if n < 2:\n        return n\n    return")
    smollm2.generate(Request.of("Something unrelated first.", max_tokens=4))
    smollm2.next_token_logprobs(prefix[:-3])  # leaves a shared prefix in the cache
    reused = smollm2.next_token_logprobs(prefix)
    assert smollm2.llm.n_tokens == len(prefix)
    fresh_model = LlamaCppModel(smollm2_path, n_ctx=1024)
    try:
        fresh = fresh_model.next_token_logprobs(prefix)
    finally:
        fresh_model.close()
    assert reused.argmax() == fresh.argmax()
    np.testing.assert_allclose(np.exp(reused.values), np.exp(fresh.values), atol=2e-3)


def test_multi_turn_chat_uses_the_template(smollm2: LlamaCppModel) -> None:
    request = Request((Message("system", "Answer in one word."), Message("user", "Hi"), Message("assistant", "Hello"),
                       Message("user", "Colour of the sky?")), )  # fmt: skip
    prompt = smollm2.render(request)
    assert prompt.count("<|im_start|>") == 5 and prompt.endswith("<|im_start|>assistant\n")
    assert smollm2.generate(request).text


def test_context_window_and_token_ids_are_validated(smollm2: LlamaCppModel) -> None:
    with pytest.raises(ContextLengthError, match="exceeds the context window of 1024"):
        smollm2.generate(Request.of("word " * 2000))
    with pytest.raises(ValidationError, match="token ids must be in"):
        smollm2.next_token_logprobs([1, 10**6])
    assert smollm2.detokenize(smollm2.tokenize("round trip, ünïcode")) == "round trip, ünïcode"


def test_base_model_without_template_and_other_vocabulary(
    smollm2: LlamaCppModel, catalog_path: Callable[[str], str]
) -> None:
    gemma = load_llamacpp(f"path:{catalog_path('gemma3-270m')}", chat_template=False, n_ctx=512)
    try:
        assert gemma.render(Request.of("Once upon a time")) == "Once upon a time"
        assert gemma.generate(Request.of("Once upon a time", max_tokens=5)).usage.completion_tokens > 0
        assert gemma.vocab_fingerprint != smollm2.vocab_fingerprint
    finally:
        gemma.close()


@pytest.mark.qwen
def test_qwen_pair_loads_answers_and_shares_a_vocabulary(catalog_path: Callable[[str], str]) -> None:
    fingerprints = []
    for name in ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"):
        model = load_llamacpp(f"path:{catalog_path(name)}", name=name, n_ctx=512)
        try:
            c = model.generate(Request.of("Write a Python expression that adds 2 and 3.", max_tokens=16))
            assert "2" in c.text and "3" in c.text, c.text
            assert model.llm.n_vocab() == 151936
            fingerprints.append(model.vocab_fingerprint)
        finally:
            model.close()
    assert fingerprints[0] == fingerprints[1] is not None

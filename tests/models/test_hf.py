"""The torch engine on smollm2-135m (its Q4_1 GGUF, dequantised by transformers) against the llama.cpp engine."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import numpy as np
import pytest

from tandemlm import Message, Request
from tandemlm.errors import MissingExtraError, RequestCancelledError
from tandemlm.execution import CancelToken, use_token
from tandemlm.models.llamacpp import LlamaCppModel

TEXT = (
    "The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon, and Neil Armstrong "
    "became the first person to walk on its surface. def add(a, b):\n    return a + b\n"
)
STRINGS = [
    "Hello world",
    " leading space",
    "ünïcödé ✓ 日本語",
    "x = [1, 2, 3]\nprint(x)",
    "<|im_start|>user\nhi<|im_end|>",
]

# Tolerance of the next-token distributions. The two engines read the same Q4_1 weights, but transformers
# dequantises them to float32 and multiplies in float32, while llama.cpp's Q4_1 kernels round the activations
# to 8 bits per block (vec_dot_q4_1_q8_1) before each matrix product: the logits differ by that rounding, not
# by the weights. Measured on TEXT (40 positions, 1 and 2 torch threads alike): top-1 agreement 0.95 (the 2
# disagreements are near-ties, llama.cpp's top two 0.06 and 0.08 nats apart), max |logprob difference| over
# llama.cpp's top 5 tokens 0.39, max KL(llama.cpp || torch) 0.022; on a second text 0.58 and 0.048. The
# bounds leave about 2x margin (and 6 near-ties of 40); a wrong weight layout (an unpermuted q/k, a wrong
# norm) gives differences of several nats and top-1 agreement near chance.
TOP1_AGREEMENT = 0.85
TOP5_MAX_DIFF = 1.0
MAX_KL = 0.1


@pytest.fixture(scope="module")
def hf(smollm2_path: str) -> Iterator[object]:
    from tandemlm.models.hf import load_hf

    model = load_hf("catalog:smollm2-135m", n_threads=1, n_ctx=1024)
    yield model
    model.close()


def _close(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(top-1 agreement, max |a - b| over a's top 5, max KL(a || b)) of rows of log-probabilities."""
    top = np.argsort(-a, axis=1)[:, :5]
    diff = np.abs(np.take_along_axis(a, top, 1) - np.take_along_axis(b, top, 1)).max()
    kl = (np.exp(a) * (a - b)).sum(axis=1).max()
    return float((a.argmax(1) == b.argmax(1)).mean()), float(diff), float(kl)


@pytest.mark.slow
def test_same_tokens_vocabulary_and_end_tokens_as_llamacpp(hf, smollm2: LlamaCppModel) -> None:
    assert hf.vocab_fingerprint == smollm2.vocab_fingerprint is not None
    for text in STRINGS:
        assert hf.tokenize(text) == smollm2.tokenize(text), text
        assert hf.tokenize(text, add_special=True) == smollm2.tokenize(text, add_special=True), text
        ids = smollm2.tokenize(text)
        assert hf.detokenize(ids) == smollm2.detokenize(ids), text
    chat = Request.of([Message("system", "Be brief."), Message("user", "What is 2+2? <|im_end|> not a control token")])
    assert hf.render(chat) == smollm2.render(chat)
    assert hf.prompt_tokens(chat) == smollm2.prompt_tokens(chat)
    assert hf.prompt_tokens(Request.completion("hi there")) == smollm2.prompt_tokens(Request.completion("hi there"))
    pieces = sorted({t for text in STRINGS for t in smollm2.tokenize(text)} | set(range(20)))
    assert [hf._piece(t) for t in pieces] == [smollm2._piece(t) for t in pieces]  # logprob entries' bytes
    ends = [i for i in range(49152) if hf.is_end_token(i)]
    assert ends == [i for i in range(49152) if smollm2.is_end_token(i)] and 2 in ends


@pytest.mark.slow
def test_next_token_distributions_are_close_to_llamacpp(hf, smollm2: LlamaCppModel) -> None:
    ids = smollm2.tokenize(TEXT)
    positions = list(range(len(ids) - 40, len(ids)))
    ours = np.stack([d.dense() for d in hf.logprobs_after(ids, positions)])
    theirs = np.stack([d.dense() for d in smollm2.logprobs_after(ids, positions)])
    agree, diff, kl = _close(theirs, ours)
    assert agree >= TOP1_AGREEMENT and diff < TOP5_MAX_DIFF and kl < MAX_KL, (agree, diff, kl)
    assert np.allclose(np.exp(ours).sum(axis=1), 1.0)
    head = smollm2.tokenize("The capital of France is")
    assert hf.detokenize([hf.next_token_logprobs(head).argmax()]) == " Paris"
    assert (
        abs(hf.score("The capital of France is", " Paris") - smollm2.score("The capital of France is", " Paris")) < 0.2
    )


@pytest.mark.slow
def test_the_cache_of_a_growing_or_branching_prefix_gives_fresh_logits(hf) -> None:
    ids = hf.tokenize(TEXT)
    hf.clear_cache()
    fresh = [hf.next_token_logprobs(ids[:n]).dense() for n in (30, 31, 35)]
    hf.clear_cache()
    grown = hf.next_token_logprobs(ids[:30]).dense(), hf.next_token_logprobs(ids[:31]).dense()
    branch = [*ids[:20], *hf.tokenize(" A different ending")]
    other = hf.next_token_logprobs(branch).dense()  # cropped back to the shared 20 tokens
    again = hf.next_token_logprobs(ids[:35]).dense()
    hf.clear_cache()
    assert np.abs(hf.next_token_logprobs(branch).dense() - other).max() < 1e-4
    for a, b in zip((*grown, again), fresh, strict=True):
        assert np.abs(a - b).max() < 1e-4
    top = hf.next_token_logprobs(ids[:30], top_k=3)
    assert [i for i, _ in top.top(3)] == [i for i, _ in hf.next_token_logprobs(ids[:30]).top(3)]


@pytest.mark.slow
def test_generate_stream_stop_and_logprobs(hf) -> None:
    request = Request.of("Name three colours.", max_tokens=12, logprobs=2)
    a = hf.generate(request)
    chunks = list(hf.stream(request))
    final = chunks[-1].completion
    assert final is not None and a.text.strip() and len(chunks) > 3
    assert "".join(c.text for c in chunks) == final.text == a.text
    assert 0 < a.usage.completion_tokens <= 12 and a.usage.prompt_tokens == len(hf.prompt_tokens(request))
    assert a.logprobs is not None and len(a.logprobs) == a.usage.completion_tokens
    assert all(len(e.top) == 2 and e.logprob <= 0 for e in a.logprobs)
    stop = a.text.strip()[3:5]
    cut = hf.generate(Request.of("Name three colours.", max_tokens=12, stop=[stop]))
    assert cut.text == a.text[: a.text.index(stop)] and cut.finish_reason == "stop"
    sampled = Request.of("Name three colours.", max_tokens=8, temperature=0.9, top_p=0.9, seed=7)
    assert hf.generate(sampled).text == hf.generate(sampled).text
    assert a.trace[0].model == "smollm2-135m" and a.trace[0].location == "edge"


@pytest.mark.slow
def test_cancelling_stops_a_stream_between_tokens(hf) -> None:
    token = CancelToken()
    pieces = []
    with use_token(token), pytest.raises(RequestCancelledError):
        for chunk in hf.stream(Request.of("Count from 1 to 100.", max_tokens=200)):
            pieces.append(chunk.text)
            token.cancel()
    assert len(pieces) == 1
    assert hf.generate(Request.of("Say hi.", max_tokens=3)).usage.completion_tokens <= 3  # the owner is free again


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from tandemlm.models.hf import HFModel, load_causal_lm

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    for build in (lambda: HFModel("catalog:smollm2-135m"), lambda: load_causal_lm("catalog:smollm2-135m")):
        with pytest.raises(MissingExtraError, match=r"pip install 'tandemlm\[hf\]'"):
            build()


def test_config_names_the_engine_and_adapters() -> None:
    from tandemlm.config import parse_config

    cfg = parse_config(
        "models:\n"
        "  tuned: {engine: hf, source: catalog:smollm2-135m, adapter: runs/lora}\n"
        "  fast: {engine: llamacpp, source: catalog:smollm2-135m, adapter: runs/lora/adapter.gguf}\n"
        "pipelines:\n  edge: {model: tuned}\n"
    )
    assert cfg.models["tuned"].options("tuned")["adapter"] == "runs/lora"
    assert cfg.models["fast"].options("fast")["adapter"] == "runs/lora/adapter.gguf"

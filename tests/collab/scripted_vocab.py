"""Shared by the speculative-decoding tests: a tiny scripted vocabulary and the target-alone greedy reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tandemlm import ScriptedModel

VOCAB = ("<unk>", "a", "b", "c", "d", "e", "<end>")
END = 6


def scripted(logits: Callable[[Sequence[int]], list[float]], name: str) -> ScriptedModel:
    return ScriptedModel(name=name, vocab=VOCAB, logits=logits, end_token=END)


def greedy_reference(target: ScriptedModel, prompt: list[int], max_tokens: int) -> list[int]:
    out: list[int] = []
    while len(out) < max_tokens:
        token = target.next_token_logprobs(prompt + out).argmax()
        if token == END:
            break
        out.append(token)
    return out

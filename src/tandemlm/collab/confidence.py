"""How good is an answer? Signals read from the model that wrote it, without a reference answer.

Cascades escalate on these (FrugalGPT's scorer, GateKeeper's confidence); outcome tables store them
so the same signals can be evaluated offline. Every function here asks the model itself, so the live
cascade and the offline evaluation compute a signal the same way.
"""

from __future__ import annotations

import ast
import doctest
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Literal

import numpy as np
import yaml

from tandemlm.models.base import LanguageModel
from tandemlm.sandbox import code_of, passes
from tandemlm.types import LogProbs, Message, Request

FLOOR = -30.0  # logprobs are clamped here so that one impossible token does not make a mean -inf
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
QUOTES = "\"'"
AnswerKey = Literal["number", "letter", "text"]


@cache
def prompts() -> dict[str, str]:
    """The packaged prompts of cascades and their signals (data/prompts/cascade.yaml)."""
    text = resources.files("tandemlm.data").joinpath("prompts/cascade.yaml").read_text(encoding="utf-8")
    loaded: dict[str, str] = yaml.safe_load(text)
    return loaded


@dataclass(frozen=True)
class TokenConfidence:
    """Per-token statistics of an answer under the model that wrote it."""

    mean_logprob: float
    min_logprob: float
    mean_entropy: float


def token_confidence(model: LanguageModel, request: Request, answer: str) -> TokenConfidence:
    """Mean and minimum token logprob and mean entropy of `answer` as the model's reply to `request`,
    from one batched pass over the answer's positions."""
    prompt = model.prompt_tokens(request)
    tail = model.tokenize(answer)
    if not tail:
        return TokenConfidence(FLOOR, FLOOR, 0.0)
    tokens = prompt + tail
    dists = model.logprobs_after(tokens, range(len(prompt) - 1, len(tokens) - 1), role="confidence")
    values = [max(FLOOR, d.logprob(t)) for d, t in zip(dists, tail, strict=True)]
    return TokenConfidence(float(np.mean(values)), float(min(values)), float(np.mean([d.entropy() for d in dists])))


def p_yes(model: LanguageModel, request: Request, answer: str) -> float:
    """Self-verification: the model's probability of "yes" (against "no") when asked whether its answer is right."""
    follow = replace(
        request, messages=(*request.messages, Message("assistant", answer), Message("user", prompts()["verify"]))
    )
    dist = model.next_token_logprobs(model.prompt_tokens(follow), role="verify")
    return word_odds(model, dist)


def word_odds(model: LanguageModel, dist: LogProbs, positive: str = "yes", negative: str = "no") -> float:
    """P(the next word is `positive`) against `negative`, renormalised over the two (each word's
    capitalisations, with and without a leading space): a verdict read from one forward pass."""
    pos, neg = (word_logprob(model, dist, word) for word in (positive, negative))
    return 1.0 / (1.0 + math.exp(neg - pos))


def word_logprob(model: LanguageModel, dist: LogProbs, word: str) -> float:
    """log P(the next token starts `word`), over its capitalisations with and without a leading space."""
    firsts = {model.tokenize(form)[0] for form in (word, word.capitalize(), " " + word, " " + word.capitalize())}
    return float(np.logaddexp.reduce([max(FLOOR, dist.logprob(t)) for t in firsts]))


def option_probs(model: LanguageModel, request: Request, options: Sequence[str]) -> dict[str, float]:
    """Multiple choice by likelihood: the model's next-token probabilities of each option label (A, B, ...)
    right after the prompt, renormalised over the options."""
    dist = model.next_token_logprobs(model.prompt_tokens(request), role="options")
    logps = np.array([max(FLOOR, dist.logprob(model.tokenize(label)[0])) for label in options])
    probs = np.exp(logps - np.logaddexp.reduce(logps))
    return dict(zip(options, (float(p) for p in probs), strict=True))


def answer_key(answer: str, kind: AnswerKey) -> str:
    """What two answers must share to agree: the final number, the option letter, or the normalised text."""
    if kind == "number":
        numbers = NUMBER.findall(answer)
        try:
            return repr(float(numbers[-1].replace(",", ""))) if numbers else ""
        except ValueError:  # a stray "1,2,3" grouping that is no number
            return ""
    if kind == "letter":
        letter = re.search(r"\b([A-Z])\b", answer)
        return letter.group(1) if letter else ""
    return " ".join(answer.lower().split())


def agreement(
    model: LanguageModel, request: Request, answer: str, *, samples: int, key: AnswerKey, temperature: float = 0.7
) -> float:
    """Self-consistency: the share of `samples` sampled answers (seeds 1..samples) that agree with `answer`."""
    return agreements(model, [request], [answer], samples=samples, key=key, temperature=temperature)[0]


def sampled(request: Request, temperature: float, seed: int) -> Request:
    """The request, sampled at `temperature` with `seed`."""
    return replace(request, params=replace(request.params, temperature=temperature, seed=seed))


def agreements(
    model: LanguageModel,
    requests: Sequence[Request],
    answers: Sequence[str],
    *,
    samples: int,
    key: AnswerKey,
    temperature: float = 0.7,
) -> list[float]:
    """`agreement` for each request and its answer, all samples asked for in one `generate_many` (an engine that
    batches decodes them together)."""
    asked = [sampled(r, temperature, seed) for r in requests for seed in range(1, samples + 1)]
    texts = [c.text for c in model.generate_many(asked, role="sample")]
    return [
        sum(answer_key(t, key) == answer_key(answer, key) for t in texts[i * samples : (i + 1) * samples]) / samples
        for i, answer in enumerate(answers)
    ]


def examples_pass(prompt: str, answer: str, timeout_s: float = 10.0) -> bool | None:
    """For code: whether the function the answer defines passes every example written in the prompt, all run in
    one sandbox call. None when the prompt has no function or no example."""
    found = example_tests(prompt, answer)
    return None if found is None else passes(found[0] + "\n\n" + "\n".join(found[1]), timeout_s)


def examples_passed(prompt: str, answer: str, timeout_s: float = 10.0) -> tuple[int, int] | None:
    """How many of the prompt's examples the function the answer defines passes, each run alone in the sandbox,
    and how many there are; None when the prompt has no function or no example."""
    found = example_tests(prompt, answer)
    if found is None:
        return None
    code, tests = found
    return sum(passes(f"{code}\n\n{t}", timeout_s) for t in tests), len(tests)


def example_tests(prompt: str, answer: str) -> tuple[str, list[str]] | None:
    """The answer's code (the prompt's last function, as the answer completes it) and one check script per example
    in the prompt: doctests (`>>> f(1)` then the output) or lines like `f(1) == 2` / `f(1) => 2`. None when the
    prompt has no function or no example."""
    names = re.findall(r"^def (\w+)\(", prompt, re.MULTILINE)
    if not names:
        return None
    name = names[-1]
    try:
        # a docstring's closing quotes on the line after an example would read as part of its output
        doc = "\n".join(line for line in prompt.splitlines() if line.strip() not in ('"""', "'''"))
        examples = doctest.DocTestParser().get_examples(doc)
    except ValueError:  # a malformed docstring: no doctests to read
        examples = []
    if examples:
        tests = [_doctest_check(e.source.strip(), e.want.strip()) for e in examples if e.want.strip()]
        # `>>> f(1) == 2` with no output line: the writer meant the comparison to hold (doctest would want no output)
        tests += [f"assert {e.source.strip()}\n" for e in examples if not e.want.strip() and _compares(e.source)]
    else:
        pairs = re.findall(rf"\b({name}\(.*\))\s*(?:==|=>|➞|->)\s*(.+?)\s*$", prompt, re.MULTILINE)
        tests = [f"assert ({call}) == ({want.rstrip(QUOTES)})\n" for call, want in pairs]
    return (code_of(answer, prompt, name), tests) if tests else None


def _compares(source: str) -> bool:
    try:
        return isinstance(ast.parse(source.strip(), mode="eval").body, ast.Compare)
    except SyntaxError:
        return False


def _doctest_check(source: str, want: str) -> str:
    """A script passing when `source` evaluates to `want`: equal to it as a Python value, or printing as it does
    (doctest's own comparison, whitespace normalised)."""
    return (
        f"_got = ({source})\n_want = {want!r}\n"
        "try:\n    _ok = _got == eval(_want)\nexcept Exception:\n    _ok = False\n"
        "assert _ok or ' '.join(repr(_got).split()) == ' '.join(_want.split())\n"
    )


Signal = Literal["logprob", "min_logprob", "consistency", "verify", "examples"]
SIGNALS: tuple[str, ...] = ("logprob", "min_logprob", "consistency", "verify", "examples")


def signal_fn(
    signal: Signal, *, samples: int = 3, key: AnswerKey = "text"
) -> Callable[[LanguageModel, Request, str], float]:
    """The signal as one number in [0, 1], higher = more confident: exp(mean logprob), exp(min logprob),
    agreement of `samples` samples, P(yes), or 1/0 for passing the prompt's examples (no examples: 1)."""
    if signal == "logprob":
        return lambda m, r, a: math.exp(token_confidence(m, r, a).mean_logprob)
    if signal == "min_logprob":
        return lambda m, r, a: math.exp(token_confidence(m, r, a).min_logprob)
    if signal == "consistency":
        return lambda m, r, a: agreement(m, r, a, samples=samples, key=key)
    if signal == "verify":
        return p_yes
    if signal == "examples":
        return lambda m, r, a: float(examples_pass(r.messages[-1].content, a) is not False)
    raise ValueError(f"unknown signal {signal!r}; one of {', '.join(SIGNALS)}")

"""Scoring answers: GSM8K by the final number, HumanEval by running the unit tests on the completion.

Model-written code is untrusted: it runs in tandemlm.sandbox (separate interpreter, no network,
capped memory and CPU time, killed at the time limit).
"""

from __future__ import annotations

import re

from tandemlm.bench.datasets import LETTERS, Item
from tandemlm.sandbox import code_of, passes

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
LETTER = re.compile(r"\b([ABCD])\b")


def final_number(text: str) -> float | None:
    """The last number in a text ("1,234.5" reads as 1234.5), or None."""
    found = NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def gsm8k_correct(answer: str, reference: str) -> bool:
    got, want = final_number(answer), final_number(reference)
    return got is not None and want is not None and abs(got - want) < 1e-6


def program(item: Item, completion: str) -> str:
    """The completion as a whole module, with the item's tests after it."""
    return f"{code_of(completion, item.prompt, item.entry_point)}\n\n{item.tests}\n\ncheck({item.entry_point})\n"


def humaneval_correct(item: Item, completion: str, timeout_s: float = 10.0) -> bool:
    """Run the item's tests against the completion in the sandbox; True when they all pass."""
    return passes(program(item, completion), timeout_s)


def choice_letter(answer: str) -> str | None:
    """The first option letter (A-D) standing alone in an answer, or None."""
    found = LETTER.search(answer.strip())
    return found.group(1) if found and found.group(1) in LETTERS else None


def correct(item: Item, answer: str) -> bool:
    if item.kind == "code":
        return humaneval_correct(item, answer)
    if item.kind == "choice":
        return choice_letter(answer) == item.answer
    return gsm8k_correct(answer, item.answer)

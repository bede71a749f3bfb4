"""Scoring: final numbers, and HumanEval's tests run on untrusted code that may loop or reach the network."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tandemlm.bench.datasets import Item
from tandemlm.bench.scoring import final_number, gsm8k_correct, humaneval_correct

ADD = Item("t/0", "def add(a, b):\n", "    return a + b\n", "code", "def check(f):\n    assert f(2, 3) == 5\n", "add")


@pytest.mark.parametrize(
    ("text", "number"),
    [("so she has 18 eggs", 18.0), ("costs $1,234.50 in total", 1234.5), ("#### -7", -7.0), ("no digits", None)],
)
def test_final_number(text: str, number: float | None) -> None:
    assert final_number(text) == number


def test_gsm8k_compares_the_last_number() -> None:
    assert gsm8k_correct("16 - 3 - 4 = 9 eggs, 9 * 2 = 18. The answer is 18.", "18")
    assert not gsm8k_correct("The answer is 17.", "18") and not gsm8k_correct("I don't know", "18")


@pytest.mark.parametrize(
    ("completion", "passes"),
    [
        ("    return a + b\n", True),  # a body, after the prompt
        ("```python\ndef add(a, b):\n    return b + a\n```\nThis adds.", True),  # a whole function in a fence
        ("    return a - b\n", False),  # wrong
        ("    while True:\n        pass\n", False),  # loops: killed at the time limit
        ("    import socket\n    socket.create_connection(('8.8.8.8', 53))\n    return a + b\n", False),  # no network
        ("    return (\n", False),  # does not parse
    ],
)
def test_humaneval_runs_the_tests_in_a_sandbox(completion: str, passes: bool) -> None:
    assert humaneval_correct(ADD, completion, timeout_s=3.0) is passes


def test_canonical_solutions_pass(dataset: Callable[[str], list[Item]]) -> None:
    items = dataset("humaneval")[:5]
    assert all(humaneval_correct(item, item.answer) for item in items)

"""The generated fact-verification pairs and the metrics of `tandem bench verify` (no model needed)."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tandemlm.bench import verify as vb
from tandemlm.bench.datasets import Item


def test_perturbations_change_what_the_sentence_says() -> None:
    rng = random.Random(0)
    s = "Janet buys 3 apples for $2 each."
    assert vb.paraphrase(s) == "Janet purchases three apples for $2 each."
    assert vb.paraphrase("She has 2. He has 2,000 and 2.5 and 10%.") == "She has two. He has 2,000 and 2.5 and 10%."
    changed = vb.change_number(s, rng)
    assert changed is not None and changed != s and changed.startswith("Janet buys ")
    assert vb.negate("Tom has 5 cats.") == "Tom has not 5 cats."
    assert vb.negate("Tom buys 5 cats.") is None
    assert vb.swap_entity(s, ["Janet", "Maria"], rng) == "Maria buys 3 apples for $2 each."
    assert vb.names_in("The dog and She saw Maria on Monday.") == ["Maria"]
    assert vb.add_clause("Tom has 5 cats.", "Each cat eats 2 cans.") == "Tom has 5 cats, and each cat eats 2 cans."


def test_balanced_accuracy_and_the_dev_threshold() -> None:
    labels = [True, True, True, False]
    assert vb.balanced_accuracy(labels, [True, True, True, True]) == 0.5
    assert vb.balanced_accuracy(labels, [True, False, True, False]) == pytest.approx((2 / 3 + 1) / 2)
    t = vb.best_threshold(labels, [0.9, 0.8, 0.7, 0.2])
    assert 0.2 < t < 0.7


def test_each_document_gives_two_supported_and_two_unsupported_claims(
    dataset: Callable[[str], list[Item]], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = dataset("gsm8k")
    monkeypatch.setattr(vb, "load", lambda name: items)
    pairs = vb.make_pairs(12)
    docs = {p.doc_id for p in pairs}
    assert len(docs) == 12 and len(pairs) == 48
    for doc in docs:
        mine = [p for p in pairs if p.doc_id == doc]
        assert [p.supported for p in mine] == [True, True, False, False]
        assert all(p.claim != p.document and "?" not in p.document for p in mine)
        assert {p.split for p in mine} in ({"train"}, {"test"})  # a document's claims stay in one split
    assert vb.make_pairs(12) == pairs  # seeded

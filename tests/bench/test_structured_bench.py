"""The structured-output benchmark's scoring and report (the runs themselves need real models)."""

from __future__ import annotations

from tandemlm.bench.structured import CONTACTS, NUMBERS, Task, grammar_cost, score, to_markdown


def test_fields_are_right_when_their_value_sets_match_the_gold_ones() -> None:
    task = Task(
        "t", "", CONTACTS, {"people": frozenset({"ann lee"}), "emails": frozenset(), "phones": frozenset({"4420"})}
    )
    answer = '{"people": ["Ann Lee"], "emails": [], "phones": ["+44 20"]}'
    assert score(task, answer, "stop") == {"valid": True, "cut": False, "right": 3, "fields": 3}
    assert score(task, '{"people": ["Ann"], "emails": [], "phones": []}', "stop")["right"] == 1
    assert score(task, '{"people": ["Ann Lee"]}', "stop") == {"valid": False, "cut": False, "right": 0, "fields": 3}
    assert score(task, '{"people": ["Ann', "length")["cut"] is True
    numbers = Task("n", "", NUMBERS, {"numbers": frozenset({repr(3.0), repr(1200.0)})})
    assert score(numbers, '{"numbers": [3, 1200]}', "stop")["right"] == 1
    assert score(numbers, '{"numbers": ["3", "1,200"]}', "stop")["valid"] is False  # strings break the schema


def test_grammar_cost_and_the_report() -> None:
    rows = [
        {"pipeline": "edge", "mode": "free", "items": 4, "refused": 0, "valid_share": 0.25, "cut_share": 0.5,
         "field_accuracy": 0.1, "completion_tokens": 100, "tok_s": 40.0},
        {"pipeline": "edge", "mode": "grammar", "items": 4, "refused": 0, "valid_share": 1.0, "cut_share": 0.0,
         "field_accuracy": 0.5, "completion_tokens": 80, "tok_s": 38.0},
        {"pipeline": "speculative", "mode": "grammar", "items": 4, "refused": 4, "valid_share": None, "cut_share": None,
         "field_accuracy": None, "completion_tokens": 0, "tok_s": None, "refusal": "pipeline 'speculative' ..."},
    ]  # fmt: skip
    assert grammar_cost(rows) == {"edge": 0.05}
    settings = {"config": "tiny", "items_per_task": 2, "max_tokens": 8, "models": {"edge": "catalog:x"},
                "machine": "x86_64", "llama_cpp_python": "0.3.36"}  # fmt: skip
    text = to_markdown(
        {"rows": rows, "grammar_cost": grammar_cost(rows), "settings": settings}, "tandem bench structured"
    )
    assert (
        "| edge | grammar | 4 | 1.0 | 0.0 | 0.5 | 80 | 38.0 |" in text
        and "refused (400)" in text
        and "edge +5.0%" in text
    )

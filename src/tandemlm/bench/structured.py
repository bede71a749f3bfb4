"""Structured-output benchmark: JSON extraction per pipeline, with and without the grammar.

Two extraction tasks with gold answers: the people, e-mail addresses and phone numbers in presidio-evaluator
sentences (`bench/pii_data.py`, gold spans), and the numbers in GSM8K questions (every number written in the
question). Each item is asked twice per pipeline: with the schema only in the prompt (free decoding), and with
`response_format: json_schema` (local models decode under its grammar). Measured: the share of answers that
parse and validate, the share cut by max_tokens, field accuracy (a field is right when its set of values equals
the gold set; invalid answers score nothing), and completion tokens per second of decoding: each timed answer
follows an untimed two-token answer to the same request, so the prompt is in the models' KV caches (a speculative
draft's too) and the time is the answer's own (the modes also alternate which goes first).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Any

from tqdm import tqdm

from tandemlm.bench.datasets import load
from tandemlm.bench.pii_data import synthetic_sentences
from tandemlm.config import Runtime, load_config
from tandemlm.errors import InvalidOutputError, ValidationError
from tandemlm.structured import schema_violation
from tandemlm.types import Request, ResponseFormat

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
# bounded so that a whole answer fits max_tokens (llama.cpp's converter holds maxItems and maxLength): a sentence
# names a few people, e-mail addresses and phone numbers at most
_STRINGS = {"type": "array", "items": {"type": "string", "maxLength": 32}, "maxItems": 3}
CONTACTS = {
    "type": "object",
    "properties": {"people": _STRINGS, "emails": _STRINGS, "phones": _STRINGS},
    "required": ["people", "emails", "phones"],
    "additionalProperties": False,
}
NUMBERS = {
    "type": "object",
    "properties": {"numbers": {"type": "array", "items": {"type": "number"}, "maxItems": 12}},
    "required": ["numbers"],
    "additionalProperties": False,
}
PIPELINES = ("edge", "cloud", "cascade", "speculative")


@dataclass(frozen=True)
class Task:
    """One extraction item: the prompt, its schema and the gold value of each field."""

    id: str
    prompt: str
    schema: dict[str, Any]
    gold: dict[str, frozenset[str]]


def _ask(what: str, schema: dict[str, Any], text: str) -> str:
    shape = json.dumps({k: [] for k in schema["properties"]})
    return f"{what} Answer with JSON only, in this shape: {shape}\n\n{text}"


def contact_tasks(n: int) -> list[Task]:
    """Sentences holding at least one person, e-mail address or phone number."""
    wanted = {"PERSON": "people", "EMAIL": "emails", "PHONE": "phones"}
    out: list[Task] = []
    for i, sample in enumerate(synthetic_sentences(20 * n, seed=7)):
        gold = {field: frozenset(_norm(field, s.text) for s in sample.gold if wanted.get(s.entity) == field)
                for field in wanted.values()}  # fmt: skip
        if any(gold.values()):
            what = "Extract the people's names, the e-mail addresses and the phone numbers in the text below."
            out.append(Task(f"contacts/{i}", _ask(what, CONTACTS, f"Text: {sample.text}"), CONTACTS, gold))
        if len(out) == n:
            break
    return out


def number_tasks(n: int) -> list[Task]:
    """The first n GSM8K test questions; gold: every number written in the question."""
    out = []
    for item in load("gsm8k")[:n]:
        gold = {"numbers": frozenset(_norm("numbers", m) for m in NUMBER.findall(item.prompt))}
        what = "List every number written in the question below (not the answer)."
        out.append(Task(item.id, _ask(what, NUMBERS, f"Question: {item.prompt}"), NUMBERS, gold))
    return out


def _norm(field: str, value: object) -> str:
    text = str(value).strip()
    if field == "numbers":
        try:
            return repr(float(text.replace(",", "")))
        except ValueError:
            return text
    if field == "phones":
        return re.sub(r"\D", "", text)
    return text.lower()


def score(task: Task, text: str, finish: str) -> dict[str, Any]:
    """Whether the answer parses and validates, whether max_tokens cut it, and its right fields."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    valid = value is not None and schema_violation(value, json.dumps(task.schema)) is None
    right = 0
    if valid:
        for field, gold in task.gold.items():
            got = value.get(field) if isinstance(value, dict) else None
            right += isinstance(got, list) and frozenset(_norm(field, v) for v in got) == gold
    return {"valid": valid, "cut": finish == "length", "right": right, "fields": len(task.gold)}


def run_structured_bench(config: str, n_items: int, max_tokens: int, pipelines: list[str]) -> dict[str, Any]:
    tasks = [t for pair in zip(contact_tasks(n_items), number_tasks(n_items), strict=True) for t in pair]
    load_before = os.getloadavg()[0]
    runtime = Runtime(load_config(config))
    rows = []
    try:
        for name in pipelines:
            model = runtime.pipeline(name)
            stats: dict[str, dict[str, float]] = {}
            for i, task in enumerate(tqdm(tasks, desc=name, file=sys.stderr)):
                free = Request.of(task.prompt, max_tokens=max_tokens, temperature=0)
                rf = ResponseFormat("json_schema", json.dumps(task.schema), "extraction")
                modes = [("free", free), ("grammar", replace(free, params=replace(free.params, response_format=rf)))]
                for mode, request in modes if i % 2 == 0 else modes[::-1]:
                    s = stats.setdefault(mode, {"n": 0, "valid": 0, "cut": 0, "right": 0, "fields": 0, "tokens": 0,
                                                "seconds": 0.0, "refused": 0, "failed": 0})  # fmt: skip
                    s["n"] += 1
                    try:
                        # warm: two tokens, so a speculative draft reads the prompt too (with one, only the target)
                        model.generate(replace(request, params=replace(request.params, max_tokens=2)))
                        started = time.perf_counter()
                        c = model.generate(request)
                    except ValidationError as err:  # a pipeline that cannot carry response_format says so
                        s["refused"] += 1
                        s["refusal"] = str(err)  # type: ignore[assignment]
                        continue
                    except InvalidOutputError:  # decoded under the grammar, yet invalid (a keyword it cannot hold)
                        s["failed"] += 1
                        s["fields"] += len(task.gold)
                        continue
                    s["seconds"] += time.perf_counter() - started
                    s["tokens"] += c.usage.completion_tokens
                    for key, value in score(task, c.text, c.finish_reason).items():
                        s[key] += value
            for mode, s in stats.items():
                answered = s["n"] - s["refused"]
                rows.append({
                    "pipeline": name, "mode": mode, "items": int(s["n"]), "refused": int(s["refused"]),
                    "valid_share": round(s["valid"] / answered, 3) if answered else None,
                    "cut_share": round(s["cut"] / answered, 3) if answered else None,
                    "field_accuracy": round(s["right"] / s["fields"], 3) if s["fields"] else None,
                    "completion_tokens": int(s["tokens"]),
                    "tok_s": round(s["tokens"] / s["seconds"], 2) if s["seconds"] else None,
                    **({"refusal": s["refusal"]} if "refusal" in s else {}),
                })  # fmt: skip
    finally:
        runtime.close()
    models = {n: getattr(m, "source", "") for n, m in runtime.config.models.items()}
    settings = {"config": config, "items_per_task": n_items, "max_tokens": max_tokens, "models": models,
                "machine": platform.machine(), "llama_cpp_python": version("llama-cpp-python"),
                "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
                "cpus": os.cpu_count()}  # fmt: skip
    return {"rows": rows, "grammar_cost": grammar_cost(rows), "settings": settings}


def grammar_cost(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per pipeline answered both ways: 1 − tokens/s with the grammar ÷ tokens/s without it."""
    speed = {(r["pipeline"], r["mode"]): r["tok_s"] for r in rows if r["tok_s"]}
    return {
        name: round(1 - speed[(name, "grammar")] / speed[(name, "free")], 3)
        for name, mode in speed
        if mode == "free" and (name, "grammar") in speed
    }


def to_markdown(result: dict[str, Any], command: str) -> str:
    cfg = result["settings"]
    models = ", ".join(f"{k}: {v}" for k, v in cfg["models"].items())
    lines = [
        "# Structured output: JSON extraction with and without the grammar",
        "",
        f"Command: `{command}`",
        "",
        f"{cfg['items_per_task']} presidio-evaluator sentences (people, e-mails, phones: gold spans) and "
        f"{cfg['items_per_task']} GSM8K questions (every number in the question), each asked with the schema "
        f"in the prompt only (free) and with `response_format: json_schema` (grammar); greedy, max_tokens "
        f"{cfg['max_tokens']}; config `{cfg['config']}` ({models}); {cfg['machine']}, llama-cpp-python "
        f"{cfg['llama_cpp_python']}. valid: parses and validates against the schema; cut: stopped by max_tokens "
        "(returned as is, so mostly invalid); field accuracy: a field's set of values equals the gold set "
        "(invalid answers score nothing); tok/s: completion tokens over the answers' wall time, each answer timed "
        "after an untimed two-token answer to the same request (the prompt already in every model's KV cache, a "
        "speculative draft's too). Contact fields hold at most 3 strings of at most 32 characters, numbers at most 12 "
        "(the grammar holds both bounds), so a grammar answer is cut only when it runs past max_tokens within them.",
        "",
        "| pipeline | mode | items | valid | cut | field accuracy | tokens | tok/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if r["refused"] == r["items"]:
            lines.append(f"| {r['pipeline']} | {r['mode']} | {r['items']} | refused (400) | | | | |")
            continue
        lines.append(
            f"| {r['pipeline']} | {r['mode']} | {r['items']} | {r['valid_share']} | {r['cut_share']} "
            f"| {r['field_accuracy']} | {r['completion_tokens']} | {r['tok_s']} |"
        )
    cost = ", ".join(f"{name} {value:+.1%}" for name, value in result["grammar_cost"].items())
    lines += ["", f"Grammar decode cost (1 − tok/s with ÷ without): {cost}."]
    if "load_average" in cfg:  # tok/s are wall-clock: on a shared machine they move with its load
        before, after = cfg["load_average"]
        lines += ["", f"Load average (1 min) {before} at the start and {after} at the end, on {cfg['cpus']} CPUs."]
    refusals = {r["pipeline"]: r["refusal"] for r in result["rows"] if "refusal" in r}
    lines += [f"{name}: {why}" for name, why in refusals.items()]
    return "\n".join(lines) + "\n"

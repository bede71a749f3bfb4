"""What the prompt-level collaborations share: their packaged prompts, and requests rewritten around the question.

A collaboration stage asks a model something about the user's request: the stage's prompt (data/prompts/collab.yaml)
wraps the request's last user message, the earlier turns are kept, and the stage's own sampling (max_tokens) applies.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cache
from importlib import resources

import yaml

from tandemlm.types import Message, Request

#: a multiple-choice prompt: option lines "A. ..." (at least two, consecutive letters from A)
OPTION_LINE = re.compile(r"^([A-J])[.)]\s", re.MULTILINE)


@cache
def collab_prompts() -> dict[str, str]:
    """The packaged prompts of the performance collaborations (data/prompts/collab.yaml)."""
    text = resources.files("tandemlm.data").joinpath("prompts/collab.yaml").read_text(encoding="utf-8")
    loaded: dict[str, str] = yaml.safe_load(text)
    return loaded


def question(request: Request) -> str:
    """The request's last user message: what a collaboration's stages are about."""
    return next((m.content for m in reversed(request.messages) if m.role == "user"), request.messages[-1].content)


def ask(request: Request, template: str, *, max_tokens: int | None = None, **fields: str) -> Request:
    """The request with its last user message replaced by the named prompt, formatted with the question and
    `fields`; `max_tokens` (when given) replaces the request's."""
    content = collab_prompts()[template].format(question=question(request), **fields)
    last = max(i for i, m in enumerate(request.messages) if m.role == "user") if _has_user(request) else -1
    messages = list(request.messages)
    messages[last] = Message("user", content)
    params = request.params if max_tokens is None else replace(request.params, max_tokens=max_tokens)
    return replace(request, messages=tuple(messages), params=params)


def _has_user(request: Request) -> bool:
    return any(m.role == "user" for m in request.messages)


def options_of(text: str) -> tuple[str, ...]:
    """The option letters of a multiple-choice prompt (A, B, C, ...), or () when it is not one."""
    letters = tuple(dict.fromkeys(OPTION_LINE.findall(text)))
    expected = tuple(chr(ord("A") + i) for i in range(len(letters)))
    return letters if len(letters) >= 2 and letters == expected else ()


def usd(value: float) -> str:
    """A cost as the decisions write it."""
    return f"${value:.6f}"

"""Engines and the explicit registry that config files name them by.

Each factory imports its engine lazily, so `import tandemlm` loads neither llama.cpp nor an HTTP stack.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tandemlm.models.base import LanguageModel
from tandemlm.models.scripted import ScriptedModel


def _llamacpp(**options: Any) -> LanguageModel:
    from tandemlm.models.llamacpp import load_llamacpp

    return load_llamacpp(**options)


def _hf(**options: Any) -> LanguageModel:
    from tandemlm.models.hf import load_hf

    return load_hf(**options)


def _openai(**options: Any) -> LanguageModel:
    from tandemlm.models.openai import OpenAIModel

    return OpenAIModel(**options)


ENGINES: dict[str, Callable[..., LanguageModel]] = {
    "llamacpp": _llamacpp,
    "hf": _hf,
    "openai": _openai,
    "scripted": ScriptedModel,
}

__all__ = ["ENGINES", "LanguageModel", "ScriptedModel"]

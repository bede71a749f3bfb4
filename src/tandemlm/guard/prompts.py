"""The guards' packaged prompts (data/prompts/guard.yaml): the hazard taxonomy, the judge's templates, the refusal."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml


@cache
def guard_prompts() -> dict[str, Any]:
    """`categories` (code, name, description), the judge's `input` / `output` templates and the default `refusal`."""
    text = resources.files("tandemlm.data").joinpath("prompts/guard.yaml").read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def hazards() -> dict[str, str]:
    """Hazard code → name (S1 → Violent Crimes, ...): what a verdict's `category` refers to."""
    return {code: name for code, name, _ in guard_prompts()["categories"]}

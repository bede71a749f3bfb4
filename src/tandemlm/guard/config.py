"""The config of guards: named guards (`guards:`, each a registry type with its parameters) and a pipeline's
`guard:` block that puts them around the pipeline.

```yaml
guards:
  judge: {type: judge, model: edge, threshold: 0.5}          # model: an edge-located model of the config
  screen: {type: cascade, cheap: classifier, judge: judge, low: 0.2, high: 0.8}   # other guards, by name
default_guard: judge                                           # what `tandem guard check` uses
pipelines:
  guarded-cloud:
    model: cloud
    guard: {input: judge, output: judge, on_block: error, window: 200, overlap: 50, fail: closed}
```

A guard's parameters are checked against its class when the file is read: an unknown key, a missing one, a
model that is not in the config or not on the device, a guard that names itself are errors then.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tandemlm.guard.base import GUARDS, Guard, guard_factory

if TYPE_CHECKING:
    from tandemlm.config import TandemConfig
    from tandemlm.models.base import LanguageModel


def registered() -> dict[str, Callable[..., Guard]]:
    """The registry with every packaged guard type in it (importing the guard package registers them)."""
    import tandemlm.guard  # noqa: F401

    return GUARDS


class GuardSpec(BaseModel):
    """One named guard: its registry `type` and the keyword parameters of that class."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str = Field(description="a registered guard type: judge, cascade, classifier, injection")

    @model_validator(mode="after")
    def _parameters(self) -> GuardSpec:
        if self.type not in registered():
            raise ValueError(f"unknown guard type {self.type!r}; known: {', '.join(sorted(GUARDS))}")
        factory = guard_factory(self.type)
        params = {n: p for n, p in inspect.signature(factory).parameters.items() if n != "name"}
        given = self.params
        unknown = sorted(set(given) - set(params))
        if unknown:
            raise ValueError(f"guard type {self.type!r} has no parameter {unknown[0]!r}; it takes: {', '.join(params)}")
        missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in given]
        if missing:
            raise ValueError(f"guard type {self.type!r} needs {', '.join(missing)}")
        for key in (*self.model_refs, *self.guard_refs):
            if key in given and not isinstance(given[key], str):
                raise ValueError(f"guard parameter {key!r} names a {'model' if key in self.model_refs else 'guard'}")
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def model_refs(self) -> tuple[str, ...]:
        """The parameters that name a model of the config (handed the loaded model)."""
        return tuple(getattr(guard_factory(self.type), "model_refs", ()))

    @property
    def guard_refs(self) -> tuple[str, ...]:
        """The parameters that name another guard of the config (handed the built guard)."""
        return tuple(getattr(guard_factory(self.type), "guard_refs", ()))

    def build(self, name: str, model: Callable[[str], LanguageModel], guard: Callable[[str], Guard]) -> Guard:
        kwargs = self.params
        for key in self.model_refs:
            if key in kwargs:
                kwargs[key] = model(kwargs[key])
        for key in self.guard_refs:
            if key in kwargs:
                kwargs[key] = guard(kwargs[key])
        factory = guard_factory(self.type)
        if "name" in inspect.signature(factory).parameters:
            return factory(**kwargs, name=name)
        built = factory(**kwargs)
        built.name = name  # the config's name is the one verdicts and traces carry
        return built


class GuardConfig(BaseModel):
    """A pipeline's `guard:` block: a `Guarded` around the whole pipeline (outside its `privacy:` gatekeeper)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: str | None = Field(None, description="the guard (a name under `guards`) that screens each request")
    output: str | None = Field(None, description="the guard that screens each answer, streams included")
    on_block: Literal["error", "refuse"] = Field("error", description="blocked input: HTTP 400, or the refusal")
    refusal: str | None = Field(None, description="the answer in refuse mode (default: the packaged one)")
    window: int = Field(200, ge=1, description="characters of answer screened at a time")
    overlap: int = Field(50, ge=0, description="characters held back and screened again with the next window")
    fail: Literal["closed", "open"] = Field("closed", description="when a guard errors: refuse, or pass the text")

    @model_validator(mode="after")
    def _shape(self) -> GuardConfig:
        if self.input is None and self.output is None:
            raise ValueError("a guard block names an input guard, an output guard or both")
        if self.overlap >= self.window:
            raise ValueError(f"guard.overlap ({self.overlap}) must be smaller than guard.window ({self.window})")
        return self

    def build(self, inner: LanguageModel, guard: Callable[[str], Guard], name: str) -> LanguageModel:
        from tandemlm.guard.guarded import Guarded

        return Guarded(
            inner, input=guard(self.input) if self.input else None, output=guard(self.output) if self.output else None,
            on_block=self.on_block, refusal=self.refusal, window=self.window, overlap=self.overlap, fail=self.fail,
            name=name,
        )  # fmt: skip


def guard_problem(config: TandemConfig) -> str | None:
    """The first broken reference of the config's guards (key path and what is wrong), or None."""
    guards, models = config.guards, config.models
    for name, pipeline in config.pipelines.items():
        block = pipeline.guard
        for key in ("input", "output"):
            ref = getattr(block, key) if block is not None else None
            if ref is not None and ref not in guards:
                return (
                    f"pipelines.{name}.guard.{key}: {ref!r} is not defined; known guards: {', '.join(guards) or 'none'}"
                )
    for name, spec in guards.items():
        params = spec.params
        for key in spec.model_refs:
            ref = params.get(key)
            if ref is None:
                continue
            if ref not in models:
                return f"guards.{name}.{key}: {ref!r} is not defined; known: {', '.join(models)}"
            if models[ref].location != "edge":
                return (
                    f"guards.{name}.{key}: {ref!r} is located in the cloud; a guard reads the raw request and "
                    "answer, so it must be a model with location: edge"
                )
        for key in spec.guard_refs:
            ref = params.get(key)
            if ref is not None and ref not in guards:
                return f"guards.{name}.{key}: {ref!r} is not defined; known guards: {', '.join(guards)}"
        if _cycle(name, guards):
            return f"guards.{name}: the guard names itself through {', '.join(spec.guard_refs)}"
    if config.default_guard is not None and config.default_guard not in guards:
        return f"default_guard: {config.default_guard!r} is not defined; known guards: {', '.join(guards) or 'none'}"
    return None


def _cycle(start: str, guards: dict[str, GuardSpec]) -> bool:
    todo, seen = [start], set()
    while todo:
        spec = guards.get(todo.pop())
        for ref in (spec.params.get(k) for k in spec.guard_refs) if spec is not None else ():
            if ref == start:
                return True
            if isinstance(ref, str) and ref not in seen:
                seen.add(ref)
                todo.append(ref)
    return False

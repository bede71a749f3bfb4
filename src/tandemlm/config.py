"""Pipeline files: YAML of `models` and `pipelines`, validated strictly (`extra="forbid"`).

```yaml
models:
  edge:  {engine: llamacpp, source: catalog:qwen2.5-coder-0.5b, location: edge}
  cloud: {engine: llamacpp, source: catalog:qwen2.5-coder-1.5b, location: cloud,
          price: {input: 0.15, output: 0.60}}
pipelines:
  edge:  {model: edge}
  cloud: {model: cloud, fallback: edge}   # fallback: answers when the cloud model fails
default_pipeline: edge
ledger: ~/.cache/tandemlm/egress.jsonl   # optional: append every cloud call's egress here
server: {api_keys: [...], queue_size: 32, request_timeout_s: 600, max_body_bytes: 8388608}   # `tandem serve`
```

A pipeline answers requests; today it is one model, and strategies (cascades, speculative
decoding, privacy gatekeepers) plug in here as they land. Errors name the file, the key path and
what was expected. `Runtime` turns a config into loaded models, each loaded once, on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import ValidationError as PydanticValidationError

from tandemlm.collab.fallback import Fallback
from tandemlm.config_collab import (
    CollabSpec,
    ContrastiveSpec,
    CrossVerifySpec,
    FusionSpec,
    GuidedCoTSpec,
    LLMGuidedSpec,
    PlanExecuteSpec,
    ProxyTunedSpec,
    RankSpec,
    SafetyGuidedSpec,
    SuperICLSpec,
    TTSSpec,
    VoteSpec,
)
from tandemlm.errors import ConfigError, ModelNotFoundError
from tandemlm.guard.base import Guard
from tandemlm.guard.config import GuardConfig, GuardSpec, guard_problem
from tandemlm.guard.verify_config import VerifyConfig
from tandemlm.models import ENGINES, LanguageModel
from tandemlm.trace import Recorder
from tandemlm.types import Location, Price

PACKAGED = ("default", "tiny")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    input: float = Field(default=0.0, ge=0, description="USD per 1M input tokens")
    output: float = Field(default=0.0, ge=0, description="USD per 1M output tokens")


class _ModelBase(_Strict):
    location: Location = "edge"
    price: PriceConfig = PriceConfig()

    def options(self, name: str) -> dict[str, Any]:
        """Keyword arguments of the engine factory."""
        out = self.model_dump(exclude={"engine", "price"}, exclude_none=True)
        out.setdefault("name", name)
        out["price"] = Price(self.price.input, self.price.output)
        return out


class LlamaCppConfig(_ModelBase):
    engine: Literal["llamacpp"]
    source: str = Field(description="catalog:NAME, path:/file.gguf or hf://org/repo/file")
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(
        None, ge=1, description="threads of this model (default: the cores shared among the config's llama.cpp models)"
    )
    n_batch: int = Field(512, ge=1)
    chat_template: bool | str = True
    adapter: str | None = Field(None, description="a GGUF LoRA adapter file (tandem train lora writes adapter.gguf)")


class HFConfig(_ModelBase):
    """The torch engine (models/hf.py): the same sources, plus a peft LoRA adapter directory."""

    engine: Literal["hf"]
    source: str = Field(description="catalog:NAME, path:/file.gguf or an HF model directory")
    adapter: str | None = Field(None, description="a peft LoRA adapter directory (tandem train lora --out)")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1, description="torch's intra-op threads (process-wide)")
    chat_template: bool | str = True


class OpenAIConfig(_ModelBase):
    engine: Literal["openai"]
    model: str
    base_url: str
    location: Location = "cloud"
    api_key: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    backoff: float = Field(default=0.5, ge=0, description="seconds before the first retry, doubled each time")
    context_length: int | None = Field(None, ge=1)


class ScriptedConfig(_ModelBase):
    engine: Literal["scripted"]
    replies: str | list[str] = ""
    delay_s: float = Field(default=0.0, ge=0)
    max_concurrency: int | None = Field(default=None, ge=1)


ModelConfig = Annotated[LlamaCppConfig | HFConfig | OpenAIConfig | ScriptedConfig, Field(discriminator="engine")]


class SpeculativeSpec(_Strict):
    """Speculative decoding: `draft` proposes k tokens, `target` verifies them (collab/speculative.py).
    drafter: who drafts: the draft model, prompt lookup (n-gram matches in the prompt and the answer so far, no
    model: `draft` may be left out) or hybrid (lookup where it matches, the model elsewhere)."""

    draft: str | None = None
    target: str
    k: int = Field(default=4, ge=1, le=16)
    adaptive: bool = True
    k_max: int = Field(default=8, ge=1, le=16)
    drafter: Literal["model", "lookup", "hybrid"] = "model"
    lookup_min_n: int = Field(default=2, ge=1, le=16, description="shortest suffix lookup matches")
    lookup_max_n: int = Field(default=4, ge=1, le=16, description="longest suffix lookup tries first")
    lookup_k: int = Field(default=8, ge=1, le=32, description="most tokens one lookup draft proposes")
    refs: ClassVar[tuple[str, ...]] = ("draft", "target")

    @model_validator(mode="after")
    def _drafter_needs(self) -> SpeculativeSpec:
        if self.drafter != "lookup" and self.draft is None:
            raise ValueError(f"drafter {self.drafter!r} needs a draft model: name one in `draft`")
        if self.lookup_min_n > self.lookup_max_n:
            raise ValueError(f"lookup_min_n ({self.lookup_min_n}) must not exceed lookup_max_n ({self.lookup_max_n})")
        return self

    def build(self, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        from tandemlm.collab.drafting import PromptLookup
        from tandemlm.collab.speculative import SpeculativeDecoder

        draft = model(self.draft) if self.draft is not None and self.drafter != "lookup" else None
        return SpeculativeDecoder(
            draft, model(self.target), k=self.k, adaptive=self.adaptive, k_max=self.k_max, drafter=self.drafter,
            lookup=PromptLookup(min_n=self.lookup_min_n, max_n=self.lookup_max_n), lookup_k=self.lookup_k, name=name,
        )  # fmt: skip


class TokenRoutingSpec(_Strict):
    """Token-level routing: `edge` decodes, tokens below `threshold` confidence come from `cloud`."""

    edge: str
    cloud: str
    threshold: float = Field(default=0.5, ge=0, le=1)
    signal: Literal["top_prob", "entropy"] = "top_prob"
    span: int = Field(default=1, ge=1, le=64)
    refs: ClassVar[tuple[str, ...]] = ("edge", "cloud")

    def build(self, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        from tandemlm.collab.token_routing import TokenRouter

        return TokenRouter(
            model(self.edge), model(self.cloud), threshold=self.threshold, signal=self.signal, span=self.span, name=name
        )


class CascadeSpec(_Strict):
    """Cascade: `small` answers; below `threshold` of `signal` (in [0, 1]) the request escalates to `large`."""

    small: str
    large: str
    signal: Literal["logprob", "min_logprob", "consistency", "verify", "examples"] = "logprob"
    threshold: float = Field(ge=0, le=1)
    show_draft: bool = Field(default=False, description="the large model sees the small model's draft to check")
    samples: int = Field(default=3, ge=1, le=16, description="sampled answers for the consistency signal")
    answer_key: Literal["number", "letter", "text"] = "text"
    refs: ClassVar[tuple[str, ...]] = ("small", "large")

    def build(self, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        from tandemlm.collab.cascade import Cascade

        if self.signal == "examples":  # it runs model-written code: never without the sandbox
            from tandemlm import sandbox
            from tandemlm.errors import SandboxUnavailableError

            try:
                sandbox.require()
            except SandboxUnavailableError as err:
                raise SandboxUnavailableError(f"pipeline {name!r}: cascade signal 'examples': {err}") from err
        return Cascade(
            model(self.small), model(self.large), signal=self.signal, threshold=self.threshold,
            show_draft=self.show_draft, samples=self.samples, answer_key=self.answer_key, name=name,
        )  # fmt: skip


class RouteSpec(_Strict):
    """Query-level routing: a trained router (`tandem bench route --save-routers`) scores each prompt; above
    `threshold` it goes to `cloud`, else to `edge`."""

    edge: str
    cloud: str
    router: str = Field(description="a saved router file (.npz); a relative path is read from the working directory")
    threshold: float
    refs: ClassVar[tuple[str, ...]] = ("edge", "cloud")

    def build(self, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        from tandemlm.collab.routing import QueryRouter, Router

        router = Router.load(Path(self.router).expanduser())
        return QueryRouter(model(self.edge), model(self.cloud), router, self.threshold, name=name)


class StrategyConfig(_Strict):
    """Exactly one strategy, by name (the registry of strategies a pipeline file can name)."""

    speculative: SpeculativeSpec | None = None
    token_routing: TokenRoutingSpec | None = None
    cascade: CascadeSpec | None = None
    route: RouteSpec | None = None
    super_icl: SuperICLSpec | None = None
    guided_cot: GuidedCoTSpec | None = None
    llm_guided: LLMGuidedSpec | None = None
    vote: VoteSpec | None = None
    cross_verify: CrossVerifySpec | None = None
    rank: RankSpec | None = None
    plan_execute: PlanExecuteSpec | None = None
    tts: TTSSpec | None = None
    fusion: FusionSpec | None = None
    proxy_tuned: ProxyTunedSpec | None = None
    contrastive: ContrastiveSpec | None = None
    safety_guided: SafetyGuidedSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> StrategyConfig:
        if len(self.model_fields_set) != 1:
            raise ValueError(f"name exactly one strategy, one of: {', '.join(type(self).model_fields)}")
        return self

    @property
    def chosen(self) -> tuple[str, SpeculativeSpec | TokenRoutingSpec | CascadeSpec | RouteSpec | CollabSpec]:
        kind = next(iter(self.model_fields_set))
        spec = getattr(self, kind)
        assert spec is not None
        return kind, spec


PrivacyAction = Literal["pseudonymize", "route_local", "block", "allow"]


DetectorName = Literal["patterns", "regex", "presidio", "slm"]
DEFAULT_DETECTORS: tuple[DetectorName, ...] = ("patterns", "presidio")


class PrivacyConfig(_Strict):
    """A pipeline's `privacy:` block: a `PiiGatekeeper` around whatever the pipeline builds (privacy/)."""

    detectors: list[DetectorName] = Field(default_factory=lambda: list(DEFAULT_DETECTORS), min_length=1)
    policy: PrivacyAction = Field("pseudonymize", description="action for PII types not named in `entities`")
    entities: dict[str, PrivacyAction] = Field(default_factory=dict, description="action per entity type")
    fail: Literal["closed", "local"] = Field("closed", description="when a detector errors: refuse, or answer locally")
    mode: Literal["pseudonymize", "disclosure", "guardian"] = "pseudonymize"
    edge: str | None = Field(
        None, description="edge-located model (it sees unmasked text): local answers, rewrites, the slm detector"
    )
    surrogates: bool = Field(False, description="realistic fake values instead of <TYPE_n> placeholders")
    unknown_identifier: PrivacyAction | None = Field(
        None, description="action for ID_NUMBER (ID-like value after a cue); unset: pseudonymize or a stricter policy"
    )
    refs: ClassVar[tuple[str, ...]] = ("edge",)

    @model_validator(mode="after")
    def _edge_when_needed(self) -> PrivacyConfig:
        from tandemlm.privacy.spans import ENTITIES

        unknown = sorted(set(self.entities) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; known: {', '.join(ENTITIES)}")
        actions = {self.policy, self.unknown_identifier, *self.entities.values()}
        if self.edge is None and (self.mode != "pseudonymize" or self.fail == "local" or "route_local" in actions
                                  or "slm" in self.detectors):  # fmt: skip
            raise ValueError("privacy.edge must name the edge model for this mode, policy, fail mode or detector")
        return self

    def build(self, inner: LanguageModel, model: Callable[[str], LanguageModel], name: str) -> LanguageModel:
        from tandemlm.privacy import PiiGatekeeper, PrivacyPolicy, build_detectors

        edge = model(self.edge) if self.edge is not None else None
        unknown_id = self.unknown_identifier
        policy = PrivacyPolicy(self.policy, dict(self.entities), self.fail, unknown_identifier=unknown_id)
        detectors = build_detectors(list(dict.fromkeys(self.detectors)), edge)
        return PiiGatekeeper(
            inner, edge=edge, detectors=detectors, policy=policy, mode=self.mode, surrogates=self.surrogates, name=name
        )


class PipelineConfig(_Strict):
    model: str | None = Field(None, description="a single model answers (or name a strategy instead)")
    strategy: StrategyConfig | None = None
    fallback: str | None = Field(None, description="model that answers when the pipeline fails or times out")
    privacy: PrivacyConfig | None = Field(None, description="keep PII off the cloud around the whole pipeline")
    guard: GuardConfig | None = Field(None, description="screen input and output, outside the privacy gatekeeper")
    verify: VerifyConfig | None = Field(None, description="check a grounded answer against its <document> blocks")
    description: str = ""

    @model_validator(mode="after")
    def _model_or_strategy(self) -> PipelineConfig:
        if (self.model is None) == (self.strategy is None):
            raise ValueError("a pipeline names either a model or a strategy")
        return self

    def refs(self) -> list[tuple[tuple[str, ...], str]]:
        """(key path, model name) of every model this pipeline uses."""
        out: list[tuple[tuple[str, ...], str]] = [
            ((key,), getattr(self, key)) for key in ("model", "fallback") if getattr(self, key) is not None
        ]
        if self.strategy is not None:
            kind, spec = self.strategy.chosen
            for field in spec.refs:  # a model name, or a list of them (a vote's members)
                value = getattr(spec, field)
                if isinstance(value, list):
                    out += [(("strategy", kind, field, str(i)), ref) for i, ref in enumerate(value)]
                elif value is not None:  # an optional model left out (a lookup-drafted speculative's draft)
                    out.append((("strategy", kind, field), value))
        if self.privacy is not None and self.privacy.edge is not None:
            out.append((("privacy", "edge"), self.privacy.edge))
        if self.verify is not None:
            out.append((("verify", "model"), self.verify.model))
        return out


class ServerConfig(_Strict):
    api_keys: list[str] = Field(default_factory=list, description="accepted bearer keys; none means no auth")
    queue_size: int = Field(default=32, ge=0, description="requests that may wait for a busy local model")
    request_timeout_s: float = Field(default=600.0, gt=0)
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After sent with a 503 (queue full, loading)")
    wait_while_loading: bool = Field(
        default=False, description="a request that arrives while the models load waits for them instead of a 503"
    )
    max_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=1,
        description="largest request body accepted (8 MiB); a larger one is answered 413 before it is read in full",
    )


class TandemConfig(_Strict):
    models: dict[str, ModelConfig]
    pipelines: dict[str, PipelineConfig]
    default_pipeline: str | None = None
    guards: dict[str, GuardSpec] = Field(default_factory=dict, description="named guards (guard/config.py)")
    default_guard: str | None = Field(None, description="the guard `tandem guard check` uses (default: the first)")
    ledger: str | None = Field(None, description="JSONL file that every cloud call's egress is appended to")
    server: ServerConfig = Field(default_factory=ServerConfig)

    @model_validator(mode="after")
    def _references(self) -> TandemConfig:
        if not self.pipelines:
            raise ValueError("at least one pipeline is needed")
        for name, pipeline in self.pipelines.items():
            for path, ref in pipeline.refs():
                if ref not in self.models:
                    raise _RefError(("pipelines", name, *path), ref, list(self.models))
            edge = pipeline.privacy.edge if pipeline.privacy is not None else None
            if edge is not None and self.models[edge].location != "edge":
                # the privacy boundary: whatever privacy.edge names is handed unmasked text
                where = ("pipelines", name, "privacy", "edge")
                located = _RefError(where, edge, [])  # a _RefError's message reaches the user as written
                on_edge = [m for m, spec in self.models.items() if spec.location == "edge"]
                located.args = (
                    f"{'.'.join(where)}: {edge!r} is located in the cloud; the gatekeeper hands it unmasked text "
                    "(local answers, fail: local, disclosure and guardian rewrites, the slm detector), so it must "
                    f"be a model with location: edge; edge-located models: {', '.join(on_edge) or 'none'}",
                )
                raise located
        if self.default_pipeline is not None and self.default_pipeline not in self.pipelines:
            raise _RefError(("default_pipeline",), self.default_pipeline, list(self.pipelines))
        if (problem := guard_problem(self)) is not None:
            located = _RefError((), "", [])
            located.args = (problem,)
            raise located
        return self

    @property
    def default(self) -> str:
        return self.default_pipeline or next(iter(self.pipelines))


class _RefError(ValueError):
    def __init__(self, loc: tuple[str, ...], value: str, known: list[str]) -> None:
        super().__init__(f"{'.'.join(loc)}: {value!r} is not defined; known: {', '.join(known) or 'none'}")


def load_config(source: str | Path) -> TandemConfig:
    """Read and validate a pipeline file: a path, or the name of a packaged config (default, tiny)."""
    path = Path(source).expanduser()
    if str(source) in PACKAGED and not path.exists():
        text = resources.files("tandemlm.data").joinpath(f"{source}.yaml").read_text(encoding="utf-8")
        label = f"<packaged config {source!r}>"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"cannot read config {path}: {err.strerror or err}") from err
        label = str(path)
    return parse_config(text, label)


def parse_config(text: str, label: str = "<config>") -> TandemConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{label}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping with 'models' and 'pipelines' at the top level")
    try:
        return TandemConfig.model_validate(data)
    except PydanticValidationError as err:
        lines = []
        for e in err.errors():
            loc = list(e["loc"])
            if len(loc) > 2 and loc[0] == "models" and loc[2] in ENGINES:  # drop pydantic's union tag
                del loc[2]
            where = ".".join(str(p) for p in loc) or "(top level)"
            cause = e.get("ctx", {}).get("error")
            message = str(cause) if isinstance(cause, _RefError) else f"{where}: {e['msg']}"
            lines.append(message)
        raise ConfigError(f"{label}: invalid config:\n  " + "\n  ".join(lines)) from err


class Runtime:
    """The models and pipelines of one config, each model loaded once, on first use (thread-safe: a request
    that arrives while a model loads waits for that load instead of starting a second one)."""

    def __init__(
        self, config: TandemConfig, models: dict[str, LanguageModel] | None = None, *, ledger: str | Path | None = None
    ) -> None:
        """`models` supplies ready-made models by name instead of building them from the config (tests, embedding);
        `ledger` replaces the config's egress ledger file."""
        self.config = config
        path = ledger if ledger is not None else config.ledger
        self.ledger = Path(path).expanduser() if path else None
        self._models: dict[str, LanguageModel] = {}
        self._pipelines: dict[str, LanguageModel] = {}
        self._guards: dict[str, Guard] = {}
        self._lock = threading.RLock()
        for name, model in (models or {}).items():
            self._adopt(name, model)

    def _adopt(self, name: str, model: LanguageModel) -> LanguageModel:
        model.ledger = self.ledger  # every cloud call's egress is written where it leaves, by the engine call
        self._models[name] = model
        return model

    def model(self, name: str) -> LanguageModel:
        with self._lock:
            if name not in self._models:
                if name not in self.config.models:
                    raise ModelNotFoundError(f"no model named {name!r}; known: {', '.join(self.config.models)}")
                spec = self.config.models[name]
                options = spec.options(name)
                if isinstance(spec, LlamaCppConfig) and spec.n_threads is None:
                    options["n_threads"] = self._share_of_cores()
                self._adopt(name, ENGINES[spec.engine](**options))
            return self._models[name]

    def _share_of_cores(self) -> int:
        """The cores each llama.cpp model gets by default: the config's local models may all run at once (the
        gateway's pipelines share them), and llama.cpp threads that outnumber the cores spin against each other
        (seen on a loaded 2-core machine: greedy decoding 30x slower with 2 threads than with 1). $TANDEM_THREADS
        sets it for every model instead."""
        from tandemlm.models.llamacpp import THREADS_ENV, default_threads

        if os.environ.get(THREADS_ENV, "").strip():
            return default_threads()
        local = sum(isinstance(m, LlamaCppConfig) for m in self.config.models.values())
        return max(1, (os.cpu_count() or 1) // max(1, local))

    def loaded_models(self) -> list[LanguageModel]:
        """The engines loaded so far (for metrics)."""
        with self._lock:
            return list(self._models.values())

    def pipeline(self, name: str | None = None) -> LanguageModel:
        """The LanguageModel that answers for a pipeline (the default one when name is None)."""
        name = name or self.config.default
        with self._lock:
            if name not in self._pipelines:
                if name not in self.config.pipelines:
                    known = ", ".join(self.config.pipelines)
                    raise ModelNotFoundError(f"no pipeline named {name!r}; known: {known}")
                self._pipelines[name] = self._build(name, self.config.pipelines[name])
            return self._pipelines[name]

    def _build(self, name: str, spec: PipelineConfig) -> LanguageModel:
        if spec.strategy is not None:
            model = spec.strategy.chosen[1].build(self.model, name)
        else:
            assert spec.model is not None
            model = self.model(spec.model)
        if spec.fallback is not None:
            model = Fallback(model, self.model(spec.fallback), name=name)
        if spec.privacy is not None:
            model = spec.privacy.build(model, self.model, name)
        if spec.verify is not None:  # outside the gatekeeper: the edge verifier reads the restored answer
            model = spec.verify.build(model, self.model, name)
        if spec.guard is not None:  # outermost: the input guard sees the raw request, on the device, first
            model = spec.guard.build(model, self.guard, name)
        return model

    def guard(self, name: str | None = None) -> Guard:
        """A guard of the config by name (the default_guard, else the first, when None), built once."""
        guards = self.config.guards
        name = name or self.config.default_guard or next(iter(guards), None)
        with self._lock:
            if name not in self._guards:
                if name is None or name not in guards:
                    raise ModelNotFoundError(f"no guard named {name!r}; known: {', '.join(guards) or 'none'}")
                self._guards[name] = guards[name].build(name, self.model, self.guard)
            return self._guards[name]

    def recorder(self) -> Recorder:
        """A recorder for one run's trace (egress goes to the ledger from the engine calls themselves)."""
        return Recorder()

    def close(self) -> None:
        with self._lock:
            for model in self._models.values():
                model.close()
            self._models.clear()
            self._pipelines.clear()
            self._guards.clear()

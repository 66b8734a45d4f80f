# editfleet: `make test` and `make run` set up whatever is missing (venvs, stubs, tiny models).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
EDITOR_PY := $(VENV)/editor/bin/python
SCORER_PY := $(VENV)/scorer/bin/python
ORCH_PY := $(VENV)/orchestrator/bin/python
PIP_FLAGS := -q --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: setup venvs protos models browser test test-editor test-scorer test-orchestrator test-bench test-installed soak run wheel images wheelhouse container-demo clean

# The three environments at once, then stubs and tiny models two at a time: on a 2-core machine the
# installs and model builds wait on disk and on each other as much as on the CPU.
setup:
	@$(MAKE) --no-print-directory -j3 venvs
	@$(MAKE) --no-print-directory -j2 protos models

venvs: $(VENV)/editor/.installed $(VENV)/scorer/.installed $(VENV)/orchestrator/.installed

# One environment per service, each with the project (pyproject.toml) installed in editable mode with
# that service's extra and the test extra: the packages import from this checkout, the console commands
# (orchestrator, editfleet-editor, editfleet-scorer) are in the environment's bin/, and the build hook
# (setup.py) generates the gRPC stubs into gen/. The build requirements (pyproject's build-system, read
# from there) go into the environment first and the install builds without isolation: no throwaway
# build environment per install. The torch pin of CPU environments: requirements-torch.txt.
BUILD_REQUIRES = $(shell $(PYTHON) -c 'import tomllib; print(" ".join(chr(39) + r + chr(39) for r in tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
PROJECT_FILES := pyproject.toml setup.py
define make_venv
	@rm -rf $(VENV)/$(1)
	$(PYTHON) -m venv $(VENV)/$(1)
	$(VENV)/$(1)/bin/pip install $(PIP_FLAGS) --upgrade pip $(BUILD_REQUIRES)
	$(VENV)/$(1)/bin/pip install $(PIP_FLAGS) --no-build-isolation $(2)
	touch $@
endef

# Each environment's extras (pyproject.toml's [project.optional-dependencies]); here, since a comma
# would split $(call)'s arguments.
EDITOR_EXTRAS := editor,test
SCORER_EXTRAS := scorer,test,test-serving
ORCH_EXTRAS := orchestrator,test

$(VENV)/editor/.installed: $(PROJECT_FILES) requirements-torch.txt
	$(call make_venv,editor,-r requirements-torch.txt -e '.[$(EDITOR_EXTRAS)]')

$(VENV)/scorer/.installed: $(PROJECT_FILES) requirements-torch.txt
	$(call make_venv,scorer,-r requirements-torch.txt -e '.[$(SCORER_EXTRAS)]')

$(VENV)/orchestrator/.installed: $(PROJECT_FILES)
	$(call make_venv,orchestrator,-e '.[$(ORCH_EXTRAS)]')

# Generated stubs, never edited by hand: the editable installs write them; this regenerates them after
# a .proto changes (the same hook, setup.py).
PROTOS := $(wildcard protos/editfleet/v1/*.proto)
protos: gen/.stamp
gen/.stamp: $(PROTOS) setup.py $(VENV)/orchestrator/.installed
	$(ORCH_PY) setup.py stubs
	touch $@

models: models/tiny-qwen-image-edit/.done models/tiny-qwen-image-edit-2509/.done models/tiny-qwen-image-edit-2511/.done \
	models/tiny-flux-kontext/.done models/tiny-qwen3-vl/.done models/tiny-qwen3-vl-moe/.done models/tiny-qwen3-vl-taught/.done \
	models/tiny-clip/.done models/tiny-dino/.done

models/tiny-qwen-image-edit/.done: tools/make_tiny_qwen_image_edit.py tools/tiny_tokenizer.py tools/generate_editor_configs.py $(VENV)/editor/.installed
	$(EDITOR_PY) tools/make_tiny_qwen_image_edit.py models/tiny-qwen-image-edit
	touch $@

# QwenImageEditPlusPipeline (several input images); 2511 adds the transformer's zero_cond_t
models/tiny-qwen-image-edit-%/.done: tools/make_tiny_qwen_image_edit.py tools/tiny_tokenizer.py tools/generate_editor_configs.py $(VENV)/editor/.installed
	$(EDITOR_PY) tools/make_tiny_qwen_image_edit.py models/tiny-qwen-image-edit-$* --variant $*
	touch $@

models/tiny-flux-kontext/.done: tools/make_tiny_flux_kontext.py tools/tiny_tokenizer.py $(VENV)/editor/.installed
	$(EDITOR_PY) tools/make_tiny_flux_kontext.py models/tiny-flux-kontext
	touch $@

models/tiny-qwen3-vl/.done: tools/make_tiny_qwen3_vl.py tools/tiny_tokenizer.py scorer_service/configs/qwen3-vl-8b/chat_template.jinja $(VENV)/scorer/.installed
	$(SCORER_PY) tools/make_tiny_qwen3_vl.py models/tiny-qwen3-vl
	touch $@

# Qwen3-VL-30B-A3B's mixture-of-experts architecture at toy sizes (static decoding and grouped experts on CPU)
models/tiny-qwen3-vl-moe/.done: tools/make_tiny_qwen3_vl.py tools/tiny_tokenizer.py scorer_service/configs/qwen3-vl-8b/chat_template.jinja $(VENV)/scorer/.installed
	$(SCORER_PY) tools/make_tiny_qwen3_vl.py models/tiny-qwen3-vl-moe --moe
	touch $@

# The metrics backend's backbones (judge.backend metrics): CLIP and DINO ViT at toy widths
models/tiny-clip/.done: tools/make_tiny_clip.py $(VENV)/scorer/.installed
	$(SCORER_PY) tools/make_tiny_clip.py models/tiny-clip
	touch $@

models/tiny-dino/.done: tools/make_tiny_dino.py $(VENV)/scorer/.installed
	$(SCORER_PY) tools/make_tiny_dino.py models/tiny-dino
	touch $@

# The demo judge of `make run`: the tiny judge taught the shipped protocols' formats (its scores mean nothing).
models/tiny-qwen3-vl-taught/.done: tools/make_taught_judge.py tools/teach_judge.py models/tiny-qwen3-vl/.done $(wildcard suites/*/*.yaml) examples/benchmark/benchmark.jsonl
	rm -rf models/tiny-qwen3-vl-taught
	$(SCORER_PY) tools/make_taught_judge.py models/tiny-qwen3-vl models/tiny-qwen3-vl-taught
	touch $@

# A real browser for the page tests (tests/orchestrator/test_pages_browser.py): Debian's chromium,
# installed with apt-get where it is missing (as root, or through sudo), with a small CJK font so
# that screenshots show category names such as 物理.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium for the browser tests (apt-get)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei; }

# The four suites and the installed-package check two at a time, the longest first (each one's output is
# printed when it ends): their servers start, wait and stop, so two keep both cores busy where one
# leaves them idle.
test: setup
	$(MAKE) --no-print-directory -j2 --output-sync=target test-orchestrator test-editor test-scorer test-bench test-installed

# Test-only packages of the editor environment (tests/requirements-editor.txt), added to it in place
$(VENV)/editor/.test-deps: tests/requirements-editor.txt $(VENV)/editor/.installed
	$(EDITOR_PY) -m pip install $(PIP_FLAGS) -r tests/requirements-editor.txt
	touch $@

test-editor: setup $(VENV)/editor/.test-deps
	$(EDITOR_PY) -m pytest -q tests/editor $(PYTEST_ARGS)

test-scorer: setup
	$(SCORER_PY) -m pytest -q tests/scorer $(PYTEST_ARGS)

test-orchestrator: setup browser
	$(ORCH_PY) -m pytest -q tests/orchestrator $(PYTEST_ARGS)

# Every bench script's CPU dry run on the tiny models (each in its own service's venv)
test-bench: setup
	$(ORCH_PY) -m pytest -q tests/bench $(PYTEST_ARGS)

# As a user installs it: sdist and wheel built, the wheel installed into a fresh environment outside the
# checkout, its commands tried and the example run end to end from there (tools/try_installed.sh).
test-installed: setup
	tools/try_installed.sh

# Memory soak of a real editor (~6 min here): 120+ edits and ~440 refused/invalid requests, RSS flat.
soak: setup
	$(EDITOR_PY) -m pytest -q -s -m soak tests/editor/test_reliability_server.py $(PYTEST_ARGS)

# The example benchmark end to end on this machine: 2 CPU editors, tiny models, then the judge.
# Rerunning resumes in runs/example (nothing is redone); RUN_ARGS adds flags, e.g. RUN_ARGS="--editors 1".
RUN_ARGS ?=
run: setup
	$(ORCH_PY) -m orchestrator run --config examples/config.yaml $(RUN_ARGS)

# The generated reference pages (docs/reference/: cli.md, config.md, suites.md), from the click commands,
# the run config with the Setting table, and the suite catalog; tests/orchestrator/test_docs.py fails
# when a page and the code disagree (`tools/gen_docs.py --check` names it).
.PHONY: docs
docs: $(VENV)/orchestrator/.installed gen/.stamp
	$(ORCH_PY) tools/gen_docs.py

# -- packages and containers (docs/development.md#packaging, docs/containers-kubernetes.md) -----------------
# The project's wheel (and sdist) in dist/, built as pip builds it (isolated, build-system requirements).
VERSION = $(shell $(PYTHON) -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
WHEEL = dist/editfleet-$(VERSION)-py3-none-any.whl
wheel: $(VENV)/orchestrator/.installed
	rm -rf dist
	$(ORCH_PY) -m build --outdir dist .

# The images' dependencies as wheels, resolved once on the host (Python 3.11, like the images' base) from
# the wheel's own metadata (every extra) and the CPU torch pin; the image builds install the project's
# wheel from dist/ and its dependencies from here with --no-index. Engine, base, names: docker/build-images.sh.
WHEELHOUSE := .cache/wheelhouse
wheelhouse: $(WHEELHOUSE)/.stamp
$(WHEELHOUSE)/.stamp: $(PROJECT_FILES) requirements-torch.txt
	test -f $(WHEEL) || $(MAKE) --no-print-directory wheel
	mkdir -p $(WHEELHOUSE)
	$(PYTHON) -m pip wheel $(PIP_FLAGS) -w $(WHEELHOUSE) -r requirements-torch.txt '$(WHEEL)[editor,scorer,orchestrator]'
	touch $@

images: wheel wheelhouse
	docker/build-images.sh

# Editor + scorer containers with the tiny models, the example benchmark through the orchestrator
# container (static fleet), and a SIGTERM check. Minutes: not part of `make test`.
container-demo: images models
	docker/demo.sh

clean:
	rm -rf gen models/tiny-* $(VENV) build dist *.egg-info

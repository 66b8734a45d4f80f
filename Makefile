# editfleet: `make test` and `make run` set up whatever is missing (venvs, stubs, tiny models).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
EDITOR_PY := $(VENV)/editor/bin/python
SCORER_PY := $(VENV)/scorer/bin/python
ORCH_PY := $(VENV)/orchestrator/bin/python
PIP_FLAGS := -q --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: setup venvs protos models browser test test-editor test-scorer test-orchestrator test-bench soak run images wheelhouse container-demo clean

# The three environments at once, then stubs and tiny models two at a time: on a 2-core machine the
# installs and model builds wait on disk and on each other as much as on the CPU.
setup:
	@$(MAKE) --no-print-directory -j3 venvs
	@$(MAKE) --no-print-directory -j2 protos models

venvs: $(VENV)/editor/.installed $(VENV)/scorer/.installed $(VENV)/orchestrator/.installed

# One environment per service; the repo root and gen/ are put on each one's path by a .pth file.
define make_venv
	@rm -rf $(VENV)/$(1)
	$(PYTHON) -m venv $(VENV)/$(1)
	$(VENV)/$(1)/bin/pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/$(1)/bin/pip install $(PIP_FLAGS) $(2)
	$(VENV)/$(1)/bin/python -c "import site,sys; open(site.getsitepackages()[0]+'/editfleet.pth','w').write('$(CURDIR)\n$(CURDIR)/gen\n')"
	touch $@
endef

$(VENV)/editor/.installed: requirements-torch.txt editor_service/requirements.txt requirements-dev.txt
	$(call make_venv,editor,-r requirements-torch.txt -r editor_service/requirements.txt -r requirements-dev.txt)

$(VENV)/scorer/.installed: requirements-torch.txt scorer_service/requirements.txt requirements-dev.txt tests/requirements-serving.txt
	$(call make_venv,scorer,-r requirements-torch.txt -r scorer_service/requirements.txt -r requirements-dev.txt -r tests/requirements-serving.txt)

$(VENV)/orchestrator/.installed: orchestrator/requirements.txt requirements-dev.txt
	$(call make_venv,orchestrator,-r orchestrator/requirements.txt -r requirements-dev.txt)

# Generated stubs: never edited by hand.
PROTOS := $(wildcard protos/editfleet/v1/*.proto)
protos: gen/.stamp
gen/.stamp: $(PROTOS) $(VENV)/orchestrator/.installed
	rm -rf gen && mkdir -p gen
	$(ORCH_PY) -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen --pyi_out=gen $(PROTOS)
	touch gen/editfleet/__init__.py gen/editfleet/v1/__init__.py
	touch $@

models: models/tiny-qwen-image-edit/.done models/tiny-qwen-image-edit-2509/.done models/tiny-qwen-image-edit-2511/.done \
	models/tiny-flux-kontext/.done models/tiny-qwen3-vl/.done models/tiny-qwen3-vl-moe/.done models/tiny-qwen3-vl-taught/.done

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

# The four suites two at a time, the longest first (each suite's output is printed when it ends):
# their servers start, wait and stop, so two suites keep both cores busy where one leaves them idle.
test: setup
	$(MAKE) --no-print-directory -j2 --output-sync=target test-orchestrator test-editor test-scorer test-bench

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

# -- containers (docker/, docs/containers-kubernetes.md) ----------------------------------------------------
# Wheels for the images, resolved once on the host (Python 3.11, like the images' base); the image
# builds install from here with --no-index. Engine, base and names: see docker/build-images.sh.
WHEELHOUSE := .cache/wheelhouse
SERVICE_REQUIREMENTS := requirements-torch.txt editor_service/requirements.txt scorer_service/requirements.txt orchestrator/requirements.txt
wheelhouse: $(WHEELHOUSE)/.stamp
$(WHEELHOUSE)/.stamp: $(SERVICE_REQUIREMENTS)
	mkdir -p $(WHEELHOUSE)
	$(PYTHON) -m pip wheel $(PIP_FLAGS) -w $(WHEELHOUSE) $(addprefix -r ,$(SERVICE_REQUIREMENTS))
	touch $@

images: protos wheelhouse
	docker/build-images.sh

# Editor + scorer containers with the tiny models, the example benchmark through the orchestrator
# container (static fleet), and a SIGTERM check. Minutes: not part of `make test`.
container-demo: images models
	docker/demo.sh

clean:
	rm -rf gen models/tiny-* $(VENV)

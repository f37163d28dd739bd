# The two commands of the README:
#   make run    set everything up, then open the app on the bundled sample (or MODEL=path.onnx)
#   make test   set everything up, then run the linters and the whole test suite
# More: make convert (the CLI job on MODEL), make bench, make samples, make clean
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  ?=
SAMPLE := resources/samples/cnn_qdq.onnx
OUT    ?= out

.PHONY: setup run convert test lint bench samples clean

setup: $(VENV)/.installed
	@bash .ci/ensure_system.sh

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

run: setup
	$(VENV)/bin/quant-inspector $(MODEL)

convert: setup
	$(VENV)/bin/qcore info --no-ids $(or $(MODEL),$(SAMPLE))
	$(VENV)/bin/qcore convert --force --quant_model_path $(or $(MODEL),$(SAMPLE)) \
		--int8_model_save_path $(OUT)/int8.onnx --fp32_model_save_path $(OUT)/fp32.onnx \
		--debug $(OUT)/debug

# ruff, mypy --strict on qcore and import-linter, as listed in .pre-commit-config.yaml
lint: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/pre-commit run --all-files

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_ort.py

samples: setup
	$(PY) resources/samples/make_samples.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache

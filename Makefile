# mmdet_yolor: `make demo` runs the main job, `make test` the test suite,
# `make lint` the style checks (mmdet's flake8/isort/yapf, see setup.cfg).
# demo and test install the environment (.venv/) first when needed.
# VENV and TORCH_VERSION choose the stack (README, "Supported stacks"):
# `TORCH_VERSION=2.1.2 VENV=.venv-torch2.1.2 make test`.
VENV   ?= .venv
export VENV
PYTHON := $(VENV)/bin/python
LINT_PATHS := mmdet_yolor configs tools .dev_scripts tests setup.py

.PHONY: install test test-quick test-stacks sweep-stack demo lint lint-env \
	format clean gpu-check-prepare gpu-check

install:
	@bash tools/misc/install_env.sh

# Two test processes with one thread each: the tests run tiny models
# (threads only add overhead); a file's tests stay in one process, where
# they share their module fixtures. The slowest tests are listed at the end
# (each stack's suite should stay under about 15 minutes).
test: install
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n 2 --dist loadfile --durations 15 tests

# The inner loop, without the slow tests; `make test` (what CI runs) runs all.
test-quick: install
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -n 2 --dist loadfile -m "not slow" tests

# The suite on each stack of the supported-stack matrix, one venv each
# beside .venv, and a table of the results (.dev_scripts/test_stacks.py;
# STACKS="2.1.2 2.13.0" for some of them). About 15 minutes a stack, plus
# each torch's first mmcv build.
test-stacks:
	python3 .dev_scripts/test_stacks.py $(STACKS)

# The zoo sweep's stack for the folders that need torchvision (ConvNeXt,
# TIMM backbones, CrowdDet; docs/usage.md, "Which detectors"): torch
# 2.14.1, whose PyPI torchvision 0.29.1 runs on the CPU, with mmpretrain
# and timm. Not in CI. mmcv builds for it with C++20 (install_env.sh).
SWEEP_VENV ?= .venv-torch2.14.1
sweep-stack:
	TORCH_VERSION=2.14.1 VENV=$(SWEEP_VENV) bash tools/misc/install_env.sh
	$(SWEEP_VENV)/bin/python -m pip install -q -r requirements/sweep.txt

demo: install
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

# The linters alone need no OpenMMLab stack: install them into the venv
# (created if missing) and check.
lint-env:
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	@$(PYTHON) -m pip install -q --disable-pip-version-check -r requirements/lint.txt

lint: lint-env
	$(PYTHON) -m flake8 $(LINT_PATHS)
	$(PYTHON) -m isort --check-only --diff $(LINT_PATHS)
	$(PYTHON) -m yapf --diff --recursive $(LINT_PATHS)

# Rewrite the tree to the style `make lint` checks.
format: lint-env
	$(PYTHON) -m isort $(LINT_PATHS)
	$(PYTHON) -m yapf --in-place --recursive $(LINT_PATHS)

# The GPU check (docs/gpu_check.md). `make gpu-check-prepare` here puts
# the wheels the lent GPU machine lacks into work_dirs/gpu_wheels (carry
# it); `make gpu-check` there installs them offline, builds mmcv and runs
# .dev_scripts/gpu_check.py (GPU_CHECK_ARGS="--device cpu --quick" for the
# path without a GPU). GPU_PYTHON: the machine's Python with torch.
GPU_PYTHON ?= python3
gpu-check-prepare:
	$(GPU_PYTHON) .dev_scripts/gpu_check_prepare.py

gpu-check:
	PYTHON=$(GPU_PYTHON) bash .dev_scripts/gpu_check.sh $(GPU_CHECK_ARGS)

clean:
	rm -rf work_dirs .pytest_cache

# mmdet_yolor: `make demo` runs the main job, `make test` the test suite.
# Both install the environment (.venv/) first when needed.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python

.PHONY: install test demo clean

install:
	@bash tools/misc/install_env.sh

# One thread per process: the tests run tiny models (threads only add
# overhead) and some start two training processes on a 2-core machine.
test: install
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest tests

demo: install
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

clean:
	rm -rf work_dirs .pytest_cache

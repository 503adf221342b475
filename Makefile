# The course's commands. A fresh machine needs only python3 (3.11) and make:
#   make lab    build the environment and open the lesson in JupyterLab
#   make test   build the environment (and install chromium, postgresql, npm, bubblewrap and axe-core
#               if missing) and run every test
#   make lint   ruff and the import contracts (seconds; CI runs it before the tests)
#   make hub    (as root) the course on a JupyterHub on this machine, 127.0.0.1:8000 (hub/)
SHELL := /bin/bash
ASSIGNMENT := $(shell sed -n 's/^ASSIGNMENT = "\(.*\)".*/\1/p' autograder/course.py)
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PYTHON_VERSION := $(shell python3 tools/pins.py python)
WORK := workspace/$(ASSIGNMENT)
LAB_ARGS ?=
# JupyterLab refuses to run as root unless told; containers and CI machines often are root
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)
# nbgrader runs tools (alembic) from the environment by name
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: env lab selfgrade reset lint test hub system-deps release lock assignment grade autograde feedback export clean

env: $(VENV)/.installed

# uv installs the pinned stack in seconds (pip takes ~15x longer); it is fetched with pip
# when missing. The pins come from environment.yml, the same file Binder uses. Bytecode is
# compiled at install: grading kernels run as other users on a read-only environment and
# cannot write .pyc files, so without it every kernel compiles FastAPI, SQLAlchemy, IPython...
# from source (~0.5 s of CPU per submission).
# Where no uv is on the PATH, it goes into .tools/, a venv of its own: a system Python that
# refuses `pip install` outside a venv (Debian's, PEP 668) works for an ordinary user too.
UV = $(shell command -v uv || echo .tools/bin/uv)

$(VENV)/.installed: environment.yml pyproject.toml
	@command -v uv >/dev/null || [ -x .tools/bin/uv ] || \
	  { python3 -m venv .tools && .tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"; }
	$(UV) venv --quiet --allow-existing --python $(PYTHON_VERSION) $(VENV)
	python3 tools/pins.py requirements > $(VENV)/pins.txt
	$(UV) pip install --quiet --compile-bytecode --python $(PY) -r $(VENV)/pins.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m compileall -q autograder course_grade
	touch $@

# Opens a working copy of the student notebook (never the committed release/ itself);
# an existing copy is kept, so your work is never overwritten.
lab: env
	@$(PY) -m autograder workspace --to $(WORK)
	$(BIN)/jupyter lab --ServerApp.root_dir=. $(ROOT_FLAG) $(LAB_ARGS) $(WORK)/$(ASSIGNMENT).ipynb

# Self-study: grade your working copy with the hidden tests; start the lesson over (the old
# copy is kept as a backup).
selfgrade: env
	$(PY) -m course_grade selfgrade $(WORK)/$(ASSIGNMENT).ipynb

reset: env
	$(PY) -m autograder reset --to $(WORK)

# The rules a machine enforces, in seconds: ruff (pyproject.toml's [tool.ruff]) and the
# import contracts (pyproject.toml's [tool.importlinter]; tools/lint_contracts.py).
lint: env
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# The tests also need Debian's chromium, postgresql and npm (installed here when missing),
# and axe-core from npm for the browser test's accessibility checks (pinned in tests/package-lock.json).
AXE := tests/node_modules/axe-core/axe.min.js
# uv goes on the tests' PATH too (where it is .tools/bin/uv): they build wheels and environments with it.
# The test files run on TEST_WORKERS pytest-xdist workers, each file whole on one worker (its module
# fixtures are made once); TEST_WORKERS=0 runs them all in this one process.
TEST_WORKERS ?= 2
test: env system-deps $(AXE)
	PATH="$(abspath $(dir $(UV))):$$PATH" $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

system-deps:
	@bash tools/system-deps.sh

# The course server (as root): users, environments, the course and its exchange, then JupyterHub in
# the foreground (hub/course_hub.py; HUB_ARGS="--help" lists its options). Its proxy comes from npm,
# pinned in hub/package-lock.json.
CHP := hub/node_modules/.bin/configurable-http-proxy
HUB_ARGS ?=
hub: env system-deps $(CHP)
	UV="$(UV)" $(PY) hub/course_hub.py $(HUB_ARGS)

$(CHP): hub/package-lock.json | system-deps
	npm ci --prefix hub --no-audit --no-fund --loglevel=error
	touch $@

$(AXE): tests/package-lock.json | system-deps
	npm ci --prefix tests --no-audit --no-fund --loglevel=error
	touch $@

# Instructor commands ------------------------------------------------------------------
release: env
	$(PY) tools/build_lesson.py
	$(BIN)/nbgrader generate_assignment $(ASSIGNMENT) --force --log-level=WARN

lock:
	python3 tools/pins.py lock

# A fresh clone has no gradebook (or one that a failed first command made, without the
# assignment): nbgrader generate_assignment records the assignment's cells there (and writes
# release/, which is committed as exactly what it makes).
HAS_ASSIGNMENT := import sqlite3, sys; db = sqlite3.connect("file:gradebook.db?mode=ro", uri=True); \
  sys.exit(not db.execute("select 1 from assignment where name = ?", (sys.argv[1],)).fetchone())
assignment: env
	@$(PY) -c '$(HAS_ASSIGNMENT)' $(ASSIGNMENT) 2>/dev/null || \
	  $(BIN)/nbgrader generate_assignment $(ASSIGNMENT) --force --log-level=WARN

grade: env assignment
	$(PY) -m course_grade grade $(ASSIGNMENT)

autograde: env assignment
	$(BIN)/nbgrader autograde $(ASSIGNMENT)

feedback: env assignment
	$(BIN)/nbgrader generate_feedback $(ASSIGNMENT)

export: env assignment
	$(BIN)/nbgrader export

clean:
	rm -rf $(VENV) .tools .pytest_cache

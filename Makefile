# Flow Matching course. The two commands a newcomer needs:
#   make lab    set up (first time only) and open the course in JupyterLab
#   make test   set up (first time only) and run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_QUIET := --quiet --disable-pip-version-check
NBVAL := --nbval-current-env --nbval-cell-timeout=600
XDIST := -n 2 --dist loadfile
# pip on some machines warns about absent local indexes; hide only that line
PIP_NOISE := is ignored: it is neither

.PHONY: help setup browser lab test test-fast lectures solutions bench lock clean

help:
	@echo "make lab        set up and open the course (lectures/) in JupyterLab"
	@echo "make test       set up and run every test (unit tests, nbval, sync)"
	@echo "make lectures   regenerate lectures/ from solutions/"
	@echo "make solutions  re-execute solutions/ top to bottom, storing outputs"
	@echo "make bench      time every notebook (solutions and lectures)"
	@echo "make lock       re-pin requirements.txt and environment.yml from requirements.in"
	@echo "instructors (INSTRUCTORS.md):"
	@echo "make catalogue  rewrite EXERCISES.md from the exercise registry"
	@echo "make assignment EXERCISES=\"1.1 1.3\" OUT=dir   student notebooks with only those exercises open"
	@echo "make grade SUBMISSIONS=dir OUT=dir [EXERCISES=...] [JOBS=2]   autograde, write grades.csv + feedback"
	@echo "make nbgrader OUT=dir [EXERCISES=... NAME=hw1]   export an nbgrader course (source/<assignment>/)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(PY) -m pip install $(PIP_QUIET) -r requirements.txt 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	set -o pipefail; $(PY) -m pip install $(PIP_QUIET) --no-deps -e . 2>&1 | { grep -v "$(PIP_NOISE)" || true; }
	@# nbgrader is installed for the instructor tooling; students need none of its JupyterLab menus
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1 || true
	for e in formgrader validate_assignment assignment_list course_list; do \
	  $(VENV)/bin/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$e >/dev/null 2>&1 || true; done
	$(PY) -c "import torch, torchdiffeq, utils, tools, nbval, jupyterlab" 
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=lectures --ServerApp.open_browser=False $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True,)

# Debian's Chromium for the browser test (tests/test_browser.py), where missing and possible
# (root with apt-get); elsewhere that test skips, saying why. Never a browser download.
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's chromium (apt-get) for the browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium: the browser test will be skipped"; \
	else echo "no $(CHROMIUM) (as root: apt-get install chromium): the browser test will be skipped"; fi; }

test: $(STAMP) browser
	COURSE_QUIET=1 $(PY) -m pytest $(XDIST) tests solutions --nbval $(NBVAL) --nbval-sanitize-with tests/nbval_sanitize.cfg
	COURSE_QUIET=1 $(PY) -m pytest $(XDIST) lectures --nbval-lax $(NBVAL)

lectures: $(STAMP)
	$(PY) -m tools.lectures

solutions: $(STAMP)
	COURSE_QUIET=1 $(PY) -m tools.execute solutions/*.ipynb
	$(PY) -m tools.lectures

bench: $(STAMP)
	$(PY) -m tools.bench

lock: $(STAMP)
	$(PY) -m pip install $(PIP_QUIET) -r requirements.in
	$(PY) -m tools.lock

# Instructor toolkit (INSTRUCTORS.md): catalogue, assignments, autograding, nbgrader export
.PHONY: catalogue assignment grade nbgrader

catalogue: $(STAMP)
	$(PY) -m tools.catalogue

assignment: $(STAMP)
	@test -n "$(EXERCISES)" -a -n "$(OUT)" || { echo 'usage: make assignment EXERCISES="1.1 1.3" OUT=dir'; exit 2; }
	$(PY) -m tools.assignment $(EXERCISES) --out "$(OUT)"

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo 'usage: make grade SUBMISSIONS=dir OUT=dir [EXERCISES="1.1 1.3"] [JOBS=2]'; exit 2; }
	$(PY) -m tools.grade "$(SUBMISSIONS)" "$(OUT)" $(if $(EXERCISES),--exercises "$(EXERCISES)") --jobs $(or $(JOBS),1)

nbgrader: $(STAMP)
	@test -n "$(OUT)" || { echo 'usage: make nbgrader OUT=dir [EXERCISES="1.1 1.3" NAME=hw1]'; exit 2; }
	$(PY) -m tools.nbgrader_export --out "$(OUT)" $(if $(EXERCISES),--exercises "$(EXERCISES)") $(if $(NAME),--name "$(NAME)")

clean:
	rm -rf $(VENV) build .pytest_cache

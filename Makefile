# Flow Matching course. The two commands a newcomer needs:
#   make lab    set up (first time only) and open the course in JupyterLab
#   make test   set up (first time only) and run every test
SHELL := /bin/bash
.SILENT:
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
WORK ?= my-work
PIP := $(PY) -m pip install --disable-pip-version-check --progress-bar on
NBVAL := --nbval-current-env --nbval-cell-timeout=600
XDIST := -n 2 --dist loadfile

.PHONY: help setup setup-dev browser lab workspace test lectures solutions bench lock site clean

help:
	echo "make lab        set up and open the course in JupyterLab (your copy: $(WORK)/)"
	echo "make test       set up and run every test (unit tests, notebooks, sync, browser, site)"
	echo "make site       build the course website into build/site/ (SOLUTIONS=1: instructors' copy in build/site-solutions/)"
	echo "make lectures   regenerate lectures/ from solutions/"
	echo "make solutions  re-execute solutions/ top to bottom, storing outputs"
	echo "make bench      calibrated notebook times, grading time, sample quality, claims over 5 seeds"
	echo "make weights    retrain the converged references into weights/ (minutes; NAMES=\"02_realnvp\" JOBS=2)"
	echo "make lock       re-pin requirements*.txt and environment.yml from requirements*.in"
	echo "instructors (INSTRUCTORS.md):"
	echo "make catalogue  rewrite EXERCISES.md from the exercise registry"
	echo "make assignment EXERCISES=\"1.1 1.3\" OUT=dir   student notebooks with only those exercises open"
	echo "make grade SUBMISSIONS=dir OUT=dir [EXERCISES=...] [JOBS=n] [SCHEDULER=tcp://host:8786] [RESUME=1] [FULL=1]"
	echo "make assignment CHALLENGE=fewstep OUT=dir / make grade CHALLENGE=fewstep SUBMISSIONS=dir OUT=dir   the few-step challenge"
	echo "make nbgrader OUT=dir [EXERCISES=... NAME=hw1]   export an nbgrader course (source/<assignment>/)"

# pip draws bars while it downloads, then prints nothing while it installs (about a minute the first
# time): a line every 5 s counts the packages installed so far, so set-up never goes silent.
define pip_with_progress
site=$$(echo $(VENV)/lib/python*/site-packages); count() { ls -d $$site/*.dist-info 2>/dev/null | wc -l; }; \
before=$$(count); start=$$(date +%s); \
( while sleep 5; do now=$$(count); [ "$$now" -gt "$$before" ] && \
  echo "   installing, $$(( $$(date +%s) - start )) s: packages in place so far: $$((now - before))"; done ) & ticker=$$!; \
$(PIP) $(1); status=$$?; kill $$ticker 2>/dev/null; exit $$status
endef

setup: $(STAMP)
setup-dev: $(DEV_STAMP)

# The course: what running the notebooks needs (requirements.txt). labconfig.py is a prerequisite so that an
# update of the lab's settings (the save hook, quiet kernels) reaches existing environments: pip then finds
# every package in place, which takes seconds.
$(STAMP): requirements.txt pyproject.toml tools/course/labconfig.py
	echo "== Setting up the course in $(VENV)/: the pinned packages of requirements.txt."
	echo "   The first time this downloads about 2 GB and takes a few minutes; later runs skip it."
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(call pip_with_progress,-r requirements.txt)
	$(PIP) --quiet --no-deps -e .
	$(PY) -m tools.course.labconfig
	$(PY) -c "import torch, torchdiffeq, utils, jupyterlab"
	touch $(STAMP)
	echo "== Course set up."

# Tests and instructor tooling on top (requirements-dev.txt): pytest, nbval, Playwright, nbgrader, Dask, Sphinx.
$(DEV_STAMP): $(STAMP) requirements-dev.txt
	echo "== Installing the test and instructor tools (requirements-dev.txt; a minute or two the first time)."
	$(call pip_with_progress,-r requirements.txt -r requirements-dev.txt)
	$(PY) -m tools.course.labconfig
	$(PY) -c "import nbval, pytest, playwright, nbgrader"
	touch $(DEV_STAMP)

# Your own copy of the notebooks, made on first use and updated without touching your answers.
workspace: $(STAMP)
	$(PY) -m tools.course.workspace --work $(WORK)

LAB_ARGS = --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(WORK) --ServerApp.open_browser=False \
  --LabApp.default_url=/lab/tree/00_welcome.ipynb $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True,)
lab: workspace
	echo "== Opening JupyterLab on $(WORK)/ (your copy; lectures/ stays as the course ships it)."
	echo "   Open the http://127.0.0.1 URL printed below, with its token. Stop with Ctrl-C."
	$(VENV)/bin/jupyter lab $(LAB_ARGS)

# Debian's Chromium for the browser tests (tests/test_browser.py, tests/test_site.py), where missing and
# possible (root with apt-get); elsewhere those tests skip, saying why. Never a browser download.
CHROMIUM := /usr/bin/chromium
browser:
	test -x $(CHROMIUM) || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "== Installing Debian's chromium (apt-get) for the browser tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "could not install chromium: the browser tests will be skipped"; \
	else echo "no $(CHROMIUM) (as root: apt-get install chromium): the browser tests will be skipped"; fi; }

test: $(DEV_STAMP) browser
	echo "== Unit tests, checks, sync, browser and site tests; the solutions under nbval (strict)"
	COURSE_QUIET=1 COURSE_CHECK_FIGURES=1 $(PY) -m pytest $(XDIST) tests solutions --nbval $(NBVAL) \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg
	echo "== The student notebooks, unsolved, under nbval (lax)"
	COURSE_QUIET=1 COURSE_CHECK_FIGURES=1 $(PY) -m pytest $(XDIST) lectures --nbval-lax $(NBVAL)

lectures: $(STAMP)
	$(PY) -m tools.course.lectures

solutions: $(STAMP)
	COURSE_QUIET=1 $(PY) -m tools.course.execute solutions/*.ipynb
	$(PY) -m tools.course.lectures

bench: $(DEV_STAMP)
	$(PY) -m tools.bench.run

# The converged references (utils/references.py): retrain into weights/ (minutes). NAMES="02_realnvp ..." JOBS=2
.PHONY: weights
weights: $(STAMP)
	$(PY) -m tools.course.weights $(NAMES) $(if $(JOBS),--jobs $(JOBS))

# Locks are frozen from a fresh environment holding exactly the direct pins and what they need.
LOCK_VENV := build/lock-venv
lock:
	echo "== Locking: a fresh $(LOCK_VENV) with requirements.in and requirements-dev.in, then frozen"
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements.in -r requirements-dev.in
	$(LOCK_VENV)/bin/python tools/course/lock.py

# The website: build/site (answers hidden, publish this), or with SOLUTIONS=1 build/site-solutions.
site: $(DEV_STAMP)
	$(PY) -m tools.site.build $(if $(filter 1,$(SOLUTIONS)),--solutions --out $(or $(OUT),build/site-solutions),--out $(or $(OUT),build/site))

# Instructor toolkit (INSTRUCTORS.md): catalogue, assignments, autograding, nbgrader export
.PHONY: catalogue assignment grade nbgrader

catalogue: $(STAMP)
	$(PY) -m tools.grading.catalogue

assignment: $(STAMP)
	test -n "$(EXERCISES)$(CHALLENGE)" -a -n "$(OUT)" || { echo 'usage: make assignment EXERCISES="1.1 1.3" OUT=dir (or CHALLENGE=fewstep OUT=dir)'; exit 2; }
	$(PY) -m tools.grading.assignment $(EXERCISES) $(if $(CHALLENGE),--challenge $(CHALLENGE)) --out "$(OUT)"

grade: $(DEV_STAMP)
	test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo 'usage: make grade SUBMISSIONS=dir OUT=dir [EXERCISES="1.1 1.3"] [JOBS=n] [SCHEDULER=tcp://host:8786] [RESUME=1] [FULL=1]'; exit 2; }
	$(PY) -m tools.grading.grade "$(SUBMISSIONS)" "$(OUT)" $(if $(EXERCISES),--exercises "$(EXERCISES)") $(if $(JOBS),--jobs $(JOBS)) \
	  $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(RESUME),--resume) $(if $(FULL),--full) $(if $(CHALLENGE),--challenge $(CHALLENGE))

nbgrader: $(DEV_STAMP)
	test -n "$(OUT)" || { echo 'usage: make nbgrader OUT=dir [EXERCISES="1.1 1.3" NAME=hw1]'; exit 2; }
	$(PY) -m tools.grading.nbgrader_export --out "$(OUT)" $(if $(EXERCISES),--exercises "$(EXERCISES)") $(if $(NAME),--name "$(NAME)")

clean:
	rm -rf $(VENV) build .pytest_cache

"""Pins: requirements.txt, environment.yml and requirements.in agree; utils imports without path edits."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    out = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            out[m.group(1).lower().replace("_", "-")] = m.group(2)
    return out


def test_environment_yml_matches_requirements():
    req = _pins((ROOT / "requirements.txt").read_text().splitlines())
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req == env, "environment.yml and requirements.txt disagree: run `make lock`"


def test_every_dependency_is_pinned():
    for lock in ("requirements.txt", "requirements-dev.txt"):
        lines = [l.split("#")[0].strip() for l in (ROOT / lock).read_text().splitlines()]
        lines = [l for l in lines if l]
        assert all("==" in l for l in lines), (lock, [l for l in lines if "==" not in l])


def test_direct_pins_are_in_the_lock():
    """requirements.txt holds the course (make lab); requirements-dev.txt the tools on top (make test)."""
    course = _pins((ROOT / "requirements.txt").read_text().splitlines())
    dev = _pins((ROOT / "requirements-dev.txt").read_text().splitlines())
    assert not set(course) & set(dev), "a package is pinned in both locks"
    direct = _pins((ROOT / "requirements.in").read_text().splitlines())
    assert direct["torch"] == "2.13.0"
    for name, version in direct.items():
        assert course.get(name) == version, f"{name}=={version} from requirements.in is not in requirements.txt"
    for name, version in _pins((ROOT / "requirements-dev.in").read_text().splitlines()).items():
        assert dev.get(name) == version, f"{name}=={version} from requirements-dev.in is not in requirements-dev.txt"
    for tool in ("pytest", "nbval", "playwright", "nbgrader"):
        assert tool not in course, f"{tool} is a test/instructor tool: it belongs in requirements-dev.in"


def test_utils_is_installed_not_path_hacked():
    import utils

    assert Path(utils.__file__).resolve().parent == ROOT / "utils"
    for nb in (ROOT / "solutions").glob("*.ipynb"):
        assert "sys.path" not in nb.read_text(), f"{nb.name} edits sys.path"


def test_make_lab_serves_lectures_on_localhost_with_a_token():
    import subprocess

    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    cmd = [l for l in out.splitlines() if "jupyter lab" in l][-1]
    assert "--ServerApp.ip=127.0.0.1" in cmd and "--ServerApp.root_dir=my-work" in cmd
    assert "token=''" not in cmd and "ServerApp.token=" not in cmd  # the default: a random token


def test_ci_runs_make_test():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci

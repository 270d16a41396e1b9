"""The house stays readable: no module of utils/ or tools/ over about 400 lines (issue 25).

The check modules (``utils/checks/nbNN.py``, one a notebook) are excepted: each holds one
notebook's exercises. A module that grows past the limit is split by concept (as utils/sde.py
and the grader were), not let through here; ``OVER`` names the ones waiting for their split,
and fails once one of them fits again, so that the list only shrinks.
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400
CHECK_MODULE = re.compile(r"utils/checks/nb\d\d\.py")
OVER: dict[str, str] = {}  # module -> why it waits for its split (empty: none waits)


def _lines() -> dict[str, int]:
    out = {}
    for package in ("utils", "tools"):
        for p in sorted((ROOT / package).rglob("*.py")):
            rel = p.relative_to(ROOT).as_posix()
            if "__pycache__" not in p.parts and not CHECK_MODULE.fullmatch(rel):
                out[rel] = len(p.read_text().splitlines())
    return out


def test_no_module_over_the_limit():
    lines = _lines()
    assert lines, "found no module under utils/ or tools/"
    over = {m: n for m, n in lines.items() if n > LIMIT and m not in OVER}
    assert not over, (f"over {LIMIT} lines: {over}; split them by concept (one module a part, "
                      "each with a docstring that names what it is for)")


def test_the_waiting_list_only_shrinks():
    lines = _lines()
    fits = [m for m in OVER if lines.get(m, 0) <= LIMIT]
    assert not fits, f"{fits} now fit in {LIMIT} lines (or are gone): remove them from OVER"


def test_the_package_map_names_every_module():
    """utils/__init__.py's docstring is the map a newcomer reads: every module of utils/ (and of its
    subpackages) is named there, so a new module cannot land unannounced."""
    import utils

    doc = utils.__doc__
    missing = []
    for p in sorted((ROOT / "utils").rglob("*.py")):
        if "__pycache__" in p.parts or p.name == "__init__.py" or CHECK_MODULE.fullmatch(p.relative_to(ROOT).as_posix()):
            continue
        parts = p.relative_to(ROOT / "utils").with_suffix("").parts
        names = {".".join(parts), parts[-1], f"utils.{'.'.join(parts)}"}
        if parts[0] == "widgets":  # the widget modules are named by their widget
            continue
        if not any(re.search(rf"``(utils\.)?{re.escape(n)}``", doc) for n in names):
            missing.append(".".join(parts))
    assert not missing, f"utils/__init__.py's docstring does not name: {missing}"

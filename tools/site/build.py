"""Build the course website: a static HTML book of the notebooks (``make site``).

    python -m tools.site.build [--solutions] [--out build/site]

Sphinx + myst-nb + sphinx-book-theme (the stack Jupyter Book 1 wraps), chosen because it builds
fully offline: the theme ships its CSS, JS and icon fonts, MathJax 3 comes from a wheel
(``sphinx-mathjax-offline``; copied into ``_static/mathjax``), and Sphinx's search is a local
index. Nothing on a page is fetched from another host.

What it does:

1. stages a Sphinx project in a temporary folder: ``site/conf.py`` and ``site/_static``; a landing
   page from README.md (the course description, how to run it and the notebook table);
   EXERCISES.md and INSTRUCTORS.md; and the notebooks of ``solutions/`` in order, with their
   stored outputs (never executed). By default each notebook is what a student sees: the
   solution blocks are replaced by the stub (``tools.course.lectures.make_lecture``, the one set of
   rules), the outputs are those of the reference run; a hint keeps its first level (the idea, the
   API) and loses its nested "Show code", which holds the answer's lines. With ``--solutions`` (instructor's copy)
   each answer cell keeps its solution, folded under "show solution";
2. links: "notebook 03" in prose becomes a link to notebook 03's page; links to
   ``solutions/``/``lectures/`` notebooks, README.md, EXERCISES.md and INSTRUCTORS.md point to the
   pages; a link to any other repository file becomes plain text (it is not on the site);
3. replaces each widget's output with an animation of the widget sweeping its main control
   (:mod:`tools.site.widgets`) and a line "open the notebook to play with it", linking the
   student notebook, which is shipped in ``lectures/`` beside the pages;
4. builds with Sphinx into ``--out``, copies MathJax in, then checks links: a Sphinx warning about
   a missing reference or document, or a crawl of the built HTML that finds a relative link,
   image, script or stylesheet pointing at no file (or at no anchor of its page), or anything
   loaded from another host, fails the build (exit status 1).
"""
from __future__ import annotations

import argparse
import copy
import html
import io
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

from tools.course.lectures import BEGIN, make_lecture
from tools.site.widgets import render_widgets

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS, SITE_SRC = ROOT / "solutions", ROOT / "site"
DEFAULT_OUT = ROOT / "build" / "site"
CACHE = ROOT / "build" / "site-cache"
PAGES = ("EXERCISES.md", "INSTRUCTORS.md")      # repository documents shown as pages
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_EXTERNAL_LINK = re.compile(r'<link\b[^>]*\bhref="(https?:)?//[^"]*"[^>]*>\s*', re.I)
SHOW_SOLUTION, HIDE_SOLUTION = "show solution", "hide solution"
# Sphinx warnings that mean a broken internal link or page: these fail the build
FATAL_WARNINGS = re.compile(r"xref_missing|reference target not found|undefined label|unknown document|"
                            r"nonexisting document|isn't included in any toctree|not readable|"
                            r"Unknown target name|local id not found|myst\.xref|image file")


class SiteError(RuntimeError):
    pass


def notebooks() -> list[Path]:
    return sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))


# ----------------------------------------------------------------- links in markdown
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(([^)\s]+)\)")
# spans in which nothing is rewritten: code, math, links, html tags
_PROTECTED = re.compile(r"```.*?```|`[^`\n]*`|\$\$.*?\$\$|\$[^$\n]*\$|!?\[[^\]\n]*\]\([^)\s]*\)|<[^>\n]+>",
                        re.S)
_MENTION = re.compile(r"\b([Nn]otebooks?)(\s+)(\d\d)\b((?:(?:,\s*|\s+(?:and|to|or)\s+)\d\d\b)*)")


def _page_of(target: str, stems: dict[str, str]) -> str | None:
    """The site page (source file name) a repository link points to, or None when it has none."""
    path = re.sub(r"^(\./|\.\./)+", "", unquote(target))
    name = Path(path).name
    if re.fullmatch(r"(solutions/|lectures/)?\d\d_\w+\.ipynb", path) and Path(name).stem in stems.values():
        return name
    if path == "README.md":
        return "index.md"
    if path in PAGES:
        return path
    return None


def rewrite_links(text: str, stems: dict[str, str]) -> str:
    """Repository links -> page links; a link to a file that is not on the site -> its text."""
    def one(m: re.Match) -> str:
        bang, label, target = m.groups()
        if bang or re.match(r"[a-z]+:|#", target):
            return m.group(0)
        path, _, anchor = target.partition("#")
        page = _page_of(path, stems)
        if page is None:
            return label
        return f"[{label}]({page}{'#' + anchor if anchor else ''})"
    return _LINK.sub(one, text)


def link_mentions(text: str, stems: dict[str, str], current: str = "") -> str:
    """'notebook 03' -> a link to notebook 03's page; 'notebooks 04 to 06' links each number."""
    def mention(m: re.Match) -> str:
        word, space, first, rest = m.groups()
        nums = [first] + re.findall(r"\d\d", rest)
        if any(n not in stems or stems[n] == current for n in nums):
            return m.group(0)
        if len(nums) == 1:
            return f"[{word}{space}{first}]({stems[first]}.ipynb)"
        return word + space + re.sub(r"\d\d", lambda k: f"[{k.group(0)}]({stems[k.group(0)]}.ipynb)",
                                     first + rest)

    out, pos = [], 0
    for m in _PROTECTED.finditer(text):
        out.append(_mentions_outside_headings(text[pos:m.start()], mention))
        out.append(m.group(0))
        pos = m.end()
    out.append(_mentions_outside_headings(text[pos:], mention))
    return "".join(out)


def _mentions_outside_headings(chunk: str, mention) -> str:
    lines = chunk.split("\n")
    return "\n".join(line if line.lstrip().startswith("#") else _MENTION.sub(mention, line) for line in lines)


# "Show code", "Show the derivation and the code", "Show the formula and the code": every second level that holds code
_CODE_HINT = re.compile(r"<details>\s*<summary>\s*Show[^<]*\bcode\s*</summary>.*?</details>", re.S | re.I)
CODE_HINT_NOTE = "*The code of this hint is in the course's notebooks (`lectures/`, `make lab`), not on this site.*"


def hide_code_hints(text: str) -> str:
    """Drop a hint's second level (the nested "Show code", which holds the answer's lines)."""
    return _CODE_HINT.sub("\n" + CODE_HINT_NOTE + "\n", text)


def markdown_for_site(text: str, stems: dict[str, str], current: str = "") -> str:
    return link_mentions(rewrite_links(text, stems), stems, current)


# ----------------------------------------------------------------- the pages
def landing_page(stems: dict[str, str], solutions: bool) -> str:
    """index.md: README's course description, its two commands and its notebook table."""
    readme = (ROOT / "README.md").read_text()
    intro = readme.split("\n## ", 1)[0]
    sections = {s.split("\n", 1)[0].strip(): s.split("\n", 1)[1] for s in readme.split("\n## ")[1:]}
    table = sections.get("The notebooks", "").split("<!-- NOTEBOOK-LIST-END -->")[0].strip()
    if not table:
        raise SiteError("README.md has no '## The notebooks' table")
    run = sections.get("Two commands", "").strip()
    which = ("This is the **instructor's copy**: each exercise's solution is folded under "
             f"\"{SHOW_SOLUTION}\"." if solutions else
             "Each notebook appears as a student meets it, with the figures and tables of the "
             "reference run. Exercises show their statement, hint and the stub to fill in; the "
             "answers are not on this site.")
    toc_nb = "\n".join(stems[k] for k in sorted(stems))
    toc_pages = "\n".join(Path(p).stem for p in PAGES)
    parts = [intro.strip(), "## The notebooks", table,
             f"This website is built from the notebooks with `make site`. {which} Widgets appear as "
             "animations; open a notebook to play with them.",
             "## Run it yourself", run,
             f"```{{toctree}}\n:hidden:\n:caption: Notebooks\n\n{toc_nb}\n```",
             f"```{{toctree}}\n:hidden:\n:caption: Exercises and instructors\n\n{toc_pages}\n```"]
    return markdown_for_site("\n\n".join(parts) + "\n", stems)


def _widget_output(anim: dict, stem: str) -> nbformat.NotebookNode:
    values = anim["values"]
    swept = (f"from {values[0]:g} to {values[-1]:g}" if all(isinstance(v, (int, float)) for v in values)
             else "over its choices")
    note = (f'<p class="widget-note">A static page has no kernel: this animation sweeps the widget\'s '
            f"control <code>{html.escape(anim['control'])}</code> {swept} (press &#9654;). "
            f'Open the notebook <a href="lectures/{stem}.ipynb"><code>lectures/{stem}.ipynb</code></a> '
            f"to play with it (<code>make lab</code>).</p>")
    # to_jshtml links Font Awesome 4 from a CDN for its buttons: dropped (the theme ships Font Awesome)
    player = _EXTERNAL_LINK.sub("", anim["html"])
    body = f'<div class="widget-sweep">\n{player}\n{note}\n</div>'
    return nbformat.v4.new_output("display_data", data={"text/html": body})


def site_notebook(nb: nbformat.NotebookNode, stem: str, stems: dict[str, str], solutions: bool,
                  animations: dict) -> nbformat.NotebookNode:
    """The notebook as the site shows it (see the module docstring)."""
    if solutions:
        page = copy.deepcopy(nb)
        for cell in page.cells:
            if cell.cell_type == "code" and BEGIN in cell.source:
                tags = cell.metadata.setdefault("tags", [])
                tags.append("hide-input")
    else:
        page = make_lecture(nb, stem)
        for cell, orig in zip(page.cells, nb.cells):
            if cell.cell_type == "code":
                cell.outputs = copy.deepcopy(orig.outputs)
                cell.execution_count = orig.execution_count
            role = cell.get("metadata", {}).get("course", {})
            if cell.cell_type == "code" and role.get("role") in ("answer", "check"):
                # the page shows the stub, so not the solved run's outputs: a stub above "passed" misled
                # (walk-through 3, m10); the check shows what it prints for the stub
                cell.outputs = [] if role["role"] == "answer" else [_not_attempted(role.get("exercise", ""))]
    page.metadata.pop("widgets", None)
    for i, cell in enumerate(page.cells):
        if cell.cell_type == "markdown":
            cell.source = markdown_for_site(cell.source if solutions else hide_code_hints(cell.source), stems, stem)
        elif (stem, i) in animations:
            cell.outputs = [_widget_output(animations[(stem, i)], stem)]
        elif cell.cell_type == "code":
            for out in cell.outputs:
                if "text/html" in out.get("data", {}):  # a stored JS animation links Font Awesome from a CDN
                    out["data"]["text/html"] = _EXTERNAL_LINK.sub("", out["data"]["text/html"])
                course = out.get("metadata", {}).get("course", {})
                if "predict" in course or "reveal" in course:  # predict, then run: static question, answer folded
                    from utils.widgets.predict import static_answer_html, static_question_html

                    render = static_question_html if "predict" in course else static_answer_html
                    out["data"] = {"text/html": render(course)}
                elif WIDGET_MIME in out.get("data", {}):  # a widget no sweep was found for
                    out["data"] = {"text/html": f'<p class="widget-note">An interactive widget: open '
                                   f'<a href="lectures/{stem}.ipynb"><code>lectures/{stem}.ipynb</code></a> '
                                   "to play with it.</p>"}
    return page


def _not_attempted(exercise: str) -> nbformat.NotebookNode:
    """What the check cell prints under the untouched stub: not attempted, and the notebook goes on."""
    from utils.checks.core import NOT_ATTEMPTED, Result, get_exercise

    try:
        ex = get_exercise(exercise)
    except Exception:  # an unregistered id: say what the site shows, without the check's words
        return nbformat.v4.new_output("stream", name="stdout",
                                      text="(Run this check in your notebook: it tests your answer above.)\n")
    report = Result(ex.id, ex.title, NOT_ATTEMPTED).report()
    return nbformat.v4.new_output("stream", name="stdout", text=(
        f"{report}\n↪ The notebook continues with the reference `{ex.answer}`, so the cells below still run. "
        "(The site shows the course's own run: its outputs below come from the reference answers.)\n"))


def stage(src: Path, solutions: bool, animations: dict) -> dict[str, str]:
    """Write the Sphinx project into ``src``; return {"03": "03_continuous_flows", ...}."""
    paths = notebooks()
    if not paths:
        raise SiteError(f"no notebooks in {SOLUTIONS}")
    stems = {p.name[:2]: p.stem for p in paths}
    shutil.copytree(SITE_SRC, src, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    (src / "index.md").write_text(landing_page(stems, solutions))
    for name in PAGES:
        (src / name).write_text(markdown_for_site((ROOT / name).read_text(), stems))
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        nbformat.write(site_notebook(nb, p.stem, stems, solutions, animations), src / p.name)
    return stems


# ----------------------------------------------------------------- the link check
def _html_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.html") if "_static" not in p.parts)


def check_links(out: Path) -> list[str]:
    """Broken relative links/anchors and anything loaded from another host, in every built page."""
    from bs4 import BeautifulSoup

    problems, ids = [], {}

    def anchors(page: Path) -> set[str]:
        if page not in ids:
            soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
            ids[page] = {t["id"] for t in soup.find_all(id=True)} | {t["name"] for t in soup.find_all("a", attrs={"name": True})}
        return ids[page]

    for page in _html_files(out):
        soup = BeautifulSoup(page.read_text(errors="replace"), "html.parser")
        rel = page.relative_to(out)
        for tag, attr in (("a", "href"), ("link", "href"), ("script", "src"), ("img", "src"),
                          ("iframe", "src"), ("source", "src"), ("video", "src"), ("audio", "src")):
            for t in soup.find_all(tag, attrs={attr: True}):
                url = t[attr]
                parts = urlsplit(url)
                if parts.scheme in ("data", "mailto", "javascript"):
                    continue
                if parts.scheme or parts.netloc:
                    if tag != "a":
                        problems.append(f"{rel}: <{tag} {attr}={url!r}> loads from another host")
                    continue
                target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
                if target.is_dir():
                    target = target / "index.html"
                if not target.exists() or out.resolve() not in target.resolve().parents and target.resolve() != out.resolve():
                    problems.append(f"{rel}: <{tag} {attr}={url!r}> points at no file of the site")
                elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors(target):
                    problems.append(f"{rel}: <{tag} {attr}={url!r}> points at no anchor of {target.name}")
    return problems


# ----------------------------------------------------------------- the build
def mathjax_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise SiteError("MathJax is missing: pip install sphinx-mathjax-offline (pinned in requirements)")
    return Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"


class _SphinxProgress(io.StringIO):
    """Sphinx's status stream, shown as one line a phase and a page ("writing output... [ 40%] 03_...")
    at most every few seconds: the build says what it does without Sphinx's full log (m6)."""

    def __init__(self, log, every: float = 3.0):
        super().__init__()
        self.log, self.every, self.last, self.phase = log, every, 0.0, ""

    def write(self, text: str) -> int:
        for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines():
            line = line.strip()
            m = re.match(r"^([a-z][a-z ]+)\.\.\.\s*(\[\s*\d+%\].*)?$", line)
            if not m:
                continue
            now = time.perf_counter()
            if m.group(1) != self.phase or now - self.last >= self.every:
                self.phase, self.last = m.group(1), now
                self.log(f"   pages: {line}")
        return len(text)


def build(out: Path = DEFAULT_OUT, solutions: bool = False, verbose: bool = False, log=print) -> Path:
    from sphinx.application import Sphinx

    start = time.perf_counter()
    out = Path(out).resolve()
    animations = render_widgets(notebooks(), CACHE, log=log)
    log(f"widget animations ready ({len(animations)}) after {time.perf_counter() - start:.0f} s")
    with tempfile.TemporaryDirectory(prefix="course-site-") as tmp:
        src = Path(tmp) / "src"
        log("   pages: staging the notebooks and starting Sphinx ...")
        stage(src, solutions, animations)
        if out.exists():
            shutil.rmtree(out)
        warnings = io.StringIO()
        overrides = {"nb_code_prompt_show": SHOW_SOLUTION, "nb_code_prompt_hide": HIDE_SOLUTION} if solutions else {}
        app = Sphinx(str(src), str(src), str(out), str(Path(tmp) / "doctrees"), "html",
                     confoverrides=overrides, status=sys.stdout if verbose else _SphinxProgress(log), warning=warnings,
                     freshenv=True, keep_going=True)
        app.build(force_all=True)
    log("   pages: copying MathJax and the student notebooks, then checking every link ...")
    shutil.copytree(mathjax_dir(), out / "_static" / "mathjax")
    lectures = out / "lectures"
    lectures.mkdir()
    for p in notebooks():  # the student notebooks to download (answers and code hints left out)
        nb = make_lecture(nbformat.read(p, as_version=4), p.name)
        for cell in nb.cells:
            if cell.cell_type == "markdown" and not solutions:
                cell.source = hide_code_hints(cell.source)
        nbformat.write(nb, lectures / p.name)
    text = warnings.getvalue().strip()
    if text:
        log("sphinx warnings:\n" + text)
    fatal = [w for w in text.splitlines() if FATAL_WARNINGS.search(w)]
    problems = fatal + check_links(out)
    if app.statuscode:
        problems.append(f"sphinx exited with status {app.statuscode}")
    if problems:
        raise SiteError("broken links or pages:\n  " + "\n  ".join(problems))
    pages = len(_html_files(out))
    log(f"built {pages} pages into {out} in {time.perf_counter() - start:.0f} s"
        f" ({'instructor copy, solutions folded' if solutions else 'answers hidden'})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solutions", action="store_true", help="instructor's copy: solutions folded")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default build/site)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show Sphinx's progress")
    args = ap.parse_args(argv)
    try:
        build(args.out, args.solutions, args.verbose)
    except RuntimeError as e:  # SiteError, or a widget that could not be rendered
        print(f"make site failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The course website (``make site``, tools/site/build.py): answers hidden, links whole, offline, in a browser.

The site is built once per session (default copy into ``build/site``, the instructor's copy into
``build/site-solutions``); widget animations are cached in ``build/site-cache``. Then:

- no solution block of ``solutions/`` (the lines between the markers, whitespace normalised)
  appears anywhere in the default site, while every one appears in the instructor's copy, folded
  under "show solution" (so the grep is shown able to find them);
- every page exists, every internal link, image and script resolves (``tools.site.check_links``,
  itself shown to catch a broken link), "notebook 03" became a link, each widget cell carries a
  multi-frame animation and a link to its notebook;
- in Debian's Chromium (Playwright; never a downloaded browser), with the site served on 127.0.0.1
  and every request to any other host blocked: on every page no request was blocked or failed,
  no raw ``$...$`` or ``\\frac`` is visible, MathJax typeset the math with no error node
  (``mjx-merror``: a formula it could not parse), every image loaded, no
  JavaScript error, the "next" link leads to the next notebook; the animations move; the search
  finds pages offline. Screenshots go to ``build/site-shots/``.

Where no Chromium or Playwright can be had, the browser test is skipped saying why; with
``CI=true`` it fails instead.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from tests.browsers import CHROMIUM, CHROMIUM_FLAGS, require_browser
from tools.site import build as site
from tools.site.widgets import displayed_widget, widget_cells

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
OUT, OUT_SOLUTIONS = ROOT / "build" / "site", ROOT / "build" / "site-solutions"
SHOTS = ROOT / "build" / "site-shots"
NOTEBOOKS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
_BLOCK = re.compile(r"^[ \t]*### BEGIN SOLUTION[ \t]*\n(.*?)\n[ \t]*### END SOLUTION[ \t]*$", re.S | re.M)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def solution_blocks() -> list[tuple[str, str]]:
    """(where, normalised block) for every solution block of every solution notebook."""
    out = []
    for p in NOTEBOOKS:
        for i, cell in enumerate(nbformat.read(p, as_version=4).cells):
            if cell.cell_type == "code":
                out += [(f"{p.name} cell {i}", _norm(b)) for b in _BLOCK.findall(cell.source) if _norm(b)]
    return out


def site_texts(out: Path) -> dict[str, str]:
    """Every file of a built site as normalised text: HTML as rendered text and as source."""
    from bs4 import BeautifulSoup

    texts = {}
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.suffix not in (".html", ".js", ".txt", ".ipynb", ".json", ".md", ".py"):
            continue
        if "mathjax" in p.parts:
            continue
        raw = p.read_text(errors="replace")
        rel = str(p.relative_to(out))
        if p.suffix == ".html":
            texts[rel + " (text)"] = _norm(BeautifulSoup(raw, "html.parser").get_text())
        elif p.suffix == ".ipynb":
            raw = "\n".join(c.source for c in nbformat.reads(raw, as_version=4).cells)
        texts[rel] = _norm(raw)
    return texts


@pytest.fixture(scope="session")
def built() -> Path:
    site.build(OUT, solutions=False)
    return OUT


@pytest.fixture(scope="session")
def built_solutions(built) -> Path:
    site.build(OUT_SOLUTIONS, solutions=True)
    return OUT_SOLUTIONS


def _page(nb: Path) -> str:
    return f"{nb.stem}.html"


# ----------------------------------------------------------------- answers hidden
def test_default_site_contains_no_solution_code(built):
    blocks = solution_blocks()
    assert len(blocks) >= 20, blocks
    texts = site_texts(built)
    leaks = [(where, name) for where, block in blocks for name, text in texts.items() if block in text]
    assert not leaks, f"solution code in the built site: {leaks[:10]}"
    # what the student sees instead: the stub, and the hint
    page = texts["01_change_of_variables.html (text)"]
    assert "# YOUR CODE HERE" in page and "raise NotImplementedError()" in page
    assert "Hint" in page and "The code of this hint is in the course" in page  # its second level left out


def test_instructor_copy_shows_every_solution_folded(built_solutions):
    from bs4 import BeautifulSoup

    blocks = solution_blocks()
    texts = site_texts(built_solutions)
    missing = [where for where, block in blocks
               if not any(block in t for name, t in texts.items() if name.endswith("(text)"))]
    assert not missing, f"the grep cannot find these solutions in the instructor's copy: {missing}"
    soup = BeautifulSoup((built_solutions / "01_change_of_variables.html").read_text(), "html.parser")
    folded = [d for d in soup.find_all("details") if d.summary and site.SHOW_SOLUTION in d.summary.get_text()]
    assert folded, "no <details> with a 'show solution' summary"
    assert all("open" not in d.attrs for d in folded), "a solution is shown unfolded"
    inside = _norm(" ".join(d.get_text() for d in folded))
    ones = [b for w, b in blocks if w.startswith("01_")]
    assert ones and all(b in inside for b in ones)


# ----------------------------------------------------------------- pages and links
def test_an_exercise_shows_its_stub_with_the_not_attempted_check(built):
    """The default site shows the stub, so its check says "not attempted", never the solved run's
    "passed" (walk-through 3, m10); the answer cell shows no output of the solved run."""
    from bs4 import BeautifulSoup

    text = _norm(BeautifulSoup((built / "01_change_of_variables.html").read_text(), "html.parser").get_text())
    assert "raise NotImplementedError()" in text
    assert "Exercise 1.1 (" in text and "not attempted yet" in text
    assert not re.search(r"Exercise \d+\.\d+ \([^)]*\): passed", text), "a stub is followed by 'passed'"


def test_every_page_is_built_and_every_internal_link_resolves(built):
    for name in ["index.html", "EXERCISES.html", "INSTRUCTORS.html", "search.html"] + [_page(p) for p in NOTEBOOKS]:
        assert (built / name).exists(), name
    assert site.check_links(built) == []
    assert (built / "_static" / "mathjax" / "tex-chtml.js").exists()
    index = (built / "index.html").read_text()
    for p in NOTEBOOKS:
        assert f'href="{_page(p)}' in index, f"the landing page does not link {p.stem}"
        assert (built / "lectures" / p.name).exists()
    assert "$x = f(z)$" not in index and "\\(x = f(z)\\)" in index  # README's math, as math


def test_notebook_mentions_become_links(built):
    html = (built / "01_change_of_variables.html").read_text()
    assert re.search(r'<a class="reference internal" href="00_welcome.html[^"]*">.*?notebook 00', html, re.S)
    stems = {p.name[:2]: p.stem for p in NOTEBOOKS}
    md = site.link_mentions("see notebooks 04 to 06, `notebook 02` and $notebook 03$\n# Notebook 01", stems)
    assert md == ("see notebooks [04](04_sde_to_ode.ipynb) to [06](06_couplings_showdown.ipynb), "
                  "`notebook 02` and $notebook 03$\n# Notebook 01")
    assert site.link_mentions("as in notebook 02's layers", stems, current="03_continuous_flows") == \
        "as in [notebook 02](02_normalizing_flows.ipynb)'s layers"
    assert site.link_mentions("this is notebook 03", stems, current="03_continuous_flows") == "this is notebook 03"
    assert site.rewrite_links("[a](solutions/01_change_of_variables.ipynb) [b](tools/grading/grade.py) "
                              "[c](INSTRUCTORS.md#x) [d](https://example.org)", stems) == \
        "[a](01_change_of_variables.ipynb) b [c](INSTRUCTORS.md#x) [d](https://example.org)"


def test_link_check_finds_broken_links(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#there">b</a><a href="c.html">c</a>'
                                     '<img src="_images/x.png"><script src="https://cdn.example/x.js"></script>'
                                     '<a href="https://example.org">fine: a link, not a request</a>')
    (tmp_path / "b.html").write_text('<p id="here">b</p>')
    problems = "\n".join(site.check_links(tmp_path))
    assert "b.html#there" in problems and "no anchor" in problems
    assert "c.html" in problems and "_images/x.png" in problems
    assert "cdn.example" in problems and "another host" in problems
    assert "example.org" not in problems


# ----------------------------------------------------------------- widgets
def test_widget_cells_are_found_by_their_code():
    found = {p.name[:2]: len(widget_cells(nbformat.read(p, as_version=4))) for p in NOTEBOOKS}
    assert {k: v for k, v in found.items() if v} == {"00": 1, "03": 2, "04": 1, "05": 1, "08": 1, "09": 1}
    assert displayed_widget("w = SDEvsODEWidget(a, b)\nw") is not None
    assert displayed_widget("display(PathExplorer())") is not None
    assert displayed_widget("w = PathExplorer()") is None
    assert displayed_widget("PathExplorer\nprint(1)") is None


def test_each_widget_is_an_animation_with_a_link_to_its_notebook(built):
    from bs4 import BeautifulSoup

    for p in NOTEBOOKS:
        n = len(widget_cells(nbformat.read(p, as_version=4)))
        soup = BeautifulSoup((built / _page(p)).read_text(), "html.parser")
        sweeps = soup.select("div.widget-sweep")
        assert len(sweeps) == n, p.name
        for s in sweeps:
            assert s.select_one("div.animation img") is not None
            frames = len(re.findall(r"frames\[\d+\] = \"data:image/png;base64", str(s)))
            assert frames >= 5, f"{p.name}: an animation of {frames} frames"
            link = s.select_one(f'a[href="lectures/{p.name}"]')
            assert link is not None and "play with it" in s.get_text()
        assert "widget-view+json" not in str(soup)


# ----------------------------------------------------------------- in a real browser
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served(built):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(built)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    require_browser("the site's browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


# visible text with code, scripts and typeset math taken out: what must hold no raw TeX
VISIBLE_PROSE_JS = """() => {
  const body = document.querySelector('main') || document.body;
  const copy = body.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  document.body.appendChild(copy);               // innerText needs layout
  copy.style.position = 'absolute'; copy.style.left = '-99999px';
  const text = copy.innerText; copy.remove(); return text;
}"""
RAW_TEX = re.compile(r"\$[^$\n]+\$|\\(?:frac|mathbb|mathrm|mathcal|sum|int|nabla|log|det|theta|sigma|mid|"
                     r"left|right|varnothing|circ|partial)\b|\\\(|\\\[")
IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.currentSrc || i.src).slice(0, 120));
}"""
MATH_JS = """async () => {
  if (!window.MathJax) return -1;
  await window.MathJax.startup.promise;
  return document.querySelectorAll('mjx-container').length;
}"""


# MathJax's error nodes: CHTML writes a formula it cannot parse as <mjx-merror> (red text such as
# "Missing or unrecognized delimiter for \\Big"); the SVG output marks it data-mjx-error
MATH_ERRORS_JS = """async () => {
  if (!window.MathJax) return [];
  await window.MathJax.startup.promise;
  return [...document.querySelectorAll('mjx-merror, [data-mjx-error]')]
    .map(e => (e.getAttribute('data-mjx-error') || e.textContent || '').slice(0, 120));
}"""
# a formula MathJax cannot parse, typeset into the page: the error check must see it
BROKEN_MATH_JS = """async () => {
  await window.MathJax.startup.promise;
  const el = document.createElement('span');
  el.className = 'math notranslate nohighlight';
  el.textContent = '\\\\(\\\\Big a\\\\)';
  (document.querySelector('main') || document.body).appendChild(el);
  await window.MathJax.typesetPromise([el]);
  return el.innerHTML.length;
}"""


class Visit:
    """One page opened on the local server: every request, failure, block and console error."""

    def __init__(self, browser, base: str, path: str):
        self.host = urlsplit(base).netloc
        self.blocked, self.failed, self.errors = [], [], []
        self.ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.page = self.ctx.new_page()
        self.ctx.route("**/*", self._route)
        self.page.on("requestfailed", lambda r: self.failed.append(f"{r.url[:120]} ({r.failure})"))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("response", lambda r: self.failed.append(f"{r.url[:120]} (HTTP {r.status})")
                     if r.status >= 400 else None)
        self.page.goto(f"{base}/{path}", wait_until="load")

    def _route(self, route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.netloc == self.host:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self):
        self.ctx.close()


def _check_page(v: Visit, name: str, expect_math: bool) -> None:
    page = v.page
    count = page.evaluate(MATH_JS)
    if expect_math:
        assert count > 0, f"{name}: no typeset math (MathJax {'absent' if count < 0 else 'typeset nothing'})"
    errors = page.evaluate(MATH_ERRORS_JS)
    assert not errors, f"{name}: MathJax could not typeset {len(errors)} formula(s): {errors[:5]}"
    raw = RAW_TEX.findall(page.evaluate(VISIBLE_PROSE_JS))
    assert not raw, f"{name}: raw TeX visible: {raw[:5]}"
    broken = page.evaluate(IMAGES_JS)
    assert not broken, f"{name}: images not loaded: {broken}"
    page.wait_for_load_state("networkidle")
    assert not v.blocked, f"{name}: requests to other hosts: {v.blocked}"
    assert not v.failed, f"{name}: failed requests: {v.failed}"
    assert not v.errors, f"{name}: console errors: {v.errors}"


def test_site_in_a_browser(built, served, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    order = ["index.html"] + [_page(p) for p in NOTEBOOKS]
    for k, name in enumerate(order + ["EXERCISES.html", "INSTRUCTORS.html"]):
        v = Visit(browser, served, name)
        try:
            _check_page(v, name, expect_math=name in order)
            if k + 1 < len(order):  # the next link leads to the next notebook
                href = v.page.get_attribute("a.right-next", "href")
                assert href and href.split("#")[0] == order[k + 1], f"{name}: next is {href}, not {order[k + 1]}"
            if name in order:
                stem = name[:-5]
                v.page.screenshot(path=str(SHOTS / f"{stem}-top.png"))
                figure = v.page.locator("div.cell_output img").first
                if figure.count():
                    figure.scroll_into_view_if_needed()
                    v.page.screenshot(path=str(SHOTS / f"{stem}-figure.png"))
                for j, anim in enumerate(v.page.locator("div.widget-sweep").all()):
                    _check_animation_moves(v.page, anim, SHOTS / f"{stem}-widget{j}")
            assert not v.failed and not v.errors and not v.blocked, (v.failed, v.errors, v.blocked)
        finally:
            v.close()


def _check_animation_moves(page, anim, shot: Path) -> None:
    anim.scroll_into_view_if_needed()
    img = anim.locator("div.animation img")
    first = img.get_attribute("src")
    anim.screenshot(path=f"{shot}-a.png")
    anim.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_function("([el, s]) => el.src !== s", arg=[img.element_handle(), first], timeout=5000)
    page.wait_for_timeout(1200)
    anim.get_by_role("button", name="Pause").click()
    assert img.get_attribute("src") != first
    anim.screenshot(path=f"{shot}-b.png")


def test_a_mathjax_error_is_found(built, served, browser):
    """The check above sees MathJax's error nodes (04's \\Big[ ... \\](x_s) once rendered as a red error)."""
    v = Visit(browser, served, "index.html")
    try:
        assert not v.page.evaluate(MATH_ERRORS_JS)
        v.page.evaluate(BROKEN_MATH_JS)
        found = v.page.evaluate(MATH_ERRORS_JS)
        assert found and any("Big" in e for e in found), found
    finally:
        v.close()


def test_search_works_offline(built, served, browser):
    v = Visit(browser, served, "search.html?q=divergence")
    try:
        v.page.wait_for_selector("#search-results li, ul.search li", timeout=15000)
        hits = v.page.locator("#search-results li, ul.search li").all_inner_texts()
        assert any("continuous" in h.lower() or "03" in h for h in hits), hits
        v.page.wait_for_load_state("networkidle")
        assert not v.blocked and not v.failed and not v.errors, (v.blocked, v.failed, v.errors)
    finally:
        v.close()

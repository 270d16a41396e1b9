"""Every widget, proven in a real browser: JupyterLab driven by headless Chromium.

Headless tests (tests/test_widgets.py) call a widget's Python callbacks; students
meet the widgets in JupyterLab, where front-end packages, kernel start-up and
rendering can fail in ways those tests never see. This test does what a student
does and looks at what they would see:

1. starts JupyterLab from this environment (``sys.executable -m jupyterlab``) on
   127.0.0.1 with its own free port and token, temporary config, data, runtime,
   settings and workspace folders, the news pop-up and update checks switched off,
   serving a temporary copy of ``lectures/`` (the repository's copy is never touched);
2. opens every widget notebook at once, each in its own Chromium page (Debian's
   ``/usr/bin/chromium``, driven by Playwright; no browser is ever downloaded), the
   slowest first, clicks Run > Run All Cells in each as soon as its kernel is idle, and
   waits until a notebook has really finished by polling the server's ``/api/kernels``
   (not the toolbar): the kernel must have been active since the click, be idle, and
   stay idle with no new activity for a moment; then the page must agree (no ``[*]``
   prompt left, every code cell numbered). The kernels run side by side;
3. for each widget in a notebook, moves its main control with the keyboard and with
   the mouse, and asserts each time that the figure's image source and pixels change
   (after the kernel has settled again); a screenshot of the widget after each move,
   the seconds each redraw took, and a full-page screenshot on failure go to
   ``build/browser/`` (git-ignored) for a person to look at;
4. hammers every widget (the "hammer" case): 30 moves of its controls (keys, clicks, drags) with
   no waiting, then asserts that the image the page shows is not blank, is the kernel widget's last
   image, and equals a fresh render of the controls' final values, which are also what the page's
   controls show. The kernel side is asked through a second client on the kernel's connection file
   (``FigureWidget.instances``; nothing is typed into the notebook);
5. asserts that no cell shows an error (a traceback, anything on stderr, or
   ipywidgets' "Error displaying widget") and that the page raised no JavaScript error.
   Progress bars are left on (no ``COURSE_QUIET``): the page is what a student sees.

``test_hammer_every_widget_class`` does steps 4 and 5 on a notebook of its own, written for the
test, that shows one widget of every class with small inputs; it also measures each widget's
move-to-new-image latency (a key press on a slider until the new image has loaded in the page),
prints the median and 95th percentile per widget as a benchmark (not an assertion) and writes them
to ``build/browser/latency.json``. It runs alone in about a minute:
``pytest tests/test_browser.py -k hammer``.

Which notebooks, which cells (the rule; new notebooks need nothing else): a code
cell of ``lectures/NN_*.ipynb`` shows a widget when ANY of these holds:

- the last statement of the cell is an expression calling something whose name
  ends in ``Widget`` or ``Explorer`` (``PushForwardWidget()``,
  ``utils.explorer.VectorFieldExplorer(u)``): Jupyter displays that value;
- the same cell of ``solutions/NN_*.ipynb`` has a stored output holding an ipywidget
  (mime type ``application/vnd.jupyter.widget-view+json``), e.g. ``display(w)``;
- the cell's metadata says ``{"course": {"widget": true}}`` (for anything else).

Every notebook with at least one such cell is opened. A widget's main control is its
first slider (keyboard: ArrowRight on the focused handle; mouse: drag the handle), else
its first dropdown (keyboard: ArrowDown on the focused list; mouse: click, then pick),
else its first toggle buttons (keyboard: Space on a focused button; mouse: click one).
The first control of each other of these kinds is then moved with the mouse. Note that
JupyterLab's notebook takes ArrowUp/ArrowDown pressed on a focused dropdown (it moves the
cell cursor), so a dropdown as a widget's main control fails here: use a slider or
``ipywidgets.ToggleButtons``.

The server is ended by its process id when the module's tests are done, also on failure.

Where no Chromium or Playwright can be had, the test is skipped saying why; in CI
(environment variable ``CI=true``) it fails instead, so CI never skips it.
``make test`` and ``.ci/run`` install Chromium where it is missing (apt-get).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from tests.browsers import CHROMIUM, CHROMIUM_FLAGS, require_browser
from tools.site.widgets import displayed_widget

ROOT = Path(__file__).resolve().parents[1]
LECTURES, SOLUTIONS = ROOT / "lectures", ROOT / "solutions"
SHOTS = ROOT / "build" / "browser"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SERVER_START_S = 60      # JupyterLab answering /api/status
RUN_ALL_S = 240          # a notebook's cells, run in the browser's kernel
UPDATE_S = 20            # a moved control's new image reaching the page
QUIET_S = 1.5            # the kernel idle, with no new activity, for this long = done
MOVE_QUIET_S = 0.4       # the same, after moving a control


# ----------------------------------------------------------------- which cells show widgets
def _ends_with_widget_call(source: str) -> bool:
    """The cell ends by showing a widget it constructs (tools.site.widgets' rule, shared with the website)."""
    return displayed_widget(source) is not None


def widget_cells(lecture: Path) -> list[int]:
    """Indices of the cells of a lecture notebook that show a widget (the rule in the docstring)."""
    nb = nbformat.read(lecture, as_version=4)
    solution = SOLUTIONS / lecture.name
    sol_cells = nbformat.read(solution, as_version=4).cells if solution.exists() else []
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        stored = sol_cells[i].get("outputs", []) if i < len(sol_cells) else []
        if any("predict" in out.get("metadata", {}).get("course", {}) for out in stored):
            continue  # a Predict (utils.widgets.predict) has no figure: test_predict_records_and_reveals
        if (_ends_with_widget_call(cell.source)
                or any(WIDGET_MIME in out.get("data", {}) for out in stored)
                or cell.metadata.get("course", {}).get("widget") is True):
            found.append(i)
    return found


def widget_notebooks() -> dict[str, list[int]]:
    out = {}
    for p in sorted(LECTURES.glob("[0-9][0-9]_*.ipynb")):
        cells = widget_cells(p)
        if cells:
            out[p.name] = cells
    return out


def test_the_rule_finds_the_welcome_widget():
    found = widget_notebooks()
    assert "00_welcome.ipynb" in found, found
    assert _ends_with_widget_call("from utils.widgets import W\n\nutils.explorer.VectorFieldExplorer(u, lim=2)")
    assert _ends_with_widget_call("PushForwardWidget()")
    assert not _ends_with_widget_call("w = PushForwardWidget()")
    assert not _ends_with_widget_call("PushForwardWidget\nprint(1)")
    assert not _ends_with_widget_call("%%time\nPushForwardWidget()")


# ----------------------------------------------------------------- the browser and the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server started for the test: its URL, token, process and folders."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root = tmp / "lectures"
        shutil.copytree(LECTURES, self.root)
        self.token = uuid.uuid4().hex
        dirs = {name: tmp / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython")}
        for d in dirs.values():
            d.mkdir()
        (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps({"LabApp": {
            "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly"}}))
        (dirs["config"] / "labconfig").mkdir()
        (dirs["config"] / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
        news = dirs["settings"] / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True)
        (news / "notification.jupyterlab-settings").write_text(json.dumps(
            {"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(dirs["config"]), JUPYTER_DATA_DIR=str(dirs["data"]),
                   JUPYTER_RUNTIME_DIR=str(dirs["runtime"]), JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
                   JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]), IPYTHONDIR=str(dirs["ipython"]),
                   JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
        env.pop("COURSE_QUIET", None)  # what a student sees: progress bars and all
        self.runtime_dir = dirs["runtime"]
        self.env, self.log_path = env, tmp / "jupyterlab.log"
        self._log = open(self.log_path, "ab")
        self._start()

    def _start(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
             f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0", "--ServerApp.allow_root=True",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}"],
            cwd=self.tmp, env=self.env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)

    def log_tail(self, n: int = 3000) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-n:]

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self) -> None:
        deadline, retries = time.monotonic() + SERVER_START_S, 2
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if retries and "already in use" in self.log_tail():  # someone took the free port first
                    retries -= 1
                    self._start()
                    continue
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"JupyterLab did not answer within {SERVER_START_S} s:\n{self.log_tail()}")

    def kernel_of(self, notebook: str, timeout: float = 60) -> str:
        """The id of the kernel of an open notebook, once that kernel has started and is idle."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for s in self.api("/api/sessions"):
                if s.get("path", "").endswith(notebook) and s.get("kernel"):
                    if s["kernel"]["execution_state"] == "idle":
                        return s["kernel"]["id"]
            time.sleep(0.2)
        raise TimeoutError(f"no idle kernel for {notebook} within {timeout} s:\n{self.log_tail()}")

    def wait_finished(self, kernel_id: str, since: str, timeout: float = RUN_ALL_S, quiet: float = QUIET_S):
        """Return once the kernel was active after `since`, is idle, and stayed so for `quiet` s."""
        deadline = time.monotonic() + timeout
        quiet_from, last = None, None
        while time.monotonic() < deadline:
            k = self.api(f"/api/kernels/{kernel_id}")
            if k["execution_state"] == "dead":
                raise RuntimeError(f"the kernel died:\n{self.log_tail()}")
            if k["last_activity"] > since and k["execution_state"] == "idle":
                if k["last_activity"] != last:
                    quiet_from, last = time.monotonic(), k["last_activity"]
                elif time.monotonic() - quiet_from >= quiet:
                    return
            else:
                quiet_from, last = None, None
            time.sleep(0.1)
        raise TimeoutError(f"the kernel was still busy after {timeout} s")

    def run_in_kernel(self, kernel_id: str, code: str, timeout: float = 60) -> str:
        """Run code in a notebook's kernel through a second client (its connection file); its output
        goes to this client only, never to the page. Returns what the code printed."""
        from jupyter_client import BlockingKernelClient

        kc = BlockingKernelClient(connection_file=str(self.runtime_dir / f"kernel-{kernel_id}.json"))
        kc.load_connection_file()
        kc.start_channels()
        printed, errors = [], []

        def hook(msg):
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))

        try:
            kc.wait_for_ready(timeout=timeout)
            kc.execute_interactive(code, timeout=timeout, output_hook=hook, store_history=False, allow_stdin=False)
        finally:
            kc.stop_channels()
        if errors:
            raise RuntimeError(f"the kernel raised:\n{errors[0]}")
        return "".join(printed)

    def stop(self) -> None:
        """End the server by its process id (SIGTERM: it shuts its kernels down), then whatever is
        left in its process group (it was started as a session of its own)."""
        try:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=10)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The JupyterLab server, started first so that it boots while the browser starts."""
    require_browser()
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()


RAN_ALL_JS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                           .every(p => !p.textContent.includes('*'))"""


class Opened:
    """A widget notebook open in its own page, after Run All: how it went."""

    def __init__(self, name: str, page, lab: Lab):
        self.name, self.page, self.lab = name, page, lab
        self.js_errors: list[str] = []
        page.on("pageerror", lambda err: self.js_errors.append(str(err)))
        self.kernel = self.since = None
        self.failure: BaseException | None = None
        self.run_s = self.opened_s = self.kernel_s = self.ready_s = float("nan")


def _stored_seconds(name: str) -> float:
    """How long the solution notebook took when it was last executed (0 if unknown)."""
    total = 0.0
    try:
        for cell in nbformat.read(SOLUTIONS / name, as_version=4).cells:
            ex = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
                a, b = (datetime.fromisoformat(ex[k].replace("Z", "+00:00"))
                        for k in ("iopub.execute_input", "shell.execute_reply"))
                total += (b - a).total_seconds()
    except (OSError, ValueError):
        pass
    return total


@pytest.fixture(scope="module")
def ran(lab, browser):
    """Every widget notebook opened in its own page and Run All clicked in each, all at once.

    The kernels run side by side (each test waits for its own), so the whole takes about as
    long as the slowest notebook, and the first widgets are driven while the others run.
    """
    t0 = time.monotonic()
    lab.wait_ready()
    ready_s = time.monotonic() - t0
    SHOTS.mkdir(parents=True, exist_ok=True)
    opened = {}
    for name in sorted(WIDGET_NOTEBOOKS, key=_stored_seconds, reverse=True):  # the slowest starts first
        for old in [*SHOTS.glob(f"{Path(name).stem}-*.png"), *SHOTS.glob(f"{Path(name).stem}-*.json")]:
            old.unlink()
        o = opened[name] = Opened(name, browser.new_page(viewport={"width": 1400, "height": 1000}), lab)
        try:  # all pages load at once; a workspace each, or JupyterLab redirects the second page
            o.page.goto(f"{lab.url}/lab/workspaces/{Path(name).stem}/tree/{name}?token={lab.token}&reset",
                        wait_until="commit")
        except Exception as err:
            o.failure = err
    for o in opened.values():
        o.ready_s = ready_s
        if o.failure is not None:
            continue
        try:
            o.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
            o.opened_s = time.monotonic() - t0
            o.kernel = lab.kernel_of(o.name)
            o.kernel_s = time.monotonic() - t0
            o.since = lab.api(f"/api/kernels/{o.kernel}")["last_activity"]
            o.start = time.monotonic()
            o.page.locator(".lm-MenuBar-item", has_text="Run").click()
            o.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        except Exception as err:
            o.failure = err
    try:
        yield opened
    finally:
        for o in opened.values():
            o.page.close()


# ----------------------------------------------------------------- driving the page
ERROR_OUTPUTS = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"


def _cell(page, index: int):
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)


def _errors_shown(page) -> list[str]:
    shown = [t[:500] for t in page.locator(ERROR_OUTPUTS).all_inner_texts()]
    shown += [t[:500] for t in page.locator(".jp-OutputArea-output").all_inner_texts()
              if "Error displaying widget" in t]
    return shown


def _image_state(img) -> tuple[str, bytes]:
    return img.get_attribute("src") or "", img.screenshot()


HINTS = {
    "dropdown-keyboard": " (JupyterLab's notebook takes ArrowUp/ArrowDown pressed on a focused <select>: it "
                         "moves the cell cursor instead. Give the widget a slider or W.ToggleButtons as its "
                         "main control, as PushForwardWidget does)",
}


def _wait_new_image(page, img, old_src: str, what: str, timeout: float = UPDATE_S) -> float:
    start = time.monotonic()
    handle = img.element_handle()
    try:
        page.wait_for_function(
            "([el, old]) => el.src && el.src !== old && el.complete && el.naturalWidth > 0",
            arg=[handle, old_src], timeout=timeout * 1000)
    except Exception as err:  # playwright's TimeoutError
        hint = next((h for k, h in HINTS.items() if k in what), "")
        raise AssertionError(f"{what}: the figure did not change within {timeout} s{hint}") from err
    return time.monotonic() - start


def _move(o: Opened, widget, img, stem: str, step: str, action) -> float:
    """Do `action`; wait for a new image, then for the kernel to settle; compare; screenshot."""
    page = o.page
    old_src, old_pixels = _image_state(img)
    since = o.lab.api(f"/api/kernels/{o.kernel}")["last_activity"]
    action()
    seconds = _wait_new_image(page, img, old_src, f"{stem} {step}")
    o.lab.wait_finished(o.kernel, since, timeout=UPDATE_S, quiet=MOVE_QUIET_S)  # every redraw sent
    page.wait_for_timeout(100)  # and painted
    new_src, new_pixels = _image_state(img)
    widget.screenshot(path=str(SHOTS / f"{stem}-{step}.png"))
    assert new_src != old_src, f"{stem} {step}: the image source did not change"
    assert new_pixels != old_pixels, f"{stem} {step}: the image's pixels did not change"
    return seconds


def _slider_moves(page, slider):
    handle = slider.locator(".noUi-handle").first

    def keyboard():  # one step up, or down from the top
        at_max = float(handle.get_attribute("aria-valuenow")) >= float(handle.get_attribute("aria-valuemax"))
        handle.focus()
        page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")

    def mouse():  # drag the handle 40 px, towards the side with room
        box, track = handle.bounding_box(), slider.locator(".noUi-target").first.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        to = x + 40 if x + 40 < track["x"] + track["width"] else x - 40
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(to, y, steps=5)
        page.mouse.up()

    return keyboard, mouse


def _dropdown_moves(page, select):
    def keyboard():  # what a student presses; JupyterLab's notebook takes it if the widget lets it
        select.focus()
        page.keyboard.press("ArrowDown")

    def mouse():
        current = select.input_value()
        other = next(o for o in select.locator("option").all_text_contents() if o != current)
        select.click()  # opens the browser's own list, which a page cannot click into: pick from it
        select.select_option(other)

    return keyboard, mouse


def _buttons_moves(page, group):
    def keyboard():
        group.locator("button:not(.mod-active)").first.focus()
        page.keyboard.press("Space")

    def mouse():
        group.locator("button:not(.mod-active)").last.click()

    return keyboard, mouse


CONTROLS = {  # kind -> (selector of one control, how to move it)
    "slider": (".widget-slider", _slider_moves),
    "dropdown": (".widget-dropdown select", _dropdown_moves),
    "buttons": (".widget-toggle-buttons", _buttons_moves),
}


def _drive_widget(o: Opened, widget, stem: str) -> dict[str, float]:
    """Main control (first slider, else first dropdown, else first buttons) by keyboard and mouse;
    the first control of each other kind by mouse."""
    page, img = o.page, widget.locator("img").first
    img.wait_for(state="visible", timeout=UPDATE_S * 1000)
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(SHOTS / f"{stem}-0-initial.png"))
    found = {kind: widget.locator(sel).first for kind, (sel, _) in CONTROLS.items()
             if widget.locator(sel).count()}
    assert found, f"{stem}: the widget has no slider, dropdown or toggle buttons"
    timings, n = {}, 0
    for i, (kind, control) in enumerate(found.items()):
        keyboard, mouse = CONTROLS[kind][1](page, control)
        moves = [("keyboard", keyboard), ("mouse", mouse)] if i == 0 else [("mouse", mouse)]
        for how, action in moves:
            n += 1
            step = f"{n}-{kind}-{how}"
            timings[step] = round(_move(o, widget, img, stem, step, action), 2)
    return timings


WIDGET_NOTEBOOKS = widget_notebooks()


@pytest.mark.parametrize("notebook", sorted(WIDGET_NOTEBOOKS))
def test_widgets_work_in_jupyterlab(ran, notebook):
    o = ran[notebook]
    page, stem = o.page, Path(notebook).stem
    try:
        if o.failure is not None:
            raise o.failure
        o.lab.wait_finished(o.kernel, o.since)  # the others may still be running
        page.wait_for_function(RAN_ALL_JS, timeout=RUN_ALL_S * 1000)  # the page agrees: no "[*]" left
        o.run_s = time.monotonic() - o.start
        errors = _errors_shown(page)
        assert not errors, f"{notebook}: cells show errors after Run All:\n" + "\n---\n".join(errors)
        prompts = page.locator(".jp-Notebook .jp-Cell").evaluate_all(
            "cells => cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '')")
        code = [i for i, c in enumerate(nbformat.read(LECTURES / notebook, 4).cells)
                if c.cell_type == "code" and c.source.strip()]
        not_run = [i for i in code if not any(ch.isdigit() for ch in prompts[i])]
        assert len(prompts) == len(nbformat.read(LECTURES / notebook, 4).cells), "the page shows other cells"
        assert not not_run, f"{notebook}: Run All did not run cells {not_run}"
        timings = {}
        for index in WIDGET_NOTEBOOKS[notebook]:
            widget = _cell(page, index).locator(".jp-OutputArea-output .widget-vbox").first
            where = f"{stem}-cell{index:02d}"
            try:
                widget.wait_for(state="visible", timeout=UPDATE_S * 1000)
            except Exception as err:
                shown = _cell(page, index).locator(".jp-OutputArea").inner_text()
                raise AssertionError(f"{notebook} cell {index}: no widget rendered; the output shows "
                                     f"{shown[:300]!r}") from err
            timings[where] = _drive_widget(o, widget, where)
            timings[where]["latency"] = _latency(o, widget, where)
            _hammer(o, widget, where)
        errors = _errors_shown(page)
        assert not errors, f"{notebook}: cells show errors after moving the widgets:\n" + "\n---\n".join(errors)
        assert not o.js_errors, f"{notebook}: the page raised JavaScript errors: {o.js_errors}"
        summary = {"seconds_after_browser_start_to": {"server_ready": round(o.ready_s, 1),
                   "page_shown": round(o.opened_s, 1), "kernel_idle": round(o.kernel_s, 1)},
                   "run_all_s": round(o.run_s, 1), "seconds_to_redraw": timings}
        (SHOTS / f"{stem}-timings.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(f"{notebook}: {json.dumps(summary)}")
    except BaseException:
        page.screenshot(path=str(SHOTS / f"{stem}-failure.png"), full_page=True)
        raise


# ----------------------------------------------------------------- the hammer: fast moves, no waiting
HAMMER_MOVES = 30
LATENCY_MOVES = 12
LATENCY: dict[str, dict] = {}

KERNEL_STATE = """
import hashlib as _h, json as _j
import ipywidgets as _W
from utils.widgets import FigureWidget as _FW

def _readout(c):
    if isinstance(c, (_W.ToggleButtons, _W.SelectionSlider, _W.Dropdown)):
        return str(c.label)
    if isinstance(c, _W.Checkbox):
        return str(bool(c.value))
    if isinstance(c, _W.FloatSlider):  # the page rounds halves up, Python to even: compare the number
        return [c.value, int(c.readout_format.strip(".f") or 2)]
    return str(c.value)

_out = []
for _w in list(_FW.instances):
    if _w._closed:
        continue
    _done = _w.wait(60)
    _img = bytes(_w.image.value)
    _out.append({"type": type(_w).__name__, "done": _done, "image": _h.sha256(_img).hexdigest(),
                 "fresh": _h.sha256(_w.fresh_png()).hexdigest(), "readouts": [_readout(c) for c in _w.controls],
                 "error": repr(_w.error) if _w.error else None, "renders": _w.renders})
print(_j.dumps(_out))
"""

PAGE_IMAGE_JS = """async (el) => {
    const blob = await (await fetch(el.src)).blob();
    return await new Promise(ok => { const r = new FileReader(); r.onload = () => ok(r.result); r.readAsDataURL(blob); });
}"""

PAGE_READOUTS_JS = """(box) => [...box.children].map(c => {
    if (c.classList.contains('widget-toggle-buttons')) {
        const on = c.querySelector('button.mod-active'); return on ? on.textContent.trim() : '';
    }
    if (c.classList.contains('widget-checkbox')) return String(c.querySelector('input').checked ? 'True' : 'False');
    const r = c.querySelector('.widget-readout'); return r ? r.textContent.trim() : '';
})"""


def _page_image(img) -> bytes:
    import base64

    data_url = img.evaluate(PAGE_IMAGE_JS)
    return base64.b64decode(data_url.split(",", 1)[1])


def _not_blank(png: bytes) -> bool:
    import io

    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return a.std() > 10 and (a < 200).mean() > 0.02


def _hammer_actions(page, widget, rng):
    """Every control of the widget, with the ways a student moves it."""
    actions = []
    for slider in widget.locator(".widget-slider").all():
        keyboard, mouse = _slider_moves(page, slider)
        handle = slider.locator(".noUi-handle").first

        def key(handle=handle):
            handle.focus()
            page.keyboard.press(["ArrowRight", "ArrowLeft"][int(rng.integers(2))])

        actions += [key, key, key, mouse]
    for group in widget.locator(".widget-toggle-buttons").all():
        actions.append(lambda group=group: group.locator("button:not(.mod-active)").first.click())
    for box in widget.locator(".widget-checkbox input").all():
        actions.append(lambda box=box: box.click())
    return actions


def _kernel_widgets(o: Opened) -> list[dict]:
    return json.loads(o.lab.run_in_kernel(o.kernel, KERNEL_STATE).strip().splitlines()[-1])


def _hammer(o: Opened, widget, where: str) -> None:
    """30 moves with no waiting; then the page's image must be the kernel's last image and a fresh render
    of the final values, not blank, and the page's controls must show those values."""
    import hashlib

    import numpy as np

    page, img = o.page, widget.locator("img").first
    rng = np.random.default_rng(sum(map(ord, where)))
    actions = _hammer_actions(page, widget, rng)
    since = o.lab.api(f"/api/kernels/{o.kernel}")["last_activity"]
    for k in range(HAMMER_MOVES):
        actions[int(rng.integers(len(actions)))]()
    o.lab.wait_finished(o.kernel, since, timeout=UPDATE_S * 3, quiet=MOVE_QUIET_S)  # every move received
    deadline, shown, state = time.monotonic() + UPDATE_S, None, []
    while time.monotonic() < deadline:
        state = _kernel_widgets(o)  # waits for the redraws in the kernel
        shown = hashlib.sha256(_page_image(img)).hexdigest()
        if any(w["image"] == shown for w in state):
            break
        page.wait_for_timeout(200)
    widget.screenshot(path=str(SHOTS / f"{where}-hammer.png"))
    match = [w for w in state if w["image"] == shown]
    assert match, f"{where}: after {HAMMER_MOVES} fast moves the page shows no kernel widget's last image"
    w = match[0]
    assert w["done"] and w["error"] is None, f"{where}: {w}"
    assert w["fresh"] == w["image"], f"{where}: the final image is not a fresh render of the final values {w}"
    assert _not_blank(_page_image(img)), f"{where}: the final image is blank"
    readouts = widget.locator(".widget-hbox").first.evaluate(PAGE_READOUTS_JS)
    assert len(readouts) == len(w["readouts"]) and all(
        abs(float(shown) - want[0]) <= 0.5 * 10 ** -want[1] + 1e-9 if isinstance(want, list) else shown == want
        for shown, want in zip(readouts, w["readouts"])), \
        f"{where}: the page's controls show {readouts}, the kernel has {w['readouts']}"


def _latency(o: Opened, widget, where: str) -> dict:
    """Seconds from a key press on a slider to the new image loaded in the page, for each slider in turn."""
    page, img = o.page, widget.locator("img").first
    sliders = widget.locator(".widget-slider").all()
    seconds = []
    if not sliders:  # nothing to press a key on
        return {}
    for k in range(LATENCY_MOVES):
        handle = sliders[k % len(sliders)].locator(".noUi-handle").first
        for _ in range(8):  # a step can leave the figure as it was (a time between two stored frames): press on
            lo, hi, now = (float(handle.get_attribute(f"aria-value{a}")) for a in ("min", "max", "now"))
            key = "ArrowLeft" if now >= hi or ((k // len(sliders)) % 2 and now > lo) else "ArrowRight"
            old = img.get_attribute("src") or ""
            handle.focus()
            page.keyboard.press(key)
            try:
                seconds.append(_wait_new_image(page, img, old, f"{where} latency", timeout=2.0))
                break
            except AssertionError:
                continue
        page.wait_for_timeout(150)
    seconds.sort()
    assert seconds, f"{where}: no key press on a slider changed the image"
    result = {"moves": len(seconds), "median_ms": round(1000 * seconds[len(seconds) // 2]),
              "p95_ms": round(1000 * seconds[min(len(seconds) - 1, round(0.95 * (len(seconds) - 1)))]),
              "max_ms": round(1000 * seconds[-1])}
    LATENCY[where] = result
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "latency.json").write_text(json.dumps(LATENCY, indent=1) + "\n")
    return result


HAMMER_CELLS = [
    "import math\nimport torch\nfrom utils.sde import VPSDE\nfrom utils.mixtures import eight_gaussians_mixture\n"
    "from utils.widgets import PathExplorer, PushForwardWidget, SDEvsODEWidget, VectorFieldExplorer",
    "PushForwardWidget()",
    "VectorFieldExplorer(lambda x, t: torch.stack([-x[:, 1], x[:, 0]], 1) - 0.3 * x, lim=3.0, title='spiral')",
    "VectorFieldExplorer(lambda x, t: -x, title='contraction',  # x_t = x_0 e^{-t}: N(0, e^{-2t} I)\n"
    "                    density=lambda x, t: -0.5 * (x**2).sum(1) * torch.exp(2 * t) + 2 * t - math.log(2 * math.pi))",
    "vp, target = VPSDE(), eight_gaussians_mixture()\n"
    "SDEvsODEWidget(vp, target.score_fn(vp), log_prob=target.log_prob_fn(vp), n=200, seed=0)",
    "PathExplorer()",
    "from utils.references import load_reference\nfrom utils.widgets import TokenByTokenWidget\n"
    "TokenByTokenWidget(load_reference('09_mask')[0])  # notebook 09's converged model: a film is 20 steps of 8 digits",
    "from utils.datasets import moons\nfrom utils.fewstep_references import NAMES, SAMPLERS\n"
    "from utils.references import load_reference\nfrom utils.widgets import FewStepWidget\n"
    "FewStepWidget({n: SAMPLERS[n](load_reference(k)[0]) for n, k in NAMES.items()},  # notebook 08's converged models\n"
    "              torch.randn(500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64), moons(500).double())",
]


HAMMER_NAMES = [None, "PushForwardWidget", "VectorFieldExplorer-one-panel", "VectorFieldExplorer-density",
                "SDEvsODEWidget", "PathExplorer", "TokenByTokenWidget", "FewStepWidget"]


@pytest.fixture(scope="module")
def hammer_page(lab, browser):
    """A notebook of one widget of every class, opened and run in its own page."""
    lab.wait_ready()
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = "hammer.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in HAMMER_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / name)
    o = Opened(name, browser.new_page(viewport={"width": 1400, "height": 1000}), lab)
    try:
        o.page.goto(f"{lab.url}/lab/workspaces/hammer/tree/{name}?token={lab.token}&reset", wait_until="commit")
        o.page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        o.kernel = lab.kernel_of(name)
        o.since = lab.api(f"/api/kernels/{o.kernel}")["last_activity"]
        o.start = time.monotonic()
        o.page.locator(".lm-MenuBar-item", has_text="Run").click()
        o.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        lab.wait_finished(o.kernel, o.since)
        o.page.wait_for_function(RAN_ALL_JS, timeout=RUN_ALL_S * 1000)
        o.run_s = time.monotonic() - o.start
    except Exception as err:
        o.failure = err
    try:
        yield o
    finally:
        o.page.close()


def test_hammer_every_widget_class(hammer_page):
    o = hammer_page
    page = o.page
    try:
        if o.failure is not None:
            raise o.failure
        errors = _errors_shown(page)
        assert not errors, "the hammer notebook shows errors:\n" + "\n---\n".join(errors)
        report = {}
        for index in range(1, len(HAMMER_CELLS)):
            widget = _cell(page, index).locator(".jp-OutputArea-output .widget-vbox").first
            widget.wait_for(state="visible", timeout=UPDATE_S * 1000)
            widget.scroll_into_view_if_needed()
            where = f"hammer-cell{index:02d}-{HAMMER_NAMES[index]}"
            report[where] = _latency(o, widget, where)
            _hammer(o, widget, where)
        errors = _errors_shown(page)
        assert not errors, "cells show errors after the hammer:\n" + "\n---\n".join(errors)
        assert not o.js_errors, f"the page raised JavaScript errors: {o.js_errors}"
        print("move-to-new-image latency (benchmark; target on an idle machine: median <= 300 ms, p95 <= 700 ms):")
        for where, r in report.items():
            print(f"  {where:45s} median {r['median_ms']:5d} ms   p95 {r['p95_ms']:5d} ms   ({r['moves']} moves)")
    except BaseException:
        page.screenshot(path=str(SHOTS / "hammer-failure.png"), full_page=True)
        raise


# ----------------------------------------------------------------- save, shut down, reopen (walk-through 3, M2)
REOPEN_NB = "reopen_widget.ipynb"
REOPEN_CELLS = ["import utils\nfrom utils.widgets import PushForwardWidget", "PushForwardWidget(n=2000)"]
DIRTY_TAB = ".lm-TabBar-tab.jp-mod-dirty"


def _dirty_after(page, seconds: float) -> bool:
    """Whether the notebook's tab turns "modified" within ``seconds`` of doing nothing."""
    try:
        page.locator(DIRTY_TAB).first.wait_for(state="attached", timeout=seconds * 1000)
        return True
    except Exception:  # playwright's TimeoutError: still clean
        return False


def test_a_saved_widget_notebook_reopens_clean_and_says_to_rerun(lab, browser):
    """Run a widget, move it, save, shut the kernel down, reopen: the output shows the last image and
    "run this cell again" (or live controls), the notebook is not modified by opening it, and closing
    it asks nothing. Before: a restored, disconnected widget whose slider moved nothing, and the
    notebook turned modified about 4 s after opening (ipywidgets restores the saved models)."""
    from utils.widgets.saved import RERUN

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in REOPEN_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / REOPEN_NB)
    lab.wait_ready()
    failed: list[str] = []  # requests the page made that failed (the /lsp/status 404 once)

    def new_page():
        p = browser.new_page(viewport={"width": 1400, "height": 1000})
        p.on("response", lambda r: failed.append(f"{r.url.split('?')[0]} (HTTP {r.status})") if r.status >= 400
             else None)
        return p

    page = new_page()
    url = f"{lab.url}/lab/workspaces/reopen/tree/{REOPEN_NB}?token={lab.token}&reset"
    try:
        page.goto(url, wait_until="commit")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        lab.kernel_of(REOPEN_NB)
        page.locator(".lm-MenuBar-item", has_text="Run").click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        widget = _cell(page, 1).locator(".jp-OutputArea-output .widget-vbox").first
        widget.wait_for(state="visible", timeout=RUN_ALL_S * 1000)
        handle = widget.locator(".widget-slider .noUi-handle, .widget-slider .slider-handle, .ui-slider-handle").first
        handle.focus()
        page.keyboard.press("ArrowRight")
        time.sleep(1.0)
        page.keyboard.press("Control+s")
        page.wait_for_function(f"() => !document.querySelector('{DIRTY_TAB}')", timeout=20_000)
        for s in lab.api("/api/sessions"):  # the kernel shut down, as a student's "Shut Down Kernel"
            if s.get("path", "").endswith(REOPEN_NB):
                lab.api(f"/api/sessions/{s['id']}", method="DELETE")
        page.close()

        page = new_page()
        page.goto(url, wait_until="commit")
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        lab.kernel_of(REOPEN_NB)
        output = _cell(page, 1).locator(".jp-OutputArea-output").first
        output.wait_for(state="visible", timeout=20_000)
        assert not _dirty_after(page, 8.0), "opening the saved notebook marked it modified (no edit was made)"
        text = _cell(page, 1).inner_text()
        assert "Error displaying widget" not in text and "model not found" not in text, text
        live = _cell(page, 1).locator(".widget-vbox").count() > 0 and not page.locator(
            ".jupyter-widgets-disconnected").count()
        if not live:  # a visible re-run state; any controls shown are disabled
            assert RERUN in text, f"the reopened widget does not say '{RERUN}': {text!r}"
            controls = _cell(page, 1).locator(".widget-slider, .widget-toggle-buttons")
            for k in range(controls.count()):
                style = controls.nth(k).evaluate("el => getComputedStyle(el.closest('.course-controls') || el)"
                                                 ".pointerEvents")
                assert style == "none", "a control of the disconnected widget still takes input"
            assert _cell(page, 1).locator(".jp-OutputArea-output img").count() >= 1, "the last image is gone"
        page.locator(".lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").first.click()
        time.sleep(1.5)
        assert not page.locator(".jp-Dialog").count(), "closing the unedited notebook asked a question"
        assert not failed, f"the page's requests failed: {failed}"
    except BaseException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "reopen-failure.png"), full_page=True)
        raise
    finally:
        page.close()


# ----------------------------------------------------------------- predict, then run (issue 21)
PREDICT_NB = "predict.ipynb"
PREDICT_CELLS = ["from utils.widgets import Predict, reveal",
                 "Predict('browser-test', 'Which side?', choices=['left', 'right'])",
                 "numbers = [2.0, 1.0]\nreveal('browser-test', actual='left' if numbers[0] < numbers[1] else 'right')"]


def _run_all(page, lab, name: str) -> None:
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
    kernel = lab.kernel_of(name)
    since = lab.api(f"/api/kernels/{kernel}")["last_activity"]
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    lab.wait_finished(kernel, since)
    page.wait_for_function(RAN_ALL_JS, timeout=RUN_ALL_S * 1000)


def test_predict_records_and_reveals(lab, browser):
    """A student picks an answer and presses 'Record my prediction'; the reveal cell, run again, shows it
    beside the run's answer. The kernel shut down and the notebook reopened and run again: the Predict
    cell shows the earlier answer, and the reveal still finds it (kept in the notebook's folder)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in PREDICT_CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, lab.root / PREDICT_NB)
    lab.wait_ready()
    url = f"{lab.url}/lab/workspaces/predict/tree/{PREDICT_NB}?token={lab.token}&reset"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url, wait_until="commit")
        _run_all(page, lab, PREDICT_NB)
        assert "No prediction recorded" in _cell(page, 2).inner_text()
        widget = _cell(page, 1).locator(".course-predict").first
        widget.wait_for(state="visible", timeout=UPDATE_S * 1000)
        widget.locator(".widget-toggle-buttons button", has_text="left").click()
        widget.get_by_role("button", name="Record my prediction").click()
        page.wait_for_function("() => document.querySelector('.course-predict-recorded')"
                               " && document.querySelector('.course-predict-recorded').textContent.includes('left')",
                               timeout=UPDATE_S * 1000)
        _cell(page, 2).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-Cell')].some(c => c.innerText.includes('Your prediction: left'))",
            timeout=UPDATE_S * 1000)
        text = _cell(page, 2).inner_text()
        assert "Your prediction: left; the run says otherwise" in text and "The run's answer: right." in text, text
        assert (lab.root / ".course-predictions.json").exists()
        page.keyboard.press("Control+s")
        for s in lab.api("/api/sessions"):  # the kernel shut down, then the notebook reopened and run again
            if s.get("path", "").endswith(PREDICT_NB):
                lab.api(f"/api/sessions/{s['id']}", method="DELETE")
        page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="commit")
        _run_all(page, lab, PREDICT_NB)
        assert "Recorded earlier: left" in _cell(page, 1).inner_text()
        assert "Your prediction: left" in _cell(page, 2).inner_text()
        assert not _errors_shown(page), _errors_shown(page)
    except BaseException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "predict-failure.png"), full_page=True)
        raise
    finally:
        page.close()

"""A quiet JupyterLab for students (run by ``make lab``'s set-up, in a blink).

Writes the same files that ``jupyter labextension disable --level=sys_prefix``
and ``jupyter server extension disable --sys-prefix`` write, into this
environment's ``etc/jupyter``, without starting Jupyter once per extension
(that took a minute):

- nbgrader's menus and server extensions are off (they are instructor tools,
  installed by ``make test`` and the instructor targets);
- the news pop-up (the announcements plugin) is off;
- the language-server extension, which logs a long "Skipped non-installed
  server(s)" line and serves no language server here, is off;
- widget state is saved with the notebook (``share/jupyter/lab/settings/overrides.json``),
  so a saved notebook reopens showing its widgets' last state, not "model not found";
- on every save, the server's pre-save hook (``etc/jupyter/jupyter_server_config.py``, loading
  ``utils/widgets/saved.py`` alone: no torch in the server) turns each course widget's output into
  its last image and "run this cell again to use its controls", and drops the widget state, so a
  reopened notebook shows no dead controls and is not marked modified by opening it;
- the language-server front-end plugin is off with its server (it asked for ``/lsp/status``: a 404);
- the kernels log errors only (``etc/ipython/ipython_kernel_config.py``, read by every kernel this
  environment's Python starts: JupyterLab's, nbclient's, nbval's), which silences ipykernel's warning,
  once a kernel, that TCP is unencrypted (walk-through 3, m6).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

LAB_DISABLED = ["@jupyter/nbgrader", "@jupyterlab/apputils-extension:announcements",
                "@jupyterlab/lsp-extension"]
SERVER_DISABLED = [
    "nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.validate_assignment",
    "nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.course_list", "jupyter_lsp",
]


def _update_json(path: Path, update) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    update(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


SNAPSHOT_HOOK = Path(__file__).resolve().parents[2] / "utils" / "widgets" / "saved.py"
SERVER_CONFIG_PY = """# Written by tools.labconfig (make lab's set-up): the course widgets' snapshot on save.
# utils/widgets/saved.py is loaded alone (standard library only): the server never imports torch.
import importlib.util as _util

_spec = _util.spec_from_file_location("course_widget_snapshot", {hook!r})
_snapshot = _util.module_from_spec(_spec)
_spec.loader.exec_module(_snapshot)
c.ContentsManager.pre_save_hook = _snapshot.pre_save_hook
"""

KERNEL_CONFIG_PY = """# Written by tools.course.labconfig (make lab's set-up).
# The course's kernels run on this machine and talk to JupyterLab, nbclient or nbval over 127.0.0.1 only;
# ipykernel's warning that TCP is unencrypted ("susceptible to eavesdropping"), printed once a kernel, is
# noise there. So the kernel logs errors only; what cells print is not affected.
c.IPKernelApp.log_level = "ERROR"
"""

SETTINGS_OVERRIDES = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def write(prefix: Path = Path(sys.prefix)) -> list[Path]:
    etc = prefix / "etc" / "jupyter"
    page = etc / "labconfig" / "page_config.json"

    def lab(data):
        for name in LAB_DISABLED:
            data.setdefault("disabledExtensions", {})[name] = True

    _update_json(page, lab)
    overrides = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    _update_json(overrides, lambda data: [data.setdefault(k, {}).update(v) for k, v in SETTINGS_OVERRIDES.items()])
    hook = etc / "jupyter_server_config.py"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(SERVER_CONFIG_PY.format(hook=str(SNAPSHOT_HOOK)))
    kernel = prefix / "etc" / "ipython" / "ipython_kernel_config.py"
    kernel.parent.mkdir(parents=True, exist_ok=True)
    kernel.write_text(KERNEL_CONFIG_PY)
    written = [page, overrides, hook, kernel]
    for name in SERVER_DISABLED:
        path = etc / "jupyter_server_config.d" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ServerApp": {"jpserver_extensions": {name: False}}}, indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    write()

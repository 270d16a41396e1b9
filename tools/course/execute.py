"""Execute notebooks top to bottom in a fresh kernel, in place (``make solutions``).

Used to refresh the stored outputs of ``solutions/``; also imported by the
benchmark. Progress bars are silenced (COURSE_QUIET=1) so outputs compare.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def run(nb: nbformat.NotebookNode, folder: Path, timeout: int = 600) -> float:
    """Execute a notebook object in a new kernel started in `folder`; return the seconds taken."""
    os.environ.setdefault("COURSE_QUIET", "1")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(folder)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def execute(path: Path, timeout: int = 600, write: bool = True) -> tuple[nbformat.NotebookNode, float]:
    """Run a notebook in a new kernel from its own folder; return it and the seconds taken."""
    nb = nbformat.read(path, as_version=4)
    seconds = run(nb, Path(path).parent, timeout)
    if write:
        nbformat.write(nb, path)
    return nb, seconds


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        _, s = execute(Path(arg))
        print(f"executed {arg} in {s:.1f} s")

"""The kernel client: nbclient with a cap on the output kept a cell (a guard against output floods)."""
from __future__ import annotations

from collections import Counter

import nbformat
from nbclient import NotebookClient


class _Client(NotebookClient):
    """nbclient with a cap on the output kept a cell (a guard against output floods)."""

    def __init__(self, *args, max_output_bytes: int = 2_000_000, **kwargs):
        super().__init__(*args, **kwargs)
        self._max_out = max_output_bytes
        self._out_bytes: Counter = Counter()
        self.truncated: set[int] = set()
        self.timed_out = False

    async def _async_handle_timeout(self, timeout, cell=None):
        # nbclient interrupts the kernel and, with error_on_timeout, ends the cell as an error
        # while still collecting (then cancelling) its outputs: no stray reader is left behind
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            content["traceback"] = content.get("traceback", [])[-20:]
            return super().output(outs, msg, display_id, cell_index)
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        self._out_bytes[cell_index] += size
        if self._out_bytes[cell_index] > self._max_out:
            if cell_index not in self.truncated:
                self.truncated.add(cell_index)
                outs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"\n[grader: output truncated after {self._max_out} bytes]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)

"""The child process of the few-step challenge (``tools.grading.challenge``): one student's submission.

Started by the grader as ``python -m tools.grading.challenge_sandbox`` in a fresh copy of the
submission folder, with a memory cap, no GPU, one thread and a minimal environment. It reads one
request (a JSON line on stdin: the noise batch z, the NFE budgets, the limits) and writes JSON
lines on a private copy of its stdout (fd 1 then points at stderr, so the student's prints cannot
mix with them): ``ready``, ``built`` (or ``error``), one ``sample`` a budget, ``done``.

For each budget k the student's ``sample(net, z, k)`` runs three times, with torch's generators
seeded alike: once as it is, once again (it must give the same samples: ``reproducible``), and
once with every output of the network moved by a fixed random offset (``sensitivity``: how far
the samples move, per unit of offset; samples that do not move do not come from the network).
``net`` is a :class:`CountingNet` around the student's module: every call counts its rows
(points) divided by the batch size N, so a call on a stack of k copies of z counts k
evaluations; calls under ``torch.vmap`` are refused (they would hide the batch).

An audit hook (PEP 578) refuses, once the student's code runs, opening or listing files outside
the submission copy, the Python installation and the course's ``utils/``; subprocesses, signals,
sockets and ctypes; and, while sampling, the course's data module and ``sklearn.datasets`` (the
samples must come from the network). Every refusal is reported to the grader, which voids the
submission. What this does not stop is listed in INSTRUCTORS.md.
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback

PERTURB_SCALE = 0.5  # the offset added to each network output in the perturbed run (standard deviation)
DENIED_WHILE_SAMPLING = ("utils.datasets", "sklearn.datasets")
CHANGES = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.link",
           "os.symlink", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree")
FORBIDDEN_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                    "os.forkpty", "os.kill", "os.killpg", "signal.pthread_kill", "socket.", "ctypes.dlopen",
                    "ctypes.dlsym", "ctypes.cdata", "sys.remote_exec", "pty.spawn", "webbrowser.open")


class ContractError(RuntimeError):
    """The submission broke the challenge's contract (the message says how); ``kind`` is its status."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


class Sandbox:
    """The audit hook's state: where the student's code may read and write, and what it was refused."""

    def __init__(self, work: str, read_roots: list[str]):
        self.work = os.path.realpath(work)
        self.read_roots = [os.path.realpath(r) for r in read_roots]
        self.listable = set()  # directories on sys.path: the import system lists them
        self.active = False  # True while student code runs
        self.sampling = False
        self.denied: list[str] = []
        self.depth = 0  # > 0 inside a counted call of the network
        self.uncounted = 0  # modules called around the counter while sampling

    def module_hook(self, module, args) -> None:
        """torch's global forward pre-hook: while sampling, every nn.Module call must be inside ``net``'s."""
        if self.sampling and self.depth == 0:
            self.uncounted += 1
            raise ContractError(f"a network ({type(module).__name__}) was called around the counter while sampling: "
                                "every evaluation goes through `net`", "over budget")

    def _inside(self, path: str, roots) -> bool:
        return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)

    def deny(self, what: str):
        if len(self.denied) < 20:
            self.denied.append(what)
        raise PermissionError(f"challenge sandbox: {what} is not allowed")

    def hook(self, event: str, args) -> None:
        if not self.active:
            return
        if event == "open":
            path, mode = args[0], args[1]
            if not isinstance(path, (str, bytes, os.PathLike)):
                self.deny(f"opening file descriptor {path!r}")
            p = os.path.realpath(os.fsdecode(path))
            writing = isinstance(mode, str) and any(c in mode for c in "wax+")
            if isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                writing = True
            if self._inside(p, [self.work]) or (not writing and self._inside(p, self.read_roots)):
                return
            if p in ("/dev/null", "/dev/urandom") or p.startswith("/proc/self/") and not writing:
                return
            self.deny(f"{'writing' if writing else 'reading'} {p}")
        elif event in ("os.listdir", "os.scandir"):
            p = os.path.realpath(os.fsdecode(args[0] if args[0] is not None else "."))
            if p in self.listable or self._inside(p, [self.work, *self.read_roots]):
                return
            self.deny(f"listing {p}")
        elif event in CHANGES:
            for a in args:
                if isinstance(a, (str, bytes, os.PathLike)):
                    p = os.path.realpath(os.fsdecode(a))
                    if not self._inside(p, [self.work]):
                        self.deny(f"{event} on {p}")
        elif event == "import" and self.sampling and str(args[0]).startswith(DENIED_WHILE_SAMPLING):
            self.deny(f"importing {args[0]} while sampling (the samples must come from the network)")
        elif event.startswith(FORBIDDEN_EVENTS):
            self.deny(f"{event}")

    def guarded(self, fn, name: str):
        def guard(*a, **k):
            if self.sampling:
                self.deny(f"calling {name} while sampling (the samples must come from the network)")
            return fn(*a, **k)
        guard.__name__, guard.__doc__ = getattr(fn, "__name__", name), getattr(fn, "__doc__", None)
        return guard


class CountingNet:
    """The network as the student's ``sample`` sees it: calls go to the student's module and are counted.

    ``evaluations``: rows seen over the batch size N (one call on z counts 1, on half of z 0.5, on
    a stack of two copies of z 2); a call's rows are the most of the points' rows, the leading size
    of the other tensor arguments (times t of length 2N broadcast against N points count 2) and of
    the outputs. The first argument (or ``x=``) must be a tensor of points whose last axis has the
    data's dimension. ``offset``: a seed; then every tensor output is moved by
    ``PERTURB_SCALE`` times a fixed standard normal offset (the same for every call of one shape).
    """

    def __init__(self, module, n: int, dim: int, offset: int | None = None, sandbox: Sandbox | None = None):
        self._module, self._n, self._dim, self._offset, self._sb = module, n, dim, offset, sandbox
        self.evaluations, self.calls = 0.0, 0

    def __call__(self, *args, **kwargs):
        import torch

        x = args[0] if args else kwargs.get("x")
        if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] != self._dim:
            raise ContractError(f"the network's first argument must be the points, a tensor (..., {self._dim}); "
                                f"got {type(x).__name__}{tuple(x.shape) if isinstance(x, torch.Tensor) else ''}")
        if torch._C._functorch.is_batchedtensor(x):
            raise ContractError("the network was called under torch.vmap: call it on a batch instead "
                                "(each row counts 1/N of an evaluation)")
        self.calls += 1
        rows = max([x.numel() // self._dim] + [a.shape[0] for a in (*args, *kwargs.values())
                                                if isinstance(a, torch.Tensor) and a is not x and a.dim() >= 1])
        if self._sb is not None:
            self._sb.depth += 1
        try:
            out = self._module(*args, **kwargs)
        finally:
            if self._sb is not None:
                self._sb.depth -= 1
        outs = out if isinstance(out, (tuple, list)) else (out,)
        rows = max([rows] + [o.shape[0] for o in outs if isinstance(o, torch.Tensor) and o.dim() >= 1])
        self.evaluations += rows / self._n  # the largest batch among the points, the other inputs and outputs
        return out if self._offset is None else self._move(out)

    def forward(self, *args, **kwargs):  # net.forward(x, t) is counted like net(x, t)
        return self(*args, **kwargs)

    def _move(self, out):
        import torch

        if isinstance(out, torch.Tensor) and out.is_floating_point():
            g = torch.Generator().manual_seed(self._offset)
            return out + PERTURB_SCALE * torch.randn(out.shape, generator=g).to(out.dtype)
        if isinstance(out, (tuple, list)):
            return type(out)(self._move(o) for o in out)
        return out

    def __getattr__(self, name):  # net.eval(), net.parameters() ... reach the student's module
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._module, name)


def _check_samples(x, z):
    import torch

    if not isinstance(x, torch.Tensor):
        raise ContractError(f"sample() must return a torch.Tensor of shape {tuple(z.shape)}; got {type(x).__name__}",
                            "bad output")
    if tuple(x.shape) != tuple(z.shape):
        raise ContractError(f"sample() returned shape {tuple(x.shape)}; the noise has shape {tuple(z.shape)}: "
                            "return one sample a row of z", "bad output")
    x = x.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise ContractError(f"sample() returned {int((~torch.isfinite(x)).any(1).sum())} rows with NaN or inf",
                            "bad output")
    return x


def _run(sb: Sandbox, sample, module, z, k: int, seed: int, offset: int | None):
    import numpy
    import torch

    net = CountingNet(module, z.shape[0], z.shape[1], offset, sb)
    torch.manual_seed(seed)
    random.seed(seed)
    numpy.random.seed(seed % 2 ** 32)
    sb.sampling, sb.active = True, True
    try:
        x = sample(net, z.clone(), k)
    finally:
        sb.sampling, sb.active = False, False
    return _check_samples(x, z), net


def _guard_data(sb: Sandbox, submission) -> None:
    """After build(): sklearn's data generators, if imported, refuse to run while sampling, also
    where the submission bound them to its own names (``from sklearn.datasets import make_moons``)."""
    sk = sys.modules.get("sklearn.datasets")
    if sk is None:
        return
    swap = {}
    for name in dir(sk):
        fn = getattr(sk, name)
        if name.startswith(("make_", "load_", "fetch_")) and callable(fn):
            swap[id(fn)] = sb.guarded(fn, f"sklearn.datasets.{name}")
            setattr(sk, name, swap[id(fn)])
    for name, value in list(vars(submission).items()):
        if id(value) in swap:
            setattr(submission, name, swap[id(value)])


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the student's prints go to stderr
    req = json.loads(sys.stdin.readline())
    import resource

    if req.get("memory_mb"):
        cap = int(req["memory_mb"]) * 2 ** 20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import numpy  # noqa: F401  (imported before the hook: students use it)
    import torch

    import utils.datasets as datasets

    torch.set_num_threads(1)
    work = os.getcwd()
    import sysconfig
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sysconfig.get_paths().values(),
             os.path.dirname(datasets.__file__)}
    sb = Sandbox(work, sorted(r for r in roots if r))
    sb.listable = {os.path.realpath(p or ".") for p in sys.path}
    for name in datasets.__all__:  # the course's data: for training in build(), not while sampling
        if callable(getattr(datasets, name)) and name != "as_generator":
            setattr(datasets, name, sb.guarded(getattr(datasets, name), f"utils.datasets.{name}"))
    datasets.SAMPLERS = {k: getattr(datasets, v.__name__) for k, v in datasets.SAMPLERS.items()}
    sys.path.insert(0, work)
    sys.addaudithook(sb.hook)
    torch.nn.modules.module.register_module_forward_pre_hook(sb.module_hook)

    def send(msg: dict) -> None:
        msg["denied"] = list(sb.denied)
        proto.write(json.dumps(msg) + "\n")

    def fail(where: str, e: BaseException, uncounted: int = 0) -> None:
        tb = traceback.extract_tb(e.__traceback__)
        line = next((f"{os.path.basename(f.filename)} line {f.lineno}" for f in reversed(tb)
                     if f.filename.startswith(work)), "")
        send({"phase": "error", "where": where, "message": f"{type(e).__name__}: {e}"[:500],
              "line": line, "uncounted": uncounted,
              "kind": "over budget" if uncounted else getattr(e, "kind", "error") if isinstance(e, ContractError)
              else "error"})

    send({"phase": "ready"})
    t0 = time.monotonic()
    try:
        sb.active = True
        import submission
        module = submission.build()
        sb.active = False
        _guard_data(sb, submission)
        if not isinstance(module, torch.nn.Module):
            raise ContractError(f"build() must return a torch.nn.Module; got {type(module).__name__}")
        size = sum(p.numel() for p in module.parameters()) + sum(b.numel() for b in module.buffers())
        if size > req["max_params"]:
            raise ContractError(f"the network holds {size} numbers (parameters and buffers); the limit is "
                                f"{req['max_params']}")
        if not callable(getattr(submission, "sample", None)):
            raise ContractError("submission.py defines no sample(net, z, nfe)")
    except BaseException as e:  # noqa: BLE001 - everything the student's code raises is reported
        sb.active = False
        fail("build", e)
        return
    send({"phase": "built", "seconds": time.monotonic() - t0, "size": size})
    z = torch.tensor(req["z"], dtype=torch.get_default_dtype())
    for k in req["nfe"]:
        t0 = time.monotonic()
        order = ["plain", "again", "moved"]
        random.Random(req["offset"] + k).shuffle(order)  # which run is moved is not the student's to know
        got, nets, sb.uncounted = {}, [], 0
        try:
            for run in order:
                got[run], net = _run(sb, submission.sample, module, z, k, req["seed"],
                                     req["offset"] if run == "moved" else None)
                nets.append(net)
        except BaseException as e:  # noqa: BLE001
            fail(f"sample at {k} NFE", e, sb.uncounted)
            continue
        x = got["plain"]
        send({"phase": "sample", "nfe": k, "x": x.tolist(), "seconds": (time.monotonic() - t0) / 3,
              "evaluations": max(n.evaluations for n in nets), "calls": max(n.calls for n in nets),
              "uncounted": sb.uncounted, "repeat_change": float((got["again"] - x).abs().max()),
              "sensitivity": float((got["moved"] - x).pow(2).mean().sqrt()) / PERTURB_SCALE})
    send({"phase": "done"})


if __name__ == "__main__":
    main()

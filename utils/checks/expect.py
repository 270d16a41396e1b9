"""What checks are made of: calling the student's answer and comparing what it returns.

The registry and the running of checks live in :mod:`utils.checks.core`; this module holds the
helpers every ``nbNN`` check module uses to produce the usual messages:

- :func:`call` calls the answer, turns an exception into a message that names the inputs, and
  watches every tensor it hands over (value and version counter): an answer that changes one in
  place is told which argument, before anything else;
- :func:`expect_tensor` (type, shape, dtype, NaN), :func:`expect_close` and :func:`expect_cases`
  (values at test points, with named common mistakes), :func:`close`, :func:`describe_difference`;
- :func:`expect_gradient` compares the answer's gradient with the reference's, where a later cell
  differentiates the answer; :func:`expect_log_space` names an overflow or underflow on far or
  small-scale inputs ("work in log space");
- :func:`fmt` and :func:`fmt_pair`: numbers in messages, with the digits that show a difference.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import describe
from .core import CheckFailure, _student_location

__all__ = ["call", "expect_tensor", "expect_close", "expect_cases", "close", "describe_difference",
           "fmt", "fmt_pair", "expect_gradient", "expect_log_space"]


def fmt(x: Any, digits: int = 4) -> str:
    """Compact text for a number or small tensor in a message."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.numel() == 1:
            return f"{x.item():.{digits}g}"
        if x.numel() <= 6:
            return "[" + ", ".join(f"{v:.{digits}g}" for v in x.flatten().tolist()) + "]"
        return f"tensor of shape {tuple(x.shape)}"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return repr(x)


def fmt_pair(a: Any, b: Any, digits: int = 4) -> tuple[str, str]:
    """``a`` and ``b`` as text with the fewest digits (at least ``digits``) that show them different.

    "should be 0.4632, got 0.4632" cannot happen: when two values differ, digits are added (up to 17,
    all a float64 has) until their texts differ.
    """
    for d in range(digits, 18):
        sa, sb = fmt(a, d), fmt(b, d)
        if sa != sb:
            return sa, sb
    return fmt(a, 17), fmt(b, 17)


def _sentence(text: str) -> str:
    """Capitalise the first letter only: "log|det J|" stays as written, unlike str.capitalize()."""
    return text[:1].upper() + text[1:]


def call(fn: Callable, *args, name: str | None = None,
         explain: Callable[[Exception], str | None] | None = None, **kwargs) -> Any:
    """Call the student's ``fn``; turn an exception into a message naming the inputs.

    ``explain(exception)`` may return a message that names the mistake behind the exception (a check
    decides that by re-running the answer on a probe, never by guessing); ``None`` keeps the default.
    """
    if not callable(fn):
        raise CheckFailure(f"Expected a function or class, got {describe(fn)}.")
    label = name or getattr(fn, "__name__", "your function")
    watched = _snapshot(fn, args, kwargs)
    try:
        out = fn(*args, **kwargs)
    except (NotImplementedError, CheckFailure):
        raise
    except Exception as e:
        _expect_unchanged(watched, label)  # an input changed in place explains the error better
        if explain is not None:
            named = explain(e)
            if named:
                raise CheckFailure(named) from None
        shown = ", ".join(describe(a) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args)
        raise CheckFailure(f"`{label}` raised {type(e).__name__}: {e}{_student_location(e.__traceback__)}\n"
                           f"It was called with: {shown}.") from None
    _expect_unchanged(watched, label)
    return out


def _argument_names(fn: Callable, args: tuple, kwargs: dict) -> list[str]:
    """The names ``fn`` gives its positional arguments (its own parameter names), else "number k"."""
    names = [f"number {k + 1}" for k in range(len(args))]
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return names
    k = 0
    for pname, value in bound.arguments.items():
        param = bound.signature.parameters[pname]
        if param.kind == param.VAR_POSITIONAL:
            for j in range(len(value)):
                if k < len(names):
                    names[k] = f"{pname}[{j}]"
                k += 1
        elif param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD) and k < len(args) \
                and value is args[k]:
            names[k] = pname
            k += 1
    return names


def _snapshot(fn: Callable, args: tuple, kwargs: dict) -> list[tuple[str, torch.Tensor, int, torch.Tensor]]:
    """Every tensor argument (also inside a tuple or list), with its version counter and a copy of its values."""
    items = list(zip(_argument_names(fn, args, kwargs), args)) + list(kwargs.items())
    watched = []
    for label, value in items:
        inner = [(label, value)] if isinstance(value, torch.Tensor) else (
            [(f"{label}[{j}]", v) for j, v in enumerate(value) if isinstance(v, torch.Tensor)]
            if isinstance(value, (tuple, list)) else [])
        for lab, t in inner:
            watched.append((lab, t, t._version, t.detach().clone()))
    return watched


def _expect_unchanged(watched, label: str) -> None:
    """Fail, naming the argument, when the answer changed one of its tensor inputs in place."""
    for arg, t, version, copy in watched:
        now = t.detach()
        same = (now.shape == copy.shape and now.dtype == copy.dtype
                and bool(((now == copy) | (now.isnan() & copy.isnan())).all()))
        if not same or t._version != version:
            raise CheckFailure(
                f"`{label}` changed its argument `{arg}` in place"
                + ("" if same else " (its values differ after the call)")
                + ". In the notebook the caller goes on using that tensor (and views of it share its memory), "
                  "so its values would silently change there, far from your code. Build a new tensor instead: "
                  f"`{arg} = {arg} * c` rather than `{arg} *= c` or `{arg}.mul_(c)`, `x = x + dt * k` rather than "
                  "`x += dt * k`, `torch.where(...)` or a `.clone()` before `[...] =`.")


def expect_tensor(got: Any, shape: Sequence[int] | None = None, name: str = "the result",
                  dtype: torch.dtype | None = None, finite_hint: str = "", finite: bool = True) -> torch.Tensor:
    """Fail unless ``got`` is a tensor of the given shape and dtype with no NaN or inf.

    ``finite_hint`` is added to the NaN message: give it only when the check has established that the
    NaN comes from that mistake. ``finite=False`` skips the NaN test (for callers that test it later).
    """
    if not isinstance(got, torch.Tensor):
        extra = ""
        if isinstance(got, (tuple, list)) and got and all(isinstance(g, torch.Tensor) for g in got):
            extra = (f" It is a {type(got).__name__} of {len(got)} tensors"
                     f" of shapes {[tuple(g.shape) for g in got]}: return the one that is asked for.")
        raise CheckFailure(f"Wrong type: {name} should be a torch.Tensor, but it is {describe(got)}.{extra}")
    if shape is not None and tuple(got.shape) != tuple(shape):
        raise CheckFailure(f"Wrong shape: {name} should have shape {tuple(shape)}, got {tuple(got.shape)}."
                           + _shape_hint(tuple(shape), tuple(got.shape)))
    if dtype is not None and got.dtype != dtype:
        raise CheckFailure(f"Wrong dtype: {name} should be {dtype}, got {got.dtype}.")
    if finite and got.is_floating_point() and not torch.isfinite(got).all():
        nan = torch.isnan(got).sum().item()
        inf = torch.isinf(got).sum().item()
        raise CheckFailure(f"{_sentence(name)} contains {nan} NaN and {inf} infinite value(s) "
                           f"out of {got.numel()}." + (f" {finite_hint}" if finite_hint else ""))
    return got


def _shape_hint(want: tuple, got: tuple) -> str:
    if len(got) == len(want) + 1 and got[: len(want)] == want:
        return " Did you forget to sum over the last dimension?"
    if len(got) + 1 == len(want) and want[: len(got)] == got:
        return " Did you sum over one dimension too many?"
    if len(got) == len(want) == 2 and got == want[::-1]:
        return " It is transposed."
    return ""


def close(got: torch.Tensor, wrong: torch.Tensor, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
    """True when ``got`` equals ``wrong`` within the tolerances, NaN where ``wrong`` is NaN included.

    Used to recognise a named mistake by comparing with the mistaken computation itself.
    """
    if not isinstance(got, torch.Tensor) or not isinstance(wrong, torch.Tensor):
        return False
    got_c, wrong_c = got.detach().double().cpu(), wrong.detach().double().cpu()
    return got_c.shape == wrong_c.shape and bool(torch.allclose(got_c, wrong_c, atol=atol, rtol=rtol,
                                                                equal_nan=True))


def expect_close(got: torch.Tensor, expected: torch.Tensor, name: str = "the result",
                 atol: float = 1e-4, rtol: float = 1e-4,
                 inputs: torch.Tensor | None = None, input_name: str = "x",
                 mistakes: Iterable[tuple[torch.Tensor, str]] = (), sign_hint: str = "",
                 finite_hint: str = "") -> None:
    """Fail unless ``got`` matches ``expected``; name a known mistake or a sign error if it fits.

    ``mistakes`` holds (value a known wrong answer would give, message naming that mistake); a mistake
    is named only when ``got`` equals that value (NaN in the same places included). Otherwise the
    message says which entry differs, at which input, by how much, against which tolerance, with
    enough digits to show the difference.
    """
    got = expect_tensor(got, expected.shape, name, finite=False)
    got_c, exp_c = got.detach().double().cpu(), expected.detach().double().cpu()
    if torch.allclose(got_c, exp_c, atol=atol, rtol=rtol):
        return
    for wrong, message in mistakes:
        if close(got_c, wrong, atol=atol, rtol=rtol):
            raise CheckFailure(message)
    expect_tensor(got, expected.shape, name, finite_hint=finite_hint)
    if exp_c.abs().max() > atol and torch.allclose(got_c, -exp_c, atol=atol, rtol=rtol):
        raise CheckFailure(f"Wrong sign: {name} is the negative of what it should be. "
                           + (sign_hint or "Look for a minus sign."))
    raise CheckFailure(describe_difference(got_c, exp_c, name, atol, rtol, inputs, input_name))


def describe_difference(got: torch.Tensor, expected: torch.Tensor, name: str, atol: float, rtol: float,
                        inputs: torch.Tensor | None = None, input_name: str = "x") -> str:
    """Which entry of ``got`` is furthest from ``expected``, at which input, against which tolerance."""
    got_c, exp_c = got.detach().double().cpu(), expected.detach().double().cpu()
    err = (got_c - exp_c).abs()
    bound = atol + rtol * exp_c.abs()
    i = int((err / bound).flatten().argmax())
    idx = tuple(int(k) for k in torch.unravel_index(torch.tensor(i), err.shape)) if err.ndim else ()
    where = ""
    if idx and err.numel() > 1:
        where = f" at row {idx[0]}"
        if err.ndim == 2:
            where += f", column {idx[1]}"
        elif err.ndim > 2:
            where += f", entry {list(idx)}"
        if inputs is not None and inputs[idx[0]].numel() <= 6:
            where += f" ({input_name} = {fmt(inputs[idx[0]])})"
    want_s, got_s = fmt_pair(exp_c[idx] if idx else exp_c, got_c[idx] if idx else got_c)
    off = int((err > bound).sum())
    return (f"Wrong value: {name}{where} should be {want_s}, got {got_s}: they differ by "
            f"{fmt(err[idx] if idx else err, 2)}, more than the tolerance {fmt(float(bound[idx] if idx else bound), 2)}"
            f" ({off} of {err.numel()} entries are off).")


def expect_cases(got: Sequence[torch.Tensor], expected: Sequence[torch.Tensor], names: Sequence[str], *,
                 atol: float, rtol: float = 0.0, inputs: Sequence[torch.Tensor | None] | None = None,
                 input_name: str = "x", mistakes: Iterable[tuple[Sequence[torch.Tensor | None], str]] = (),
                 sign_hint: str = "") -> None:
    """Compare the answer on several test cases at once; name a mistake only if it fits every case.

    ``got[k]`` is the answer on case ``k``; each mistake is (the mistaken computation on every case,
    message). Several cases together tell mistakes apart that one case cannot (on a linear autonomous
    field a midpoint step equals a wrongly chained RK4). A mistake matches when it equals the answer on
    every case where it is given (None: that case cannot tell). Otherwise the first failing case is
    described precisely.
    """
    inputs = list(inputs) if inputs is not None else [None] * len(got)
    checked = [expect_tensor(g, e.shape, n, finite=False) for g, e, n in zip(got, expected, names)]
    ok = [close(g, e, atol, rtol) for g, e in zip(checked, expected)]  # the expected values are finite
    if all(ok):
        return
    for wrongs, message in mistakes:
        given = [(g, w) for g, w in zip(checked, wrongs) if w is not None]
        if given and all(close(g, w, atol, rtol) for g, w in given):
            raise CheckFailure(message)
    k = ok.index(False)
    expect_close(checked[k], expected[k], names[k], atol=atol, rtol=rtol, inputs=inputs[k],
                 input_name=input_name, sign_hint=sign_hint)


def expect_gradient(got: torch.Tensor, expected: torch.Tensor, wrt: Sequence[torch.Tensor],
                    wrt_names: Sequence[str], name: str = "the result", why: str = "",
                    atol: float = 1e-6, rtol: float = 1e-5, seed: int = 0) -> None:
    """Fail unless the answer's gradient equals the reference's, by autograd, with respect to ``wrt``.

    For a result whose values are right: a part computed under ``torch.no_grad()`` or detached keeps the
    values and loses (part of) the gradient, which a later cell needs. ``got`` and ``expected`` are
    projected on one fixed random direction (seeded: the same message every run) and differentiated.
    ``why`` says which later cell differentiates the answer.
    """
    why = f" {why}" if why else ""
    cut = ("torch.no_grad(), .detach(), .data, .item() or a trip through numpy")
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        raise CheckFailure(f"The values are right, but {name} carries no gradient (it has no grad_fn): it was "
                           f"computed under {cut}.{why}")
    w = torch.randn(tuple(got.shape), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    g_got = torch.autograd.grad((got.double() * w).sum(), list(wrt), allow_unused=True, retain_graph=True)
    g_exp = torch.autograd.grad((expected.double() * w).sum(), list(wrt), allow_unused=True, retain_graph=True)
    for gg, ge, wname in zip(g_got, g_exp, wrt_names):
        if ge is None:
            continue
        if gg is None and torch.allclose(ge.double(), torch.zeros_like(ge, dtype=torch.float64), atol=atol):
            continue  # the reference's gradient is zero there too (a part that does not enter the result)
        if gg is None:
            raise CheckFailure(f"The values are right, but no gradient reaches `{wname}` through {name}: the part "
                               f"that depends on it was computed under {cut}.{why}")
        if not torch.allclose(gg.double(), ge.double(), atol=atol, rtol=rtol):
            err = float((gg.double() - ge.double()).abs().max())
            raise CheckFailure(f"The values are right, but the gradient of {name} with respect to `{wname}` is not "
                               f"(it is off by up to {fmt(err, 2)}): part of the computation is cut off from the "
                               f"graph ({cut}), so autograd sees it as a constant.{why}")


def expect_log_space(got: Any, expected: torch.Tensor, name: str, where: str) -> None:
    """Fail with "work in log space" when the answer overflows or underflows on extreme inputs ``where``.

    ``expected`` is finite there; an answer that exponentiates densities before normalising returns NaN
    (0/0 when every density underflows), inf, or zeros.
    """
    got = expect_tensor(got, expected.shape, name, finite=False)
    g = got.detach().double().cpu()
    e = expected.detach().double().cpu()
    if not torch.isfinite(g).all():
        bad = int((~torch.isfinite(g)).sum())
        raise CheckFailure(f"{_sentence(name)} has {bad} NaN or infinite value(s) {where}: far from the data, or at "
                           "a small scale, every density exp(-|x - mu|^2 / (2 sigma^2)) underflows to 0 (or "
                           "overflows), and 0/0 = NaN. Work in log space: keep log-densities and normalise them "
                           "with torch.softmax or torch.logsumexp, which subtract the largest one first.")
    if not torch.allclose(g, e, atol=1e-6, rtol=1e-5):
        raise CheckFailure(f"{_sentence(name)} is wrong {where}, though right near the data: a density underflowed "
                           "or overflowed on the way. Work in log space: keep log-densities and normalise them "
                           "with torch.softmax or torch.logsumexp.\n" + describe_difference(g, e, name, 1e-6, 1e-5))

"""Checks of notebook 07 (capstone: class-conditional flow matching with guidance on digits)."""
from __future__ import annotations

import torch

from .. import digits, guidance
from .core import CheckFailure, exercise
from .expect import call, expect_close, expect_tensor, fmt

NB = "07_capstone_digits"


# ---------------------------------------------------------------- 7.1 nearest-neighbour distance

def _nn_cases():
    g = torch.Generator().manual_seed(71)
    ref = torch.randn(200, 64, generator=g, dtype=torch.float64)
    x = torch.randn(50, 64, generator=g, dtype=torch.float64) * 1.2
    x[:5] = ref[[3, 17, 42, 99, 150]]  # five "memorised" samples: distance exactly 0
    small_ref = torch.tensor([[0.0, 0.0], [3.0, 4.0], [-1.0, 0.0]], dtype=torch.float64)
    small_x = torch.tensor([[0.0, 0.0], [3.0, 0.0], [6.0, 8.0], [-4.0, 4.0]], dtype=torch.float64)
    # by hand: 0; min(3, 4, 4) = 3; 5; min(sqrt(32), 7, sqrt(25)) = 5
    return [("64-dimensional points, five of them copies of reference rows", x, ref, None),
            ("four 2D points with distances worked out by hand", small_x, small_ref,
             torch.tensor([0.0, 3.0, 5.0, 5.0], dtype=torch.float64))]


@exercise("7.1", title="Distance to the nearest training digit", notebook=NB,
          answer="nearest_neighbour_distance", reference=digits.nn_distances, minutes=10,
          practises="pairwise distances with torch.cdist or broadcasting; a memorisation test")
def check_7_1(answer):
    from scipy.spatial import cKDTree

    for name, x, ref, by_hand in _nn_cases():
        got = call(answer, x.clone(), ref.clone(), name="nearest_neighbour_distance")
        if isinstance(got, torch.Tensor) and tuple(got.shape) == (ref.shape[0],) and x.shape[0] != ref.shape[0]:
            raise CheckFailure(f"Wrong shape for {name}: you returned one number per reference row "
                               f"({ref.shape[0]}); return one per row of x ({x.shape[0]}), the distance "
                               "from that row to its nearest reference row (take the min over the reference).")
        if isinstance(got, torch.Tensor) and not got.is_floating_point():
            raise CheckFailure("You returned integers: these look like the indices of the nearest neighbours "
                               "(argmin). Return the distances themselves (min, not argmin).")
        if isinstance(got, torch.Tensor) and got.is_floating_point() and tuple(got.shape) == (x.shape[0],) \
                and not torch.isfinite(got).all():
            bad = ~torch.isfinite(got)
            copies = torch.cdist(x, ref).min(1).values == 0
            if bool(bad.any()) and bool((copies | ~bad).all()):  # NaN only at rows that copy a reference row
                raise CheckFailure(f"For {name} your distances are NaN exactly at the rows that copy a reference "
                                   f"row ({int(bad.sum())} of them): |a|^2 + |b|^2 - 2 a.b rounds to a tiny "
                                   "negative number there, and its square root is NaN. Clamp at 0 before the square "
                                   "root, or use torch.cdist.")
        got = expect_tensor(got, (x.shape[0],), f"the distances for {name}")
        dist, _ = cKDTree(ref.numpy()).query(x.numpy(), k=1)  # scipy's k-d tree, independent of torch
        expected = torch.as_tensor(dist, dtype=torch.float64)
        if by_hand is not None:
            expected = by_hand
        all_d = torch.cdist(x, ref)
        expect_close(got, expected, f"the distances for {name}", atol=1e-5, inputs=x, mistakes=[
            (expected**2, "You returned squared distances: take the square root (Euclidean distance)."),
            (all_d.mean(1), "You averaged the distances over the reference set: take the smallest one "
                            "(the nearest neighbour)."),
            (all_d.max(1).values, "You took the largest distance: the nearest neighbour is the smallest."),
            ((x[:, None, :] - ref[None]).abs().sum(-1).min(1).values,
             "You used the L1 (city-block) distance: use the Euclidean distance, sqrt of the summed squares."),
        ])
    return "It matches scipy's k-d tree (scipy.spatial.cKDTree) and the distances worked out by hand."


# ---------------------------------------------------------------- 7.2 label dropout

@exercise("7.2", title="Label dropout in a training batch", notebook=NB, answer="drop_labels",
          reference=guidance.drop_labels, minutes=10,
          practises="Bernoulli masks with a torch.Generator; the null label of classifier-free guidance")
def check_7_2(answer):
    n, null = 20_000, 10
    y = torch.arange(n) % 10
    y_before = y.clone()
    p = 0.2
    got = call(answer, y, p, null, torch.Generator().manual_seed(0), name="drop_labels")
    got = expect_tensor(got, (n,), "the labels returned by drop_labels")
    if not torch.equal(y, y_before):
        raise CheckFailure("drop_labels changed `y` in place: return a new tensor and leave the batch's labels "
                           "as they were (torch.where or y.clone() first).")
    if got.is_floating_point() or got.dtype != y.dtype:
        raise CheckFailure(f"The labels should keep the dtype of y ({y.dtype}); got {got.dtype}. "
                           "They index an embedding table.")
    changed = got != y
    if changed.any():
        wrong_values = got[changed].unique().tolist()
        if wrong_values != [null]:
            zero = " You replaced them by 0, which is the label of the digit 0, not 'no label'." \
                if 0 in wrong_values else ""
            raise CheckFailure(f"Dropped labels must become null_label = {null}; some became "
                               f"{[v for v in wrong_values if v != null][:5]}.{zero}")
    frac = float((got == null).double().mean())
    if abs(frac - (1 - p)) < 0.02:
        raise CheckFailure(f"About {frac:.0%} of the labels were dropped with p_uncond = {p}: you kept each label "
                           "with probability p_uncond and dropped it otherwise. Drop where torch.rand(n) < p_uncond.")
    if frac in (0.0, 1.0):
        raise CheckFailure(f"With p_uncond = {p} you dropped {'none' if frac == 0 else 'all'} of the labels in a "
                           "batch of 20000: decide for each example separately (one random number per label), "
                           "not once for the whole batch.")
    if abs(frac - p) > 0.02:
        raise CheckFailure(f"With p_uncond = {p} about {p:.0%} of the labels should be dropped; you dropped "
                           f"{frac:.1%}.")
    per_class = torch.stack([(got[y == c] == null).double().mean() for c in range(10)])
    if (per_class - p).abs().max() > 0.05:
        raise CheckFailure(f"Each class should lose labels at the same rate p_uncond = {p}; the rates per class "
                           f"are {[round(v, 2) for v in per_class.tolist()]}.")
    # Chances that a correct answer fails the tests above and below: the overall fraction (n = 20000,
    # standard deviation 0.0028) leaves 0.2 +- 0.02 with probability 2e-12; a class's fraction (2000 labels,
    # standard deviation 0.0089) leaves 0.2 +- 0.05 with probability 2.3e-8, 2.3e-7 for the ten classes;
    # a batch of 64 with p = 0.5 drops all or none with probability 2^-63; twenty batches of 10 with p = 0.5
    # all drop exactly 5 with probability (252/1024)^20 = 7e-13; two seeds drop the same of 20000 labels
    # with probability below 0.68^20000.
    # independently: the number dropped varies from batch to batch
    counts = [int((call(answer, y[:10].clone(), 0.5, null, torch.Generator().manual_seed(100 + s),
                        name="drop_labels") == null).sum()) for s in range(20)]
    if all(c == 5 for c in counts):
        raise CheckFailure("In twenty batches of 10 labels with p_uncond = 0.5 you dropped exactly 5 every time: "
                           "you chose a fixed number of labels to drop. Each label must be dropped independently, "
                           "with probability p_uncond (one random number per label), so the count varies.")
    # one coin per example, not per batch: small batches with p = 0.5 are mixed
    mixed = [call(answer, y[:64].clone(), 0.5, null, torch.Generator().manual_seed(s), name="drop_labels")
             for s in range(4)]
    if all(bool((m == null).all()) or bool((m != null).all()) for m in mixed):
        raise CheckFailure("In batches of 64 with p_uncond = 0.5 either every label or none was dropped: decide "
                           "for each example separately (one random number per label), not once per batch.")
    again = call(answer, y.clone(), p, null, torch.Generator().manual_seed(0), name="drop_labels")
    other = call(answer, y.clone(), p, null, torch.Generator().manual_seed(1), name="drop_labels")
    if not torch.equal(again, got) or torch.equal(other, got):
        raise CheckFailure("Draw the random numbers from the `generator` argument "
                           "(torch.rand(n, generator=generator)): the same seed must drop the same labels, "
                           "so training is reproducible.")
    for q, want in ((0.0, y), (1.0, torch.full_like(y, null))):
        out = call(answer, y[:100].clone(), q, null, torch.Generator().manual_seed(2), name="drop_labels")
        if not isinstance(out, torch.Tensor) or not torch.equal(out, want[:100]):
            raise CheckFailure(f"With p_uncond = {q} {'no' if q == 0 else 'every'} label should be dropped.")
    return f"It dropped {frac:.1%} of 20000 labels with p_uncond = 0.2, at the same rate in every class."


# ---------------------------------------------------------------- 7.3 guided velocity

class _FakeField:
    """A stand-in for the network: v(x, t, y) = -(1 + t) x + E[y], with a table E of label vectors."""

    def __init__(self, num_classes: int, dim: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.num_classes, self.null_label = num_classes, num_classes
        self.table = torch.randn(num_classes + 1, dim, generator=g, dtype=torch.float64) * 2
        self.calls = 0

    strict_times = False  # 7.4's statement: pass t as a tensor of shape (n,)

    def __call__(self, x, t, y):
        self.calls += 1
        n = x.shape[0]
        if self.strict_times and (not isinstance(t, torch.Tensor) or tuple(t.shape) != (n,)):
            got = f"t = {t!r} (a {type(t).__name__})" if not isinstance(t, torch.Tensor) else \
                f"t of shape {tuple(t.shape)}"
            raise CheckFailure(f"The model was called with {got}: pass the time as a tensor of shape (n,) = ({n},), "
                               "one time per sample, e.g. torch.full((len(x),), k * dt).")
        if not isinstance(t, torch.Tensor):
            t = torch.full((n,), float(t), dtype=x.dtype)
        t = t.reshape(-1).expand(n) if t.numel() == 1 else t.reshape(n)
        y = torch.as_tensor(y)
        if y.shape != (n,):
            raise ValueError(f"the model expects labels of shape ({n},), got {tuple(y.shape)}")
        if y.is_floating_point():
            raise ValueError("the model expects integer labels, got floats")
        if int(y.min()) < 0 or int(y.max()) > self.null_label:
            raise ValueError(f"label {int(y.max())} is out of range: this model has classes 0..{self.num_classes - 1} "
                             f"and model.null_label = {self.null_label} means 'no label'. Use model.null_label.")
        return -(1 + t.to(x.dtype))[:, None] * x + self.table[y.long()]


def _guided(model, x, t, y, w, null=None):
    null = model.null_label if null is None else null
    return (1 + w) * model(x, t, y) - w * model(x, t, torch.full_like(y, null))


@exercise("7.3", title="The guided velocity", notebook=NB, answer="guided_velocity",
          reference=guidance.guided_velocity, points=2, minutes=15,
          practises="deriving classifier-free guidance from the guided score (Bayes' rule and the score-to-field map)")
def check_7_3(answer):
    for num_classes, seed in ((10, 73), (4, 74)):
        model = _FakeField(num_classes, 6, seed)
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(12, 6, generator=g, dtype=torch.float64)
        t = torch.rand(12, generator=g, dtype=torch.float64)
        y = torch.arange(12) % num_classes
        for w in (3.0, 0.5, 0.0):
            got = call(answer, model, x, t, y, w, name="guided_velocity")
            got = expect_tensor(got, x.shape, f"the guided velocity for w = {w}")
            v_c, v_u = model(x, t, y), model(x, t, torch.full_like(y, model.null_label))
            expected = v_c + w * (v_c - v_u)  # written differently from the reference on purpose
            mistakes = [((1 + w) * v_u - w * v_c,
                         f"For w = {w} the weights are swapped: you gave (1 + w) to the unconditional field and "
                         "-w to the conditional one. Guidance is (1 + w) v(x | y) - w v(x | no label): it moves "
                         "towards the class, away from 'any digit'.")]
            if w != 0:
                mistakes += [
                    (v_c, f"For w = {w} you returned the conditional field v(x | y) alone: w is ignored. "
                          "Guidance adds w (v(x | y) - v(x | no label))."),
                    ((1 - w) * v_c + w * v_u, f"For w = {w} you interpolated between the two fields, "
                                             "(1 - w) v(x | y) + w v(x | no label): the signs of the w terms are "
                                             "flipped. Guidance extrapolates: (1 + w) v(x | y) - w v(x | no label)."),
                    (w * v_c + (1 - w) * v_u,
                     f"For w = {w} you used the other convention, w v(x | y) + (1 - w) v(x | no label), where the "
                     "guidance scale w' = 1 + w and w' = 1 means no guidance (notebook 07 warns about it). In this "
                     "course w = 0 means no guidance: (1 + w) v(x | y) - w v(x | no label)."),
                    (w * (v_c - v_u), f"For w = {w} you returned only the guidance term w (v(x | y) - v(x | no label)): "
                                      "add the conditional field v(x | y) itself."),
                    ((1 + w) * v_c - w * model(x, t, torch.zeros_like(y)),
                     f"For w = {w} the unconditional field was evaluated with label 0, the digit 0: use "
                     "model.null_label, the label that means 'no label'."),
                ]
            expect_close(got, expected, f"the guided velocity for w = {w}", atol=1e-8, mistakes=mistakes)
    return "It gives (1 + w) v(x | y) - w v(x | no label) for w = 0, 0.5 and 3, with model.null_label."


# ---------------------------------------------------------------- 7.4 conditional sampler

def _euler(field, x0, num_steps, times):
    x, dt = x0.clone(), 1.0 / num_steps
    for k in range(num_steps):
        x = x + dt * field(x, torch.full((x.shape[0],), times(k, num_steps), dtype=x.dtype))
    return x


@exercise("7.4", title="A guided conditional sampler", notebook=NB, answer="sample_guided",
          reference=guidance.sample_guided, minutes=15,
          practises="Euler integration of the guided field from noise (t=0) to data (t=1)")
def check_7_4(answer):
    from torchdiffeq import odeint

    model = _FakeField(10, 5, 75)
    model.table = model.table / 2
    model.strict_times = True
    g = torch.Generator().manual_seed(75)
    x0 = torch.randn(20, 5, generator=g, dtype=torch.float64)
    y = torch.arange(20) % 10
    w, num_steps = 2.0, 8
    x0_before = x0.clone()
    got = call(answer, model, x0, y, w, num_steps, name="sample_guided")
    if isinstance(got, torch.Tensor) and not torch.equal(x0, x0_before):
        raise CheckFailure("sample_guided changed x0 in place (`x += ...` on x0 itself): start from a copy, "
                           "or write x = x + dt * v.")
    got = expect_tensor(got, x0.shape, "the samples")
    model.strict_times = False  # the expected values below are computed without the student's times
    guided = lambda x, t: _guided(model, x, t, y, w)  # noqa: E731
    expected = _euler(guided, x0, num_steps, lambda k, n: k / n)
    expect_close(got, expected, f"the samples after {num_steps} Euler steps with w = {w}", atol=1e-6, mistakes=[
        (_euler(guided, x0, num_steps, lambda k, n: 1 - k / n),
         "Time runs the wrong way: the course's time goes from t=0 (noise) to t=1 (data), so the k-th step "
         "evaluates the field at t = k / num_steps."),
        (_euler(guided, x0, num_steps, lambda k, n: (k + 1) / n),
         "Each Euler step evaluated the field at the end of the step, t = (k + 1) / num_steps: Euler uses the "
         "start, t = k / num_steps (from 0 up to 1 - 1/num_steps)."),
        (_euler(lambda x, t: model(x, t, y), x0, num_steps, lambda k, n: k / n),
         f"The samples follow the conditional field v(x | y) without guidance: w = {w} was ignored. "
         "Step with guided_velocity(model, x, t, y, w)."),
        (_euler(lambda x, t: (1 + w) * model(x, t, torch.full_like(y, model.null_label)) - w * model(x, t, y),
                x0, num_steps, lambda k, n: k / n),
         "The guidance weights are swapped: use (1 + w) v(x | y) - w v(x | no label)."),
        (_euler(guided, x0, num_steps + 1, lambda k, n: k / n),
         f"You took num_steps + 1 = {num_steps + 1} steps: take exactly num_steps steps of size 1 / num_steps."),
    ])
    # independently of Euler: many steps approach the exact flow of the guided field (torchdiffeq, dopri5)
    model.strict_times = True
    fine = call(answer, model, x0, y, w, 400, name="sample_guided")
    model.strict_times = False
    exact = odeint(lambda t, x: guided(x, t.expand(x.shape[0])), x0, torch.tensor([0.0, 1.0], dtype=x0.dtype),
                   method="dopri5", rtol=1e-9, atol=1e-9)[-1]
    err = (fine - exact).abs().max()
    if err > 0.02:
        raise CheckFailure(f"With 400 steps the samples should be close to the exact flow (torchdiffeq dopri5), "
                           f"but they differ by up to {fmt(err)}.")
    return f"It matches Euler with {num_steps} steps, and with 400 steps the exact flow (dopri5) within 0.02."

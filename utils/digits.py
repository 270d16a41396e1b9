"""Real data for the capstone: scikit-learn's 8x8 digits, and how to judge samples of them (notebook 07).

    data = load_digits_split()            # x_train (1437, 64), y_train, x_test (360, 64), y_test
    clf = ReferenceClassifier(data)       # logistic regression fitted on the training digits
    clf.predict(x), clf.accuracy(x, y)    # labels (n,), a fraction
    fd = frechet_distance(clf.features(x), clf.features(data.x_test))  # a mini-FID in its 10 logits
    d = nn_distances(x, data.x_train)     # (n,) distance of each row to its nearest training digit
    show_grid(ax, images, ncols=10)       # draw (n, 64) images as one tiled picture

The 1797 digits ship inside scikit-learn (no download). Pixels are 0..16;
here they are scaled to [-1, 1] (-1 is the blank background), flattened to 64
numbers, and split once into 1437 training and 360 held-out digits,
stratified by class, with a fixed seed. A generated digit is judged three ways:
does a classifier trained on real digits read it as the requested class; is it
no closer to the training set than real unseen digits are (no memorisation);
how far is the cloud of generated digits from the held-out digits in W2
(``utils.metrics.w2``), beside the distance between training and held-out
digits themselves. A fourth judge is what papers use for images (FID, Heusel et al. 2017): the
Frechet distance between Gaussians fitted to the two clouds in a classifier's feature space, here the
reference classifier's 10 class scores (a mini-FID; its floor is again training vs held-out digits).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .errors import InputError, check_points

__all__ = ["DigitsData", "load_digits_split", "to_unit_range", "ReferenceClassifier", "nn_distances",
           "per_class_accuracy", "frechet_distance", "subset_like", "tile", "show_grid", "NUM_CLASSES", "SIDE", "DIM"]

NUM_CLASSES, SIDE = 10, 8
DIM = SIDE * SIDE
TEST_SIZE, SPLIT_SEED = 360, 0


@dataclass(frozen=True)
class DigitsData:
    """Digits as tensors in [-1, 1] of shape (n, 64), in torch's default dtype, and int64 labels of shape (n,)."""
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def to_unit_range(pixels) -> torch.Tensor:
    """Pixel values 0..16 -> [-1, 1]: x = pixels / 8 - 1."""
    return torch.as_tensor(np.asarray(pixels, dtype=np.float64), dtype=torch.get_default_dtype()) / 8.0 - 1.0


@lru_cache(maxsize=4)
def _split(dtype: torch.dtype) -> DigitsData:  # keyed by dtype: a later set_default_dtype gets its own copy
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    pixels, labels = load_digits(return_X_y=True)
    p_tr, p_te, y_tr, y_te = train_test_split(pixels, labels, test_size=TEST_SIZE, random_state=SPLIT_SEED,
                                              stratify=labels)
    as_long = lambda y: torch.as_tensor(np.asarray(y), dtype=torch.int64)  # noqa: E731
    as_x = lambda p: to_unit_range(p).to(dtype)  # noqa: E731
    return DigitsData(as_x(p_tr), as_long(y_tr), as_x(p_te), as_long(y_te))


def load_digits_split() -> DigitsData:
    """The fixed split: 1437 training and 360 held-out digits (stratified, seed 0), in [-1, 1],
    in torch's default dtype at the time of the call.

    Returns fresh copies, so changing them in place does not change later calls.
    """
    d = _split(torch.get_default_dtype())
    return DigitsData(d.x_train.clone(), d.y_train.clone(), d.x_test.clone(), d.y_test.clone())


def _labels(y, n: int | None = None, name: str = "y") -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.ndim != 1 or y.is_floating_point():
        raise InputError(f"`{name}` must be a 1D tensor of integer labels, got shape {tuple(y.shape)} "
                         f"and dtype {str(y.dtype).replace('torch.', '')}.")
    if n is not None and y.shape[0] != n:
        raise InputError(f"`{name}` has {y.shape[0]} labels for {n} images.")
    return y


class ReferenceClassifier:
    """Multinomial logistic regression fitted on the training digits: the judge of generated digits.

    It reads about 97 % of the held-out digits correctly. Its accuracy on generated digits of a
    requested class says whether the model drew that class.
    """

    def __init__(self, data: DigitsData | None = None, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression

        data = data if data is not None else load_digits_split()
        self.model = LogisticRegression(C=C, max_iter=5000)
        self.model.fit(data.x_train.double().numpy(), data.y_train.numpy())

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted class of each image in x (n, 64), as int64 on x's device."""
        check_points(x, "x", dim=DIM)
        pred = self.model.predict(x.detach().double().cpu().numpy())
        return torch.as_tensor(pred, dtype=torch.int64, device=x.device)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's 10 class scores (logits) of each image in x (n, 64): its feature space, (n, 10) float64."""
        check_points(x, "x", dim=DIM)
        return torch.as_tensor(self.model.decision_function(x.detach().double().cpu().numpy()), dtype=torch.float64)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The fraction of images in x read as their label y."""
        y = _labels(y, x.shape[0])
        return float((self.predict(x).cpu() == y.cpu()).double().mean())


def per_class_accuracy(pred: torch.Tensor, y: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """Accuracy among the images of each requested class: (num_classes,), NaN for a class not requested."""
    pred, y = _labels(pred, name="pred").cpu(), _labels(y, pred.shape[0]).cpu()
    hits = torch.zeros(num_classes, dtype=torch.float64).index_add_(0, y, (pred == y).double())
    counts = torch.bincount(y, minlength=num_classes).double()
    return torch.where(counts > 0, hits / counts.clamp(min=1), torch.full_like(counts, float("nan")))


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Frechet distance between Gaussians fitted to the clouds a (n, k) and b (m, k):
    |mean_a - mean_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)), the squared W2 of the two Gaussians (FID's formula)."""
    from scipy.linalg import sqrtm

    check_points(a, "a")
    check_points(b, "b", dim=a.shape[1])
    if min(len(a), len(b)) < 2:
        raise InputError(f"each cloud needs at least 2 points to fit a covariance, got {len(a)} and {len(b)}.")
    a, b = a.detach().double().cpu().numpy(), b.detach().double().cpu().numpy()
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = sqrtm(ca @ cb)
    root = root.real if np.iscomplexobj(root) else root
    value = float(((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * root))
    return max(value, 0.0)


def nn_distances(x: torch.Tensor, reference: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """The Euclidean distance from each row of x (n, d) to its nearest row of reference (m, d): (n,).

    A model that memorised its training set produces samples at distance ~0 from it; real unseen
    digits show how close a new digit normally is.
    """
    check_points(x, "x")
    check_points(reference, "reference", dim=x.shape[1])
    ref = reference.to(device=x.device, dtype=x.dtype)
    # differences, not |a|^2 + |b|^2 - 2ab: a copied training digit must come out at distance 0
    out = [torch.cdist(part, ref, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
           for part in x.split(chunk)]
    return torch.cat(out) if out else x.new_zeros(0)


def subset_like(x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Distinct rows of x, one for each entry of ``labels``, with that label (drawn at random).

    Gives a sample of the training digits with the held-out digits' class counts, for a fair W2 floor.
    """
    check_points(x, "x")
    y, labels = _labels(y, x.shape[0]), _labels(labels, name="labels")
    picked = torch.empty(labels.shape[0], dtype=torch.int64)
    for c in labels.unique().tolist():
        where_c = (labels == c).nonzero()[:, 0]
        pool = (y == c).nonzero()[:, 0]
        if pool.numel() < where_c.numel():
            raise InputError(f"class {c}: {where_c.numel()} requested but only {pool.numel()} available.")
        picked[where_c] = pool[torch.randperm(pool.numel(), generator=generator)[: where_c.numel()]]
    return x[picked.to(x.device)]


def tile(images: torch.Tensor, ncols: int, pad: int = 1, background: float = -1.0) -> np.ndarray:
    """Arrange (n, 64) images into one 2D array with ``ncols`` images a row, ``pad`` pixels apart."""
    check_points(images, "images", dim=DIM)
    if ncols < 1:
        raise InputError(f"`ncols` must be at least 1, got {ncols}.")
    imgs = images.detach().float().cpu().clamp(-1, 1).reshape(-1, SIDE, SIDE).numpy()
    n = imgs.shape[0]
    nrows = max(1, -(-n // ncols))
    cell = SIDE + pad
    out = np.full((nrows * cell + pad, ncols * cell + pad), background, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, ncols)
        out[pad + r * cell: pad + r * cell + SIDE, pad + c * cell: pad + c * cell + SIDE] = imgs[k]
    return out


def show_grid(ax, images: torch.Tensor, ncols: int = 10, title: str | None = None,
              row_labels=None, col_labels=None):
    """Draw (n, 64) images on ``ax`` as a grid, ink dark on a light background; returns the AxesImage.

    ``row_labels`` / ``col_labels`` label the rows / columns (for example the class of each row).
    """
    pic = tile(images, ncols)
    im = ax.imshow(pic, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
    cell = SIDE + 1
    ax.set_xticks([] if col_labels is None else [1 + cell * k + SIDE / 2 - 0.5 for k in range(len(col_labels))])
    ax.set_yticks([] if row_labels is None else [1 + cell * k + SIDE / 2 - 0.5 for k in range(len(row_labels))])
    if col_labels is not None:
        ax.set_xticklabels([str(c) for c in col_labels])
    if row_labels is not None:
        ax.set_yticklabels([str(r) for r in row_labels])
    ax.tick_params(length=0)
    if title is not None:
        ax.set_title(title)
    return im

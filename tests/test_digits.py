"""utils.digits: the fixed split, the reference classifier, nearest-neighbour distances, grids."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from utils import digits  # noqa: E402
from utils.errors import InputError  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def test_split_shapes_range_and_classes(data):
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    for x in (data.x_train, data.x_test):
        assert x.min() == -1.0 and x.max() == 1.0
        # pixels 0..16 become multiples of 1/8 in [-1, 1]
        assert torch.equal((x + 1) * 8, ((x + 1) * 8).round())
    # stratified: every class has 35 to 37 held-out digits
    counts = torch.bincount(data.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37


def test_split_is_fixed_and_copies(data):
    again = digits.load_digits_split()
    assert torch.equal(again.x_test, data.x_test) and torch.equal(again.y_train, data.y_train)
    again.x_train.zero_()
    assert not torch.equal(digits.load_digits_split().x_train, again.x_train)


def test_split_follows_the_default_dtype_of_each_call(data):
    # notebook 07 trains in float64: the split must come in the dtype set when it is asked for,
    # even after an earlier call in another dtype was cached
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        d64 = digits.load_digits_split()
        torch.set_default_dtype(torch.float32)
        d32 = digits.load_digits_split()
    finally:
        torch.set_default_dtype(before)
    assert d64.x_train.dtype == d64.x_test.dtype == torch.float64
    assert d32.x_train.dtype == d32.x_test.dtype == torch.float32
    # pixels are multiples of 1/8: both dtypes hold them exactly
    assert torch.equal(d64.x_train, d32.x_train.double()) and torch.equal(d64.y_test, d32.y_test)


def test_split_matches_sklearn_pixels(data):
    from sklearn.datasets import load_digits

    pixels = load_digits().data
    as_unit = digits.to_unit_range(pixels)
    # every held-out digit is one of the dataset's images, scaled as x / 8 - 1
    d = torch.cdist(data.x_test.double(), as_unit.double()).min(1).values
    assert d.max() == 0
    assert digits.to_unit_range([0, 8, 16]).tolist() == [-1.0, 0.0, 1.0]


def test_reference_classifier_reads_real_digits(data):
    clf = digits.ReferenceClassifier(data)
    acc = clf.accuracy(data.x_test, data.y_test)
    assert acc > 0.95
    pred = clf.predict(data.x_test[:7])
    assert pred.dtype == torch.int64 and pred.shape == (7,)
    with pytest.raises(InputError):
        clf.predict(data.x_test[:, :10])


def test_nn_distances_against_scipy():
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(300, 64, generator=g)
    x = torch.randn(40, 64, generator=g)
    x[:3] = ref[:3]
    want = torch.as_tensor(cKDTree(ref.double().numpy()).query(x.double().numpy())[0])
    got = digits.nn_distances(x, ref, chunk=7)
    assert torch.allclose(got.double(), want, atol=1e-4)
    assert got[:3].abs().max() < 1e-3
    with pytest.raises(InputError):
        digits.nn_distances(x, ref[:, :5])


def test_per_class_accuracy():
    pred = torch.tensor([0, 0, 1, 2, 2, 2])
    y = torch.tensor([0, 1, 1, 2, 2, 0])
    acc = digits.per_class_accuracy(pred, y, num_classes=4)
    assert acc[:3].tolist() == [0.5, 0.5, 1.0] and torch.isnan(acc[3])


def test_subset_like_has_the_requested_labels(data):
    picked = digits.subset_like(data.x_train, data.y_train, data.y_test, torch.Generator().manual_seed(0))
    assert picked.shape == data.x_test.shape
    # each picked row is a training digit of the requested class, and no row is picked twice
    dist = torch.cdist(picked, data.x_train)
    idx = dist.argmin(1)
    assert dist.min(1).values.max() == 0
    assert torch.equal(data.y_train[idx], data.y_test)
    assert len(set(idx.tolist())) == len(idx) or len({tuple(r) for r in picked.tolist()}) < len(picked)
    with pytest.raises(InputError):
        digits.subset_like(data.x_train[:5], data.y_train[:5], data.y_test)


def test_tile_places_images():
    imgs = torch.stack([torch.full((64,), v) for v in (-1.0, 0.0, 1.0)])
    imgs[2, 0] = 0.5
    pic = digits.tile(imgs, ncols=2, pad=1)
    assert pic.shape == (2 * 9 + 1, 2 * 9 + 1)
    assert np.all(pic[1:9, 10:18] == 0.0)  # second image, first row
    assert pic[10, 1] == 0.5 and np.all(pic[10:18, 10:18] == -1.0)  # third image; empty slot is background


def test_show_grid_draws_the_tiled_array(data):
    fig, ax = plt.subplots()
    im = digits.show_grid(ax, data.x_test[:20], ncols=10, title="t", row_labels=["a", "b"])
    assert np.array_equal(im.get_array(), digits.tile(data.x_test[:20], 10))
    assert ax.get_title() == "t" and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    plt.close(fig)


def test_frechet_distance_is_the_w2_of_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g, dtype=torch.float64)
    assert digits.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # shifted by m and scaled by s: |m|^2 + d (1 - s)^2 for unit Gaussians, up to sampling noise
    b = 2.0 * torch.randn(4000, 3, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0.0, 0.0])
    assert digits.frechet_distance(a, b) == pytest.approx(1.0 + 3 * 1.0, rel=0.1)
    with pytest.raises(InputError, match="at least 2 points"):
        digits.frechet_distance(a[:1], b[:1])
    with pytest.raises(InputError):
        digits.frechet_distance(a, b[:, :2])


def test_reference_classifier_features_separate_real_from_noise(data):
    clf = digits.ReferenceClassifier(data)
    feats = clf.features(data.x_test)
    assert feats.shape == (len(data.x_test), 10) and feats.dtype == torch.float64
    assert torch.equal(feats.argmax(1), clf.predict(data.x_test))
    half = len(data.x_train) // 2
    floor = digits.frechet_distance(clf.features(data.x_train[:half]), feats)
    noise = torch.randn(data.x_test.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert digits.frechet_distance(clf.features(noise), feats) > 5 * floor

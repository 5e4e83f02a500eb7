"""Metrics against independent closed forms and hand-computed values; the Inception feature path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchvision.models.inception import InceptionA

from i2icli.errors import CheckpointError, UsageError
from i2icli.eval import metrics
from i2icli.eval.inception import FIDInceptionA, build_fid_inception, load_fid_inception


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


# ---------------------------------------------------------------- Fréchet distance


def test_frechet_matches_eigendecomposition_closed_form():
    rng = np.random.default_rng(1)
    d = 5
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    assert not np.allclose(s1 @ s2, s2 @ s1)  # the case where sqrt(s1 s2) != sqrt(s1) sqrt(s2)
    root1 = _sqrt_psd(s1)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)).sum()
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9)


def test_frechet_matches_pytorch_fid_on_non_commuting_gaussians():
    import pytorch_fid.fid_score as pytorch_fid  # in the test extra: a hard dependency of this check
    rng = np.random.default_rng(7)
    for d in (3, 16):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        assert not np.allclose(s1 @ s2, s2 @ s1)
        reference = pytorch_fid.calculate_frechet_distance(mu1, s1, mu2, s2)
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-7)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(400, 8, generator=gen)
    noise = torch.randn(400, 8, generator=gen)
    assert abs(metrics.fid_from_features(feats, feats)) < 1e-8
    scores = [metrics.fid_from_features(feats, feats + s * noise) for s in (0.1, 0.3, 1.0, 3.0)]
    assert all(a < b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] > 0


def _classic_frechet(mu1, s1, mu2, s2) -> float:
    """The textbook route, sqrtm of the non-symmetric product: right only where it is well-posed."""
    from scipy import linalg  # scipy comes with the test extra (pytorch-fid, scikit-image need it)

    root = linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


@pytest.mark.parametrize("n", [5, 16, 17, 400])  # d = 16: n < d, n = d, n = d + 1, n >> d
def test_fid_of_a_set_with_itself_is_zero_for_any_sample_count(n):
    feats = np.random.default_rng(n).normal(size=(n, 16)) * np.linspace(0.1, 10, 16)  # anisotropic
    assert 0.0 <= metrics.fid_from_features(feats, feats) <= 1e-6


@pytest.mark.parametrize("n", [5, 16, 400])
def test_fid_is_symmetric_in_its_arguments(n):
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(n, 16)), rng.normal(size=(n + 3, 16)) * 2 + 0.5
    assert metrics.fid_from_features(a, b) == pytest.approx(metrics.fid_from_features(b, a), rel=1e-9, abs=1e-9)


def test_fid_equals_the_classic_formula_on_well_conditioned_statistics():
    rng = np.random.default_rng(5)
    for d in (4, 32, 128):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _random_spd(rng, d) / d + np.eye(d), _random_spd(rng, d) / d + np.eye(d)
        assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_classic_frechet(mu1, s1, mu2, s2), abs=1e-6)


def test_fid_on_rank_deficient_sets_is_real_where_sqrtm_of_the_product_is_not():
    # The quality smoke's shape: far fewer images than the judge's 128 feature dimensions, features
    # after a ReLU. There sqrtm(s1 @ s2) comes back with imaginary parts of order 1-40 (scipy 1.17).
    from scipy import linalg

    found_complex = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        a = np.maximum(rng.normal(size=(4, 128)), 0)
        b = np.maximum(rng.normal(size=(4, 128)) + 0.3, 0)
        (mu1, s1), (mu2, s2) = metrics.feature_stats(a), metrics.feature_stats(b)
        root = linalg.sqrtm(s1 @ s2)
        found_complex += bool(np.iscomplexobj(root) and np.abs(root.imag).max() > 1e-3)
        # Independent route: s1 s2 is similar to a PSD matrix, so its eigenvalues are real and >= 0.
        eig = np.linalg.eigvals(s1 @ s2).real
        cross = np.sqrt(np.clip(eig, 0, None)).sum()
        expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross
        value = metrics.frechet_distance(mu1, s1, mu2, s2)
        assert math.isfinite(value) and value >= 0
        assert value == pytest.approx(expected, rel=1e-6)
    assert found_complex, "the classic route never failed here: this test no longer exercises the fix"


@pytest.mark.parametrize(
    "a, b",
    [
        (np.outer(np.arange(10.0), np.ones(6)), np.outer(np.arange(10.0), np.ones(6)) + 1),  # rank-1 sets
        (np.ones((10, 6)), np.zeros((10, 6))),  # all-equal sets: zero covariance
        (np.ones((10, 6)), np.ones((10, 6))),
        (np.random.default_rng(3).normal(size=(6, 16)), np.random.default_rng(4).normal(size=(6, 16)) + 1.0),
    ],
)
def test_fid_is_finite_and_non_negative_on_degenerate_sets(a, b):
    value = metrics.fid_from_features(a, b)
    assert math.isfinite(value) and value >= 0
    assert value == pytest.approx(metrics.fid_from_features(b, a), abs=1e-9)


def test_all_equal_sets_give_the_squared_distance_of_their_means():
    assert metrics.fid_from_features(np.ones((10, 6)), np.zeros((10, 6))) == pytest.approx(6.0, abs=1e-12)


def test_fid_sample_note_flags_no_more_samples_than_dimensions():
    assert metrics.fid_sample_note("digits-uci", 200, 300, 128) is None
    for n in (8, 128):
        note = metrics.fid_sample_note("digits-uci", n, 300, 128)
        assert note is not None and note.startswith("fid-digits-uci:") and f"{n} real" in note and "biased" in note


def test_feature_stats_is_mean_and_unbiased_covariance():
    feats = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = metrics.feature_stats(torch.from_numpy(feats))
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, [[4.0, 7.0], [7.0, 13.0]])


# ---------------------------------------------------------------- KID


def _direct_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² written out pair by pair with k(a, b) = (a·b/d + 1)³."""
    m, d = x.shape

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + 1.0) ** 3

    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_matches_direct_unbiased_mmd():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 6)), rng.normal(size=(20, 6)) + 0.5
    # A subset as large as the set is a permutation of it, and MMD² ignores order.
    mean, std = metrics.kid(x, y, subsets=3, subset_size=20, seed=0)
    assert mean == pytest.approx(_direct_mmd2(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_separates_distributions_and_is_seeded():
    rng = np.random.default_rng(4)
    real = rng.normal(size=(300, 6))
    same = rng.normal(size=(300, 6))
    shifted = rng.normal(size=(300, 6)) + 1.0
    near, _ = metrics.kid(real, same, subsets=20, subset_size=100, seed=0)
    far, _ = metrics.kid(real, shifted, subsets=20, subset_size=100, seed=0)
    assert abs(near) < 0.1 < far
    assert metrics.kid(real, shifted, 20, 100, seed=5) == metrics.kid(real, shifted, 20, 100, seed=5)


def test_kid_subset_larger_than_set_is_a_usage_error():
    with pytest.raises(UsageError, match="subset size"):
        metrics.kid(np.zeros((10, 3)), np.zeros((50, 3)), subsets=1, subset_size=20)


# ---------------------------------------------------------------- paired image metrics


def _from_levels(levels: list[list[list[int]]]) -> torch.Tensor:
    """8-bit levels (C, H, W) -> one [-1, 1] image (1, C, H, W) that quantises back exactly."""
    return torch.tensor(levels, dtype=torch.float64)[None] / 127.5 - 1.0


def test_psnr_of_a_constant_offset():
    a = torch.zeros(2, 3, 8, 8)
    # mse = 0.01 on a range of 2: 10 log10(4 / 0.01) = 10 log10(400)
    assert metrics.psnr(a, a + 0.1) == pytest.approx(10 * math.log10(400.0), rel=1e-6)
    assert metrics.psnr(a, a) == math.inf


def test_l1_is_the_mean_absolute_difference():
    a = torch.tensor([[[[0.0, 0.5], [1.0, -1.0]]]])
    b = torch.tensor([[[[0.5, 0.5], [0.0, -1.0]]]])
    assert metrics.l1(a, b) == pytest.approx((0.5 + 0 + 1 + 0) / 4)


def test_ssim_of_identical_images_is_one():
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert metrics.ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_constant_images_is_the_luminance_term():
    a, b = torch.full((1, 1, 12, 12), 0.5), torch.full((1, 1, 12, 12), -0.5)
    c1 = (0.01 * 2.0) ** 2  # variances and covariance are 0, so only the luminance term remains
    assert metrics.ssim(a, b) == pytest.approx((2 * 0.5 * -0.5 + c1) / (0.5**2 + 0.5**2 + c1), rel=1e-9)


def test_ssim_matches_scikit_image():
    import skimage.metrics as skimage_metrics  # scikit-image is in the test extra
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(1, 3, 24, 20, generator=gen) * 2 - 1
    b = (a + 0.3 * torch.randn(1, 3, 24, 20, generator=gen)).clamp(-1, 1)
    reference = skimage_metrics.structural_similarity(
        a[0].double().numpy(), b[0].double().numpy(), channel_axis=0, data_range=2.0,
        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    )
    assert metrics.ssim(a, b) == pytest.approx(reference, rel=1e-6)


def test_ssim_refuses_images_smaller_than_the_window():
    with pytest.raises(UsageError, match="11x11"):
        metrics.ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_pixel_accuracy_uses_the_largest_channel_difference():
    a = _from_levels([[[10, 20], [30, 40]], [[10, 20], [30, 40]], [[10, 20], [30, 40]]])
    # Per pixel, the largest channel difference is 0, 4, 5 and 10 levels.
    b = _from_levels([[[10, 24], [30, 40]], [[10, 20], [35, 40]], [[10, 17], [30, 50]]])
    assert metrics.pixel_accuracy(a, b, threshold=5) == pytest.approx(0.5)  # 0 and 4 are < 5
    assert metrics.pixel_accuracy(a, b, threshold=1) == pytest.approx(0.25)  # only the exact match
    assert metrics.pixel_accuracy(a, b, threshold=11) == pytest.approx(1.0)


def test_image_metrics_refuse_mismatched_shapes():
    with pytest.raises(UsageError, match="one shape"):
        metrics.l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


# ---------------------------------------------------------------- diversity


def test_diversity_is_zero_for_identical_samples():
    same = torch.ones(4, 3)
    assert metrics.diversity([same, 2 * same]) == 0.0


def test_diversity_is_the_mean_pairwise_distance_over_inputs():
    spread = torch.tensor([[0.0, 0.0], [3.0, 4.0]])  # one pair, 5 apart
    collapsed = torch.zeros(2, 2)
    assert metrics.diversity([spread, collapsed]) == pytest.approx(2.5)
    three = torch.tensor([[0.0], [1.0], [3.0]])  # pairs 1, 3, 2
    assert metrics.diversity([three]) == pytest.approx(2.0)


def test_diversity_needs_two_samples_per_input():
    with pytest.raises(UsageError, match="K >= 2"):
        metrics.diversity([torch.zeros(1, 4)])


# ---------------------------------------------------------------- Inception features


def test_fid_inception_a_differs_from_torchvision_only_where_padding_is_pooled():
    torch.manual_seed(0)
    ours = FIDInceptionA(8, pool_features=4).eval()
    theirs = InceptionA(8, pool_features=4).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(1, 8, 6, 6) + 1.0  # positive, so zero padding lowers the border averages
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs()  # (1, 64 + 64 + 96 + 4, 6, 6)
    assert diff[:, :-4].max() == 0  # the three conv branches are unchanged
    pool = diff[0, -4:]  # the pool branch: changed on the border only
    assert pool[:, 1:-1, 1:-1].max() == 0
    assert pool[:, 0, :].max() > 0


@pytest.fixture(scope="module")
def inception_state() -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in build_fid_inception().state_dict().items()}


def test_fid_inception_layout(inception_state):
    assert inception_state["fc.weight"].shape == (1008, 2048)
    assert not any(k.startswith("AuxLogits.") for k in inception_state)
    assert inception_state["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_load_fid_inception_by_path_gives_2048_features(tmp_path, inception_state, suffix):
    path = tmp_path / f"pt_inception{suffix}"
    if suffix == ".safetensors":
        save_file(inception_state, str(path))
    else:
        torch.save(inception_state, path)
    extractor = load_fid_inception(path)
    images = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(0))  # [0, 1], any size
    with torch.no_grad():
        feats = extractor(images)
        gray = extractor(images[:, :1])
    assert feats.shape == (2, 2048) and gray.shape == (2, 2048)
    assert torch.isfinite(feats).all()
    assert torch.equal(extractor.net.fc.weight, inception_state["fc.weight"])


def test_load_fid_inception_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_fid_inception(tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(wrong))
    with pytest.raises(CheckpointError, match="missing keys"):
        load_fid_inception(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_fid_inception(garbage)

"""Translation metrics as small pure functions on tensors and arrays.

Distribution metrics take feature matrices (N, D) from any extractor (a judge's ``features`` for
"FID-digits", Inception pool features for true FID); image metrics take images in [-1, 1] (B, C, H, W).

- Fréchet distance: Heusel et al., "GANs Trained by a Two Time-Scale Update Rule...", NeurIPS 2017.
- KID: Bińkowski et al., "Demystifying MMD GANs", ICLR 2018 (unbiased MMD², cubic polynomial kernel).
- SSIM: Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity", TIP 2004.
- Pixel accuracy: GcGAN (Fu et al., CVPR 2019) scores aerial->map outputs this way.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from i2icli.errors import UsageError

ArrayLike = np.ndarray | torch.Tensor


def _as_float64(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def feature_stats(feats: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = _as_float64(feats)
    if f.ndim != 2 or len(f) < 2:
        raise UsageError(f"feature_stats needs a (N, D) matrix with N >= 2, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Eigenvalues (D,) of a matrix that is PSD in exact arithmetic: those within rounding of 0 become 0.

    A rank-deficient covariance has eigenvalues that are 0 up to ~D·eps·max|w|, of either sign; their
    square roots (~1e-8 each) would otherwise add noise that breaks symmetry and FID(x, x) = 0.
    """
    tol = np.abs(w).max(initial=0.0) * len(w) * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """Square root (D, D) of a symmetric PSD matrix through its eigendecomposition."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(_psd_eigenvalues(w))) @ v.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64:

    ``|mu1 - mu2|² + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^½)``.

    The classic route takes ``sqrtm(sigma1 @ sigma2)``: that product is not symmetric, and for
    rank-deficient covariances (fewer samples than dimensions) its root is ill-posed and can come
    back complex. ``sigma1 sigma2`` is similar to the symmetric PSD ``A = s1½ sigma2 s1½`` (s1½ the
    PSD root of sigma1), so both have the same eigenvalues and ``tr((sigma1 sigma2)^½) = Σ sqrt(eig(A))``:
    real and non-negative by construction, and the result is clipped at 0 against rounding.
    """
    mu1, mu2 = _as_float64(mu1), _as_float64(mu2)
    sigma1, sigma2 = _as_float64(sigma1), _as_float64(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise UsageError(f"feature statistics differ in shape: {mu1.shape} vs {mu2.shape}")
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1  # (D, D), symmetric PSD up to rounding
    cross = np.sqrt(_psd_eigenvalues(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * cross)
    return max(value, 0.0)


def fid_from_features(feats_real: ArrayLike, feats_fake: ArrayLike) -> float:
    """Fréchet distance between the Gaussian fits of two feature sets (N, D) and (M, D)."""
    return frechet_distance(*feature_stats(feats_real), *feature_stats(feats_fake))


def fid_sample_note(tag: str, n_real: int, n_fake: int, dim: int) -> str | None:
    """A warning for a report when either set has fewer samples than feature dimensions, else None.

    With N <= D the covariance is rank-deficient: the figure is still defined and finite, but it is
    biased (upward, and strongly dependent on N), so it only compares with figures of the same N.
    """
    if min(n_real, n_fake) > dim:
        return None
    return (
        f"fid-{tag}: {n_real} real / {n_fake} translated images for {dim} feature dimensions "
        "(no more samples than dimensions: singular covariance, the figure is biased; compare it only at the same N)"
    )


def _poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # k(x, y) = (x·y / d + 1)³, the KID paper's default kernel.
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    m = len(x)
    k_xx, k_yy, k_xy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    # The unbiased estimator leaves out the diagonal (each sample paired with itself).
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.mean())


def kid(
    feats_real: ArrayLike, feats_fake: ArrayLike, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and std (ddof 0) of the unbiased MMD² over random subsets.

    Each subset draws ``subset_size`` rows without replacement from each set.
    """
    real, fake = _as_float64(feats_real), _as_float64(feats_fake)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise UsageError(f"kid needs (N, D) and (M, D) features, got {real.shape} and {fake.shape}")
    if not 2 <= subset_size <= min(len(real), len(fake)):
        raise UsageError(
            f"KID subset size {subset_size} must be between 2 and the smaller set size "
            f"{min(len(real), len(fake))}"
        )
    rng = np.random.default_rng(seed)
    scores = [
        _mmd2_unbiased(
            real[rng.choice(len(real), subset_size, replace=False)],
            fake[rng.choice(len(fake), subset_size, replace=False)],
        )
        for _ in range(subsets)
    ]
    return float(np.mean(scores)), float(np.std(scores))


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 4:
        raise UsageError(f"image metrics need two (B, C, H, W) batches of one shape, got {a.shape}, {b.shape}")


def l1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference over all pixels (in the images' own units)."""
    _check_pair(a, b)
    return float((a.double() - b.double()).abs().mean())


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> float:
    """Peak signal-to-noise ratio in dB, per image then averaged; ``inf`` when an image pair is equal.

    ``data_range`` is max - min of the pixel scale: 2.0 for [-1, 1].
    """
    _check_pair(a, b)
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(dim=1)  # (B,)
    return float((10.0 * torch.log10(data_range**2 / mse)).mean())


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]  # (size, size), sums to 1


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    data_range: float = 2.0,
    window: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Structural similarity (Wang et al. 2004): Gaussian-weighted local statistics, averaged over the
    valid (unpadded) positions and the channels of each image, then over images.

    Matches ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)``; images must be at least ``window`` pixels on each side.
    """
    _check_pair(a, b)
    if min(a.shape[-2:]) < window:
        raise UsageError(f"SSIM needs images of at least {window}x{window} pixels, got {tuple(a.shape[-2:])}")
    channels = a.shape[1]
    kernel = _gaussian_window(window, sigma).expand(channels, 1, window, window)  # depthwise

    def local_mean(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=channels)  # (B, C, H - window + 1, W - window + 1)

    x, y = a.double(), b.double()
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.flatten(1).mean(dim=1).mean())


def pixel_accuracy(a: torch.Tensor, b: torch.Tensor, threshold: float) -> float:
    """Fraction of pixels where max(|Δr|, |Δg|, |Δb|) < ``threshold``, in 0-255 units.

    Both [-1, 1] batches are first quantised to 8-bit values, as they would be when saved as PNG,
    so ``threshold=1`` counts exact matches and ``threshold=5`` allows a difference of up to 4 levels
    in every channel.
    """
    _check_pair(a, b)

    def to_255(x: torch.Tensor) -> torch.Tensor:
        return ((x.double().clamp(-1, 1) + 1) * 127.5).round()

    worst = (to_255(a) - to_255(b)).abs().amax(dim=1)  # (B, H, W): the largest channel difference
    return float((worst < threshold).double().mean())


def diversity(feats_per_input: list[torch.Tensor]) -> float:
    """Mean pairwise L2 distance among the K samples (K, D) made for each input, averaged over inputs."""
    if not feats_per_input or any(f.ndim != 2 or len(f) < 2 for f in feats_per_input):
        raise UsageError("diversity needs, for each input, a (K, D) tensor with K >= 2 samples")
    return float(torch.stack([torch.pdist(f.double()).mean() for f in feats_per_input]).mean())

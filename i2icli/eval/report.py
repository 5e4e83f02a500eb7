"""Evaluate translations: a model on a prepared dataset's test split, or two folders of images.

``evaluate(subject, data)`` translates ``testA`` (a2b) and ``testB`` (b2a) of a dataset laid out by
``i2i data prepare`` and reports every metric that applies, as read from ``i2i-dataset.json``:

- ``class-kept``: the dataset's content judge (reads either domain; else the target domain's class
  judge) on the translations, scored against the source labels (only where translations should
  keep their labels, e.g. digits);
- ``looks-like-target``: the fraction the domain judge assigns to the target domain;
- ``kept-as-target``: the fraction that do both at once (the digit kept and in the target's style);
- ``fid-<judge>`` / ``kid-<judge>``: FID / KID on the target class judge's penultimate features,
  translations against the real target test images (named after the judge, never plain FID);
- ``psnr``, ``ssim``, ``l1``, ``pixel-acc``: against ``testB_paired`` ground truth (a2b only);
- ``diversity``: mean pairwise judge-feature distance between styles sampled for one input (style
  models only), with the same figure for groups of real target images as a reference;
- ``fid-inception`` / ``kid-inception``: only with an Inception weights file.

A "subject" is anything that translates: a loaded model, or the do-nothing baseline that returns
its input unchanged (the row every benchmark compares against).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from i2icli.data.layout import PAIRED_DIR, TEST_SPLITS
from i2icli.errors import InputError, UsageError
from i2icli.eval import metrics
from i2icli.eval.catalogue import PAIRED_METRICS
from i2icli.eval.datasets import DatasetInfo, Split, image_channels, load_split, read_all, read_dataset_info
from i2icli.eval.judges import Judge, extract_features, list_judges, load_judge, predict
from i2icli.imageio import to_pil, to_tensor
from i2icli.listing import list_images
from i2icli.methods.base import DIRECTIONS, Direction

if TYPE_CHECKING:
    from i2icli.eval.inception import FIDInceptionFeatures
    from i2icli.inference import LoadedModel

# Pixel accuracy counts a pixel as right when every channel differs by less than this many 8-bit levels.
PIXEL_THRESHOLD = 16
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000  # the usual KID subset size; smaller test sets use their own size

# (C, H, W) images in [-1, 1] -> their translations, same order.
Translator = Callable[[list[torch.Tensor], Direction], list[torch.Tensor]]
# One input (C, H, W), direction, K, seed -> its translations with K styles drawn from the seed.
StyleSampler = Callable[[torch.Tensor, Direction, int, int], list[torch.Tensor]]


# --------------------------------------------------------------------------- subjects


@dataclass(frozen=True)
class Subject:
    """Something to evaluate: a translate function, its channel counts, optionally a style sampler."""

    name: str
    directions: tuple[Direction, ...]
    channels: Callable[[Direction], tuple[int, int]]  # (input, output) channels
    translate: Translator
    sample_styles: StyleSampler | None = None
    no_styles: str = "no style codes"  # why diversity does not apply


def _in_batches(
    images: list[torch.Tensor], batch_size: int, fn: Callable[[torch.Tensor], torch.Tensor]
) -> list[torch.Tensor]:
    """Apply ``fn`` to (B, C, H, W) stacks of consecutive equal-size images; one output per image."""
    out: list[torch.Tensor] = []
    start = 0
    while start < len(images):
        end = start + 1
        while end < len(images) and end - start < batch_size and images[end].shape == images[start].shape:
            end += 1
        out += list(fn(torch.stack(images[start:end])))
        start = end
    return out


def model_subject(
    model: LoadedModel, name: str, *, batch_size: int = 64, seed: int = 0, size: int | str = "auto"
) -> Subject:
    """A loaded model as a subject; models with style codes translate with styles drawn from ``seed``.

    ``size`` is translate's ``--size``: with ``auto`` each test image is fed at the model's training
    scale; translations are resized back to the test image's size, so they are compared with real
    images as they are.
    """
    from i2icli.inference import input_scale, translate_tensors

    scale = input_scale(model, size)

    def down(x: torch.Tensor) -> torch.Tensor:  # a test image at the scale the model is fed
        return x if scale.target is None else to_tensor(scale.resize(to_pil(x))[0])

    def up(ys: list[torch.Tensor], like: list[torch.Tensor]) -> list[torch.Tensor]:  # back to the test images' sizes
        return [_resize_tensor(y, tuple(x.shape[1:])) for x, y in zip(like, ys)]

    if not model.has_styles:

        def translate(images: list[torch.Tensor], direction: Direction) -> list[torch.Tensor]:
            return up(translate_tensors(model, [down(x) for x in images], direction, batch_size=batch_size), images)

        why = f"{name} is a {model.config.method} model (no style codes)"
        return Subject(name, model.directions, model.channels, translate, None, why)

    from i2icli.multimodal import prior_styles, translate_with_styles

    def translate_styled(images: list[torch.Tensor], direction: Direction) -> list[torch.Tensor]:
        # One prior style per image, the same on every call, so scores repeat.
        styles = list(prior_styles(model, len(images), seed))
        out = translate_tensors(model, [down(x) for x in images], direction, batch_size=batch_size, styles=styles)
        return up(out, images)

    def sample(image: torch.Tensor, direction: Direction, k: int, style_seed: int) -> list[torch.Tensor]:
        out = translate_with_styles(model, down(image), prior_styles(model, k, style_seed), direction)
        return up(out, [image] * k)

    return Subject(name, model.directions, model.channels, translate_styled, sample)


def _resize_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) in [-1, 1] -> (C, H, W), bicubic with antialiasing, clamped."""
    if tuple(x.shape[1:]) == tuple(size):
        return x
    y = torch.nn.functional.interpolate(x[None], size=tuple(size), mode="bicubic", antialias=True, align_corners=False)
    return y[0].clamp(-1, 1)


def _convert_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(C, H, W) -> (channels, H, W): grey repeated to RGB, or RGB to BT.601 luma."""
    if x.shape[0] == channels:
        return x
    if channels == 3:
        return x.expand(3, -1, -1).clone()
    luma = torch.tensor((0.299, 0.587, 0.114), dtype=x.dtype).view(3, 1, 1)
    return (x * luma).sum(dim=0, keepdim=True)


def do_nothing_subject(data: Path) -> Subject:
    """The baseline that returns every input unchanged (channels converted where the domains differ)."""
    ch_a, ch_b = image_channels(Path(data) / "testA"), image_channels(Path(data) / "testB")

    def channels(direction: Direction) -> tuple[int, int]:
        return (ch_a, ch_b) if direction == "a2b" else (ch_b, ch_a)

    def translate(images: list[torch.Tensor], direction: Direction) -> list[torch.Tensor]:
        return [_convert_channels(x, channels(direction)[1]) for x in images]

    return Subject("do-nothing", DIRECTIONS, channels, translate, None, "the do-nothing baseline has no styles")


# --------------------------------------------------------------------------- reports


@dataclass(frozen=True)
class EvalOptions:
    """Choices for ``evaluate``; the defaults score the whole test split."""

    directions: tuple[Direction, ...] | None = None  # None: every direction the subject has
    limit: int | None = None  # score a seeded random N test images of each folder
    inception: Path | None = None  # pt_inception-2015-12-05 weights: adds fid-/kid-inception
    styles: int = 8  # K styles sampled per input for diversity
    diversity_inputs: int = 50  # inputs (and groups of real images) diversity averages over
    seed: int = 0
    batch_size: int = 64
    pixel_threshold: int = PIXEL_THRESHOLD


@dataclass(frozen=True)
class DirectionReport:
    """The figures for one direction; ``reference`` holds context that does not depend on the subject."""

    direction: Direction
    source: str
    target: str
    n: int  # test images translated
    metrics: dict[str, float]
    reference: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "metric: why not"
    notes: list[str] = field(default_factory=list)  # caveats on figures that were computed


@dataclass(frozen=True)
class ModelReport:
    """``evaluate``'s result; ``to_dict`` is the ``--json`` output."""

    subject: str
    data: str
    dataset: str | None
    pixel_threshold: int  # pixel-acc: every channel differs by less than this many 8-bit levels
    directions: list[DirectionReport]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _features(judge: Judge, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Judge features (N, D); judges resize to 28 px and turn RGB grey, so image sizes may differ."""
    return torch.stack(_in_batches(list(images), 500, lambda x: extract_features(judge, x)))


def _predict(judge: Judge, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Predicted class indices (N,)."""
    return torch.stack(_in_batches(list(images), 500, lambda x: predict(judge, x)))


def _distribution_metrics(
    real: torch.Tensor, fake: torch.Tensor, tag: str, notes: list[str], kinds: Sequence[str] = ("fid", "kid")
) -> dict[str, float]:
    """FID and/or KID between feature sets (N, D) and (M, D), keyed ``fid-<tag>`` / ``kid-<tag>``.

    A FID from no more images than feature dimensions is returned, and ``notes`` gets a line saying so.
    """
    if min(len(real), len(fake)) < 2:
        raise UsageError(f"FID/KID-{tag} need at least 2 real and 2 translated images")
    found = {}
    if "fid" in kinds:
        found[f"fid-{tag}"] = metrics.fid_from_features(real, fake)
        note = metrics.fid_sample_note(tag, len(real), len(fake), real.shape[1])
        if note is not None:
            notes.append(note)
    if "kid" in kinds:
        size = min(KID_MAX_SUBSET, len(real), len(fake))
        found[f"kid-{tag}"] = metrics.kid(real, fake, subsets=KID_SUBSETS, subset_size=size)[0]
    return found


def _inception_features(net: FIDInceptionFeatures, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Inception pool features (N, 2048); the extractor takes [0, 1] and resizes to 299 px itself."""
    with torch.inference_mode():
        return torch.stack(_in_batches(list(images), 16, lambda x: net((x + 1) / 2)))


def _load_inception(path: Path | None) -> FIDInceptionFeatures | None:
    from i2icli.eval.inception import load_fid_inception

    return None if path is None else load_fid_inception(path)


def paired_metrics(fakes: Sequence[torch.Tensor], truths: Sequence[torch.Tensor], threshold: int) -> dict[str, float]:
    """PSNR / SSIM / L1 / pixel accuracy per image pair (C, H, W), averaged; SSIM only for sides >= 11 px."""
    per_image: dict[str, list[float]] = {k: [] for k in PAIRED_METRICS}
    for fake, truth in zip(fakes, truths, strict=True):
        a, b = fake[None], truth[None]  # (1, C, H, W)
        per_image["psnr"].append(metrics.psnr(a, b))
        per_image["l1"].append(metrics.l1(a, b))
        per_image["pixel-acc"].append(metrics.pixel_accuracy(a, b, threshold))
        if min(a.shape[-2:]) >= 11:
            per_image["ssim"].append(metrics.ssim(a, b))
    return {k: sum(v) / len(v) for k, v in per_image.items() if v}


def _sizes_match(
    fakes: Sequence[torch.Tensor], truths: Sequence[torch.Tensor], names: Sequence[str], where: Path
) -> None:
    for fake, truth, name in zip(fakes, truths, names, strict=True):
        if fake.shape != truth.shape:
            raise InputError(f"{where / name}: size {tuple(truth.shape)} differs from the output's {tuple(fake.shape)}")


def _diversity(
    subject: Subject, judge: Judge, sources: Split, real: Split, direction: Direction, opts: EvalOptions
) -> tuple[float, float]:
    """(diversity of sampled outputs, the same figure for random groups of real target images)."""
    assert subject.sample_styles is not None
    k, n = opts.styles, min(opts.diversity_inputs, len(sources.images))
    # Input i gets its own K styles (seed + i); each sample set becomes judge features (K, D).
    feats = [
        _features(judge, subject.sample_styles(img, direction, k, opts.seed + i))
        for i, img in enumerate(sources.images[:n])
    ]
    order = torch.randperm(len(real.images), generator=torch.Generator().manual_seed(opts.seed))
    groups = [order[i : i + k] for i in range(0, min(len(order) - k + 1, n * k), k)]  # n disjoint groups of K
    if not groups:
        raise UsageError(f"diversity needs at least {k} real target images, found {len(real.images)}")
    real_feats = _features(judge, real.images)  # (N_real, D)
    return metrics.diversity(feats), metrics.diversity([real_feats[g] for g in groups])


@dataclass
class _Scores:
    """What one direction has found so far (filled in by the ``_score_*`` helpers)."""

    metrics: dict[str, float] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Direction:
    """One direction's data: where it reads from, and the images it has."""

    direction: Direction
    source: int  # domain index: 0 = a, 1 = b
    target: int
    sources: Split
    real: Split  # real target-domain test images
    fakes: list[torch.Tensor]  # translations of ``sources``


def _score_class(info: DatasetInfo, d: _Direction, out: _Scores) -> tuple[Judge | None, torch.Tensor | None]:
    """class-kept (read by the dataset's content judge when it has one, else by the target domain's
    class judge), that reader's accuracy on real target images, and FID/KID on the target class
    judge's features. Returns the target class judge and which translations kept their class
    ((N,) bool; None where class-kept does not apply)."""
    name = info.class_judges[d.target]
    reader = info.content_judge or name
    kept = None
    if reader is None:
        out.skipped.append(f"class-kept: no class judge for domain {info.domains[d.target]!r}")
    elif not info.keeps_labels:
        out.skipped.append("class-kept: this dataset's labels name the domain, so translations should change them")
    elif d.sources.labels is None or d.real.labels is None:
        out.skipped.append("class-kept: the test folders have no <folder>_labels.csv")
    else:
        judge = load_judge(reader)
        kept = _predict(judge, d.fakes) == d.sources.labels  # (N,) bool
        out.metrics["class-kept"] = float(kept.double().mean())
        out.reference["real-class-acc"] = float((_predict(judge, d.real.images) == d.real.labels).double().mean())
    if name is None:
        out.skipped.append(f"fid/kid: no class judge for domain {info.domains[d.target]!r}")
        return None, kept
    judge = load_judge(name)
    out.metrics |= _distribution_metrics(_features(judge, d.real.images), _features(judge, d.fakes), name, out.notes)
    return judge, kept


def _score_domain(info: DatasetInfo, d: _Direction, out: _Scores) -> torch.Tensor | None:
    """looks-like-target; returns which translations the domain judge puts in the target domain ((N,) bool)."""
    if info.domain_judge is None:
        out.skipped.append("looks-like-target: no domain judge for this dataset")
        return None
    # The domain judge's classes are (domain a, domain b), so the target's index is its class.
    on_target = _predict(load_judge(info.domain_judge), d.fakes) == d.target
    out.metrics["looks-like-target"] = float(on_target.double().mean())
    return on_target


def _score_paired(info: DatasetInfo, d: _Direction, channels: int, threshold: int, out: _Scores) -> None:
    if not info.paired:
        return
    if d.direction != "a2b":
        out.skipped.append("psnr/ssim/l1/pixel-acc: ground truth exists for a2b only")
        return
    truths = load_split(info.root, PAIRED_DIR, channels)
    index = {name: i for i, name in enumerate(truths.names)}
    missing = [n for n in d.sources.names if n not in index]
    if missing:
        raise InputError(f"{info.root / PAIRED_DIR / missing[0]}: no ground truth for testA/{missing[0]}")
    matched = [truths.images[index[n]] for n in d.sources.names]
    _sizes_match(d.fakes, matched, d.sources.names, info.root / PAIRED_DIR)
    out.metrics |= paired_metrics(d.fakes, matched, threshold)


def _score_diversity(subject: Subject, judge: Judge | None, d: _Direction, opts: EvalOptions, out: _Scores) -> None:
    if subject.sample_styles is None:
        out.skipped.append(f"diversity: {subject.no_styles}")
    elif judge is None:
        out.skipped.append("diversity: no judge to give features for this dataset")
    else:
        out.metrics["diversity"], out.reference["real-diversity"] = _diversity(
            subject, judge, d.sources, d.real, d.direction, opts
        )


# The stages ``evaluate`` reports per direction through ``on_stage``.
STAGES_PER_DIRECTION = 3


def _evaluate_direction(
    subject: Subject, info: DatasetInfo, direction: Direction, opts: EvalOptions, inception: FIDInceptionFeatures | None,
    stage: Callable[[str], None],
) -> DirectionReport:  # fmt: skip
    src, tgt = (0, 1) if direction == "a2b" else (1, 0)
    c_in, c_out = subject.channels(direction)
    sources = load_split(info.root, TEST_SPLITS[src], c_in, opts.limit, opts.seed)
    real = load_split(info.root, TEST_SPLITS[tgt], c_out, opts.limit, opts.seed)
    stage(f"{direction}: translating {len(sources.images)} test images")
    d = _Direction(direction, src, tgt, sources, real, subject.translate(sources.images, direction))
    out = _Scores()
    stage(f"{direction}: judging {len(d.fakes)} translations")
    class_judge, kept = _score_class(info, d, out)
    on_target = _score_domain(info, d, out)
    if kept is not None and on_target is not None:
        # Per image, both at once: doing nothing keeps every class but never looks like the target.
        out.metrics["kept-as-target"] = float((kept & on_target).double().mean())
    _score_paired(info, d, c_out, opts.pixel_threshold, out)
    domain_judge = load_judge(info.domain_judge) if info.domain_judge else None
    stage(f"{direction}: diversity{' and Inception features' if inception is not None else ''}")
    _score_diversity(subject, class_judge or domain_judge, d, opts, out)
    if inception is not None:
        real_f, fake_f = _inception_features(inception, real.images), _inception_features(inception, d.fakes)
        out.metrics |= _distribution_metrics(real_f, fake_f, "inception", out.notes)
    return DirectionReport(
        direction, info.domains[src], info.domains[tgt], len(d.fakes), out.metrics, out.reference, out.skipped,
        out.notes,
    )


def evaluate(
    subject: Subject, data: Path, options: EvalOptions | None = None, *,
    on_stage: Callable[[int, int, str], None] | None = None,
) -> ModelReport:  # fmt: skip
    """Translate the test split of ``data`` with ``subject`` and report every metric that applies.

    ``on_stage(done, total, description)`` is called as each stage starts (progress display).
    """
    opts = options or EvalOptions()
    info = read_dataset_info(Path(data))
    directions = opts.directions or subject.directions
    for d in directions:
        if d not in subject.directions:
            raise UsageError(f"--direction {d}: {subject.name} only has {', '.join(subject.directions)}")
    if opts.limit is not None and opts.limit < 2:
        raise UsageError(f"--limit {opts.limit}: must be at least 2 (FID and KID need two images)")
    inception = _load_inception(opts.inception)  # ~100 MB: loaded once for both directions
    total, done = STAGES_PER_DIRECTION * len(directions), [0]

    def stage(description: str) -> None:
        if on_stage is not None:
            on_stage(done[0], total, description)
        done[0] += 1

    reports = [_evaluate_direction(subject, info, d, opts, inception, stage) for d in directions]
    if on_stage is not None:
        on_stage(total, total, "done")
    return ModelReport(subject.name, str(info.root), info.recipe, opts.pixel_threshold, reports)


def evaluate_model(
    model: LoadedModel, data: Path, options: EvalOptions | None = None, *, name: str = "model"
) -> ModelReport:
    """``evaluate`` for a loaded model (see ``i2icli.api.load_model``)."""
    opts = options or EvalOptions()
    return evaluate(model_subject(model, name, batch_size=opts.batch_size, seed=opts.seed), data, opts)


# --------------------------------------------------------------------------- two folders


@dataclass(frozen=True)
class FolderReport:
    """``evaluate_folders``'s result: image counts, pairs matched by name, and the metrics."""

    real: str
    fake: str
    n_real: int
    n_fake: int
    n_paired: int  # 0 when no paired metric was asked for
    pixel_threshold: int
    metrics: dict[str, float]
    notes: list[str] = field(default_factory=list)  # caveats on figures that were computed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_folder(folder: Path, flag: str) -> dict[str, torch.Tensor]:
    if not folder.is_dir():
        raise UsageError(f"{flag} {folder}: not a folder")
    pairs = list_images([str(folder)], recursive=True)
    if not pairs:
        raise UsageError(f"{flag} {folder}: no images")
    # RGB throughout: judges and Inception turn it grey themselves, and paired metrics need one layout.
    images = read_all([path for path, _ in pairs], 3, folder)
    return {rel.as_posix(): image for (_, rel), image in zip(pairs, images)}


def evaluate_folders(
    real: Path,
    fake: Path,
    names: Sequence[str],
    *,
    inception: Path | None = None,
    pixel_threshold: int = PIXEL_THRESHOLD,
) -> FolderReport:
    """Compare a folder of translations with a folder of real images.

    ``names`` come from ``parse_metrics``. Distribution metrics use every image of each folder;
    paired metrics match files by relative path (every fake needs a real image of the same name
    and size).
    """
    real_images, fake_images = _read_folder(Path(real), "--real"), _read_folder(Path(fake), "--fake")
    reals, fakes = list(real_images.values()), list(fake_images.values())
    found: dict[str, float] = {}
    notes: list[str] = []
    # Group the distribution metrics by feature extractor: "fid-digits-uci" -> ("digits-uci", "fid").
    wanted: dict[str, list[str]] = {}
    for name in names:
        kind, _, tag = name.partition("-")
        if kind in ("fid", "kid") and (tag in list_judges() or tag == "inception"):
            wanted.setdefault(tag, []).append(kind)
    for tag, kinds in wanted.items():
        if tag == "inception":
            if inception is None:
                raise UsageError("fid-/kid-inception need --inception PATH")
            from i2icli.eval.inception import load_fid_inception

            net = load_fid_inception(inception)
            found |= _distribution_metrics(
                _inception_features(net, reals), _inception_features(net, fakes), tag, notes, kinds
            )
        else:
            judge = load_judge(tag)
            found |= _distribution_metrics(_features(judge, reals), _features(judge, fakes), tag, notes, kinds)
    n_paired = 0
    if any(n in PAIRED_METRICS for n in names):
        missing = [n for n in fake_images if n not in real_images]
        if missing:
            raise UsageError(
                f"--fake {Path(fake) / missing[0]}: no image of that name in --real {real} "
                "(paired metrics match by name)"
            )
        truths = [real_images[n] for n in fake_images]
        _sizes_match(fakes, truths, list(fake_images), Path(real))
        scores = paired_metrics(fakes, truths, pixel_threshold)
        if "ssim" in names and "ssim" not in scores:
            raise UsageError("--metrics ssim: images must be at least 11 pixels on each side")
        found |= {k: v for k, v in scores.items() if k in names}
        n_paired = len(fakes)
    ordered = {n: found[n] for n in names}
    return FolderReport(
        str(real), str(fake), len(real_images), len(fake_images), n_paired, pixel_threshold, ordered, notes
    )

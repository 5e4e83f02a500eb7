"""Unpaired training data: determinism by (seed, step), epochs, preprocessing sizes, bad files."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_imageio import _linear_rgb_icc

from i2icli.data import transforms, unpaired
from i2icli.data.transforms import Preprocess, apply_preprocess, output_size
from i2icli.data.unpaired import (
    SkippedImageWarning,
    UnpairedImages,
    make_loader,
    mix_seed,
    resolve_domains,
    seeded,
)
from i2icli.errors import InputError, UsageError
from i2icli.imageio import LoadedImage, read_image
from i2icli.inference import prepare_input
from i2icli.listing import list_images

SMALL = Preprocess(mode="resize_and_crop", load_size=12, crop_size=8)


def _pattern(width: int, height: int, index: int, mode: str = "RGB") -> Image.Image:
    """A deterministic, left-right asymmetric test image that differs by ``index``."""
    rng = np.random.default_rng(index)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2, 0] = 255  # bright left half in red, so a flip is always visible
    return Image.fromarray(pixels).convert(mode)


def _folder(path: Path, count: int, size: tuple[int, int] = (16, 12), start: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        _pattern(*size, start + i).save(path / f"img{i:03d}.png")
    return path


@pytest.fixture
def domains(tmp_path: Path) -> tuple[Path, Path]:
    return _folder(tmp_path / "A", 7), _folder(tmp_path / "B", 4, size=(12, 16), start=100)


def _dataset(dirs: tuple[Path, Path], **kw: object) -> UnpairedImages:
    args: dict[str, object] = {"pre": SMALL, "channels": 3, "seed": 0, "batch_size": 2}
    args.update(kw)
    return UnpairedImages(dirs[0], dirs[1], **args)  # type: ignore[arg-type]


def _equal(x: dict, y: dict) -> bool:
    keys = ("a", "b", "index_a", "index_b")
    return x["step"] == y["step"] and all(torch.equal(x[k], y[k]) for k in keys)


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_same_batches_in_any_request_order(domains):
    first, second = _dataset(domains), _dataset(domains)
    late_first = first[5], first[3], first[12]
    early_first = second[3], second[12], second[5]
    assert _equal(late_first[0], early_first[2])
    assert _equal(late_first[1], early_first[0])
    assert _equal(late_first[2], early_first[1])
    batch = late_first[0]
    assert batch["a"].shape == (2, 3, 8, 8) and batch["b"].shape == (2, 3, 8, 8)
    assert batch["a"].dtype == torch.float32
    assert batch["a"].min() >= -1 and batch["a"].max() <= 1


def test_different_seeds_give_different_batches(domains):
    x, y = _dataset(domains, seed=0)[0], _dataset(domains, seed=1)[0]
    assert not torch.equal(x["a"], y["a"])
    assert not torch.equal(x["b"], y["b"])


def test_resumed_loader_equals_tail_of_full_loader(domains):
    ds = _dataset(domains)
    full = list(make_loader(ds, 0, 9))
    resumed = list(make_loader(_dataset(domains), 4, 9))
    assert [b["step"] for b in full] == list(range(9))
    assert len(resumed) == 5
    assert all(_equal(x, y) for x, y in zip(full[4:], resumed))


def test_workers_do_not_change_batches(domains):
    ds = _dataset(domains)
    serial = list(make_loader(ds, 0, 6, num_workers=0))
    parallel = list(make_loader(ds, 0, 6, num_workers=2))
    assert [b["step"] for b in parallel] == list(range(6))
    assert all(_equal(x, y) for x, y in zip(serial, parallel))


def test_preload_gives_the_same_batches(domains):
    plain, preloaded = _dataset(domains), _dataset(domains, preload=True)
    assert all(_equal(plain[s], preloaded[s]) for s in (0, 3, 8))


@pytest.mark.parametrize("parts", [(0,), (0, 1), (1, 0), (0, 0, 1), (-1,), (2**70, 3)])
def test_mix_seed_is_a_valid_63_bit_seed(parts):
    seed = mix_seed(*parts)
    assert 0 <= seed < 2**63
    assert seed == mix_seed(*parts)


def test_mix_seed_separates_nearby_tuples():
    tuples = [(s, a, b) for s in range(6) for a in range(6) for b in range(6)] + [(), (0,), (0, 0)]
    assert len({mix_seed(*t) for t in tuples}) == len(tuples)
    assert torch.equal(torch.rand(3, generator=seeded(1, 2)), torch.rand(3, generator=seeded(1, 2)))


# ---- file indices and sampling --------------------------------------------------------------

PLAIN = Preprocess(mode="none", flip=False)  # no resize, crop or flip: a tensor identifies its file


def _plain(path: Path) -> torch.Tensor:
    with Image.open(path) as img:
        return transforms.test_transform(img.convert("RGB"), PLAIN)  # (C, H, W)


def _which(x: torch.Tensor, files: list[Path]) -> int:
    """Index of the file whose plain-preprocessed pixels equal ``x``."""
    matches = [i for i, f in enumerate(files) if torch.equal(_plain(f), x)]
    assert len(matches) == 1
    return matches[0]


def test_batches_carry_the_file_index_of_each_slot(domains):
    ds = _dataset(domains, pre=PLAIN, batch_size=3)  # |A| = 7, |B| = 4: differing image sizes
    for step in (0, 1, 5):
        batch = ds[step]
        planned_a, planned_b = ds.indices(step)
        assert batch["index_a"].dtype == torch.int64 and batch["index_a"].shape == (3,)
        assert batch["index_a"].tolist() == planned_a and batch["index_b"].tolist() == planned_b
        for slot in range(3):
            assert _which(batch["a"][slot], ds.files_a) == planned_a[slot]
            assert _which(batch["b"][slot], ds.files_b) == planned_b[slot]


def test_sample_gives_distinct_training_images(domains):
    ds = _dataset(domains, pre=PLAIN)
    x = ds.sample("a", 5, seed=3)
    assert x.shape == (5, 3, 12, 16) and x.dtype == torch.float32
    picked = [_which(img, ds.files_a) for img in x]
    assert len(set(picked)) == 5
    assert ds.sample("b", 2, seed=3).shape == (2, 3, 16, 12)  # B images are 12 wide, 16 high


def test_sample_returns_every_image_when_n_exceeds_the_domain(domains):
    ds = _dataset(domains, pre=PLAIN)
    x = ds.sample("b", 50, seed=0)
    assert x.shape == (4, 3, 16, 12)
    assert sorted(_which(img, ds.files_b) for img in x) == [0, 1, 2, 3]


def test_sample_depends_on_its_seed_only(domains):
    ds = _dataset(domains)  # random crops and flips on
    first = ds.sample("a", 3, seed=7)
    ds[4], ds[9]  # training batches in between change nothing
    assert torch.equal(ds.sample("a", 3, seed=7), first)
    assert torch.equal(_dataset(domains).sample("a", 3, seed=7), first)
    assert not torch.equal(ds.sample("a", 3, seed=8), first)
    assert not torch.equal(_dataset(domains, seed=1).sample("a", 3, seed=7), first)
    # The dataset seed takes part in the choice of files, not only in the augmentation.
    picks = set()
    for run_seed in range(6):
        plain = _dataset(domains, pre=PLAIN, seed=run_seed)
        picks.add(tuple(_which(img, plain.files_a) for img in plain.sample("a", 3, seed=7)))
    assert len(picks) > 1


def test_sample_augments_like_training(domains):
    flips = Preprocess(mode="none", flip=True)
    ds = _dataset(domains, pre=flips)
    plain = [_plain(f) for f in ds.files_a]
    flipped = 0
    for seed in range(12):
        for img in ds.sample("a", 7, seed=seed):
            if any(torch.equal(img, p) for p in plain):
                continue
            assert any(torch.equal(img, p.flip(-1)) for p in plain)
            flipped += 1
    assert 14 <= flipped <= 70  # 84 draws, each flipped with probability 1/2


def test_sample_decodes_at_most_n_plus_the_skipped_files(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "A", 40)
    ds = _dataset((folder, folder), pre=PLAIN)
    broken = set(range(0, 40, 2))
    for i in broken:  # broken after the listing check, so only decoding finds out
        ds.files_a[i].write_bytes(b"garbage")
    calls: list[Path] = []
    real = unpaired.read_image

    def counting(path: Path, **kwargs: object) -> LoadedImage:
        calls.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(unpaired, "read_image", counting)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = ds.sample("a", 6, seed=0)
    skipped = [w for w in caught if issubclass(w.category, SkippedImageWarning)]
    assert x.shape[0] == 6 and 1 <= len(skipped) < 20
    assert len(calls) == 6 + len(skipped) and len(set(calls)) == len(calls)
    good = [f for i, f in enumerate(ds.files_a) if i not in broken]
    assert len({_which(img, good) for img in x}) == 6


def test_sample_rejects_bad_arguments(domains):
    ds = _dataset(domains)
    with pytest.raises(UsageError, match="domain"):
        ds.sample("c", 2, seed=0)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at least 1"):
        ds.sample("a", 0, seed=0)


# ---- epochs ---------------------------------------------------------------------------------


def test_every_a_image_visited_once_per_epoch(domains):
    ds = _dataset(domains, batch_size=2)  # |A| = 7, |B| = 4: epoch of 7 samples in 4 steps
    assert ds.epoch_length == 7 and ds.steps_per_epoch() == 4 and ds.steps_per_epoch(3) == 3
    orders = []
    for epoch in range(2):
        steps = range(epoch * 4, (epoch + 1) * 4)
        order = [i for s in steps for i in ds.indices(s)[0]]
        # 8 slots for 7 samples: the last batch wraps to the epoch's first image.
        assert sorted(order[:7]) == list(range(7))
        assert order[7] == order[0]
        orders.append(order)
    assert orders[0] != orders[1]  # a new shuffle each epoch


def test_smaller_a_domain_is_cycled_within_an_epoch(tmp_path):
    ds = _dataset((_folder(tmp_path / "A", 3), _folder(tmp_path / "B", 8)), batch_size=1)
    assert ds.steps_per_epoch() == 8
    counts = Counter(ds.indices(s)[0][0] for s in range(8))
    assert set(counts) == {0, 1, 2} and min(counts.values()) >= 2
    b_indices = [i for s in range(40) for i in ds.indices(s)[1]]
    assert set(b_indices) <= set(range(8)) and len(set(b_indices)) > 4


# ---- preprocessing --------------------------------------------------------------------------

# (mode, input (W, H), expected output (W, H)) with load_size 16, crop_size 12.
SIZE_CASES = [
    ("resize_and_crop", (40, 24), (12, 12)),
    ("resize_and_crop", (24, 40), (12, 12)),
    ("crop", (40, 24), (12, 12)),
    ("crop", (24, 40), (12, 12)),
    ("crop", (10, 30), (12, 12)),  # smaller than the crop: enlarged first
    ("scale_width", (40, 24), (16, 12)),  # height 9.6 floored at crop_size, as upstream
    ("scale_width", (24, 40), (16, 26)),
    ("scale_width_and_crop", (40, 24), (12, 12)),
    ("scale_width_and_crop", (24, 40), (12, 12)),
    ("none", (37, 23), (36, 24)),
    ("none", (23, 37), (24, 36)),
    ("none", (2, 3), (4, 4)),
]


@pytest.mark.parametrize(("mode", "size", "expected"), SIZE_CASES)
def test_preprocess_output_size(mode, size, expected):
    pre = Preprocess(mode=mode, load_size=16, crop_size=12)
    img = _pattern(*size, 0)
    width, height = expected
    assert output_size(size, pre) == expected
    assert apply_preprocess(img, pre, seeded(0)).shape == (3, height, width)
    assert transforms.test_transform(img, pre).shape == (3, height, width)


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (30, 17), (5, 40)])
def test_none_mode_sizes_are_multiples_of_four(size):
    x = apply_preprocess(_pattern(*size, 1), Preprocess(mode="none"), seeded(1))
    assert x.shape[1] % 4 == 0 and x.shape[2] % 4 == 0


def test_flip_false_never_flips():
    img = _pattern(8, 8, 3)
    pre = Preprocess(mode="none", flip=False)
    reference = transforms.test_transform(img, pre)
    assert all(torch.equal(apply_preprocess(img, pre, seeded(s)), reference) for s in range(30))


def test_flip_true_flips_about_half_the_time():
    img = _pattern(8, 8, 3)
    pre = Preprocess(mode="none", flip=True)
    reference = transforms.test_transform(img, pre)
    outputs = [apply_preprocess(img, pre, seeded(s)) for s in range(40)]
    flipped = sum(torch.equal(x, reference.flip(-1)) for x in outputs)
    kept = sum(torch.equal(x, reference) for x in outputs)
    assert flipped + kept == 40 and 5 <= flipped <= 35


def test_pixels_map_to_minus_one_plus_one():
    values = np.array([[0, 255, 51, 102]] * 4, dtype=np.uint8)  # 4x4 grey: no resize in ``none``
    x = transforms.test_transform(Image.fromarray(values), Preprocess(mode="none"))
    expected = torch.tensor([-1.0, 1.0, -0.6, -0.2]).expand(1, 4, 4)
    assert x.shape == (1, 4, 4) and torch.allclose(x, expected, atol=1e-6)


def test_test_transform_centre_crops():
    img = _pattern(20, 12, 4)
    pre = Preprocess(mode="crop", crop_size=8, flip=False)
    centre = img.crop((6, 2, 14, 10))  # 8x8 is a multiple of 4, so ``none`` leaves it as is
    expected = transforms.test_transform(centre, Preprocess(mode="none"))
    assert torch.equal(transforms.test_transform(img, pre), expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "resize"},
        {"load_size": 0},
        {"crop_size": -1},
        {"load_size": 8, "crop_size": 12},
        {"mode": "scale_width_and_crop", "load_size": 8, "crop_size": 12},
    ],
)
def test_bad_preprocess_raises_usage_error(kwargs):
    with pytest.raises(UsageError, match="preprocess"):
        Preprocess(**kwargs)


def test_crop_mode_allows_crop_larger_than_load_size():
    # load_size is unused in plain ``crop`` mode, so it must not be checked against crop_size.
    assert Preprocess(mode="crop", load_size=8, crop_size=12).crops


def test_grayscale_has_one_channel(domains):
    batch = _dataset(domains, channels=1)[0]
    assert batch["a"].shape == (2, 1, 8, 8) and batch["b"].shape == (2, 1, 8, 8)


def _awkward_files(folder: Path) -> list[Path]:
    """Files whose decoding needs care: CMYK, 16-bit, palette with transparency, EXIF, ICC."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    rgb = Image.fromarray(rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8))
    rgb.convert("CMYK").save(folder / "print.jpg", quality=95)
    deep = rng.integers(0, 65536, size=(8, 12), dtype=np.uint16)
    Image.fromarray(deep).save(folder / "deep.png")  # mode I;16
    palette = rgb.quantize(16)
    palette.save(folder / "palette.png", transparency=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated: the 12x8 file is an 8x12 picture
    rgb.save(folder / "phone.jpg", exif=exif, quality=90)
    grey = Image.fromarray(np.full((8, 12, 3), 128, dtype=np.uint8))
    grey.save(folder / "linear.png", icc_profile=_linear_rgb_icc())  # linear light: sRGB ~188
    return sorted(folder.iterdir())


@pytest.mark.parametrize("channels", [1, 3])
def test_training_sees_the_pixels_translate_sees(tmp_path, channels):
    files = _awkward_files(tmp_path / "awkward")
    ds = _dataset((files[0].parent, files[0].parent), pre=PLAIN, channels=channels, batch_size=1)
    assert ds.files_a == files and ds.skipped == []
    seen = {}
    for step in range(len(files)):  # one epoch: every A file once
        batch = ds[step]
        seen[int(batch["index_a"][0])] = batch["a"][0]  # (C, H, W)
    assert sorted(seen) == list(range(len(files)))
    for index, image in seen.items():
        translate = prepare_input(read_image(files[index], channels=channels).image, channels)
        assert torch.equal(image, translate), files[index].name
    upright = seen[files.index(files[0].parent / "phone.jpg")]
    assert upright.shape == (channels, 12, 8)  # the EXIF file stands upright


def test_naive_decoding_would_fail_the_pixel_test(tmp_path):
    """Negative control: ignoring the ICC profile (the old training decoder) gives other pixels."""
    linear = next(f for f in _awkward_files(tmp_path / "awkward") if f.name == "linear.png")
    with Image.open(linear) as img:
        naive = transforms.test_transform(img.convert("RGB"), PLAIN)
    translate = prepare_input(read_image(linear).image, 3)
    assert not torch.equal(naive, translate)
    assert translate.mean() > naive.mean() + 0.3  # 128 -> ~188 of 255


def test_training_lists_the_files_translate_lists(tmp_path):
    folder = tmp_path / "A"
    (folder / "sub").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    for name in ("x.png", "sub/y.gif", "sub/z.tiff", ".dot.png", ".hidden/w.png", "sub-1.png"):
        _pattern(8, 8, 0).save(folder / name)
    (folder / "notes.txt").write_text("not an image\n")
    ds = _dataset((folder, folder))
    expected = [path for path, _ in list_images([str(folder)], recursive=True)]
    assert ds.files_a == expected
    assert [p.relative_to(folder).as_posix() for p in ds.files_a] == [
        "sub-1.png", "sub/y.gif", "sub/z.tiff", "x.png"
    ]  # hidden files skipped, .gif read; sorted by POSIX text, so "sub-1" before "sub/"


def test_exif_orientation_is_applied(tmp_path):
    folder = tmp_path / "A"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display": a 12x8 file shows as 8x12
    _pattern(12, 8, 0).save(folder / "rotated.jpg", exif=exif)
    ds = _dataset((folder, folder), pre=Preprocess(mode="none", flip=False), batch_size=1)
    assert ds[0]["a"].shape == (1, 3, 12, 8)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    folder = tmp_path / "A"
    folder.mkdir()
    Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16)).save(folder / "deep.png")
    ds = _dataset((folder, folder), pre=Preprocess(mode="none"), channels=1, batch_size=1)
    assert torch.allclose(ds[0]["a"], torch.full((1, 1, 8, 8), 128 / 127.5 - 1), atol=1e-6)


def test_none_mode_rejects_mixed_sizes_in_a_batch(tmp_path):
    folder = tmp_path / "A"
    _folder(folder, 1, size=(8, 8))
    _pattern(12, 8, 1).save(folder / "wide.png")
    ds = _dataset((folder, folder), pre=Preprocess(mode="none"), batch_size=4)
    with pytest.raises(UsageError, match="different sizes"):
        ds[0]


# ---- bad files and folders ------------------------------------------------------------------


def test_unreadable_files_are_skipped_and_named(tmp_path):
    folder = _folder(tmp_path / "A", 3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (folder / "notes.jpg").write_text("this is a text file, not an image\n")
    (folder / "README.txt").write_text("ignored: not an image extension\n")
    with pytest.warns(SkippedImageWarning) as record:
        ds = _dataset((folder, _folder(tmp_path / "B", 2)))
    messages = " ".join(str(w.message) for w in record)
    assert "broken.png" in messages and "notes.jpg" in messages
    assert len(record) == 2
    assert sorted(p.name for p, _ in ds.skipped) == ["broken.png", "notes.jpg"]
    assert all(reason for _, reason in ds.skipped)
    assert [p.name for p in ds.files_a] == ["img000.png", "img001.png", "img002.png"]
    assert ds[0]["a"].shape == (2, 3, 8, 8)


def test_file_that_breaks_during_training_is_replaced_by_the_next(tmp_path):
    folder = _folder(tmp_path / "A", 4)
    ds = _dataset((folder, folder), pre=Preprocess(mode="none", flip=False), batch_size=1)
    step = next(s for s in range(20) if ds.indices(s)[0] == [1])
    ds.files_a[1].write_bytes(b"garbage")
    with pytest.warns(SkippedImageWarning, match="img001.png"):
        batch = ds[step]
    with Image.open(ds.files_a[2]) as img:
        expected = transforms.test_transform(img.convert("RGB"), ds.pre)
    assert torch.equal(batch["a"][0], expected)
    assert batch["index_a"].tolist() == [2]  # the file really read, not the planned 1
    assert [p.name for p, _ in ds.skipped] == ["img001.png"]
    assert torch.equal(ds[step]["a"], batch["a"])  # the same substitute again, no new record
    assert len(ds.skipped) == 1


def test_empty_folder_raises_input_error(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="empty"):
        _dataset((empty, _folder(tmp_path / "B", 2)))


def test_folder_of_only_bad_files_raises_input_error(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_text("nope")
    with pytest.warns(SkippedImageWarning), pytest.raises(InputError, match=r"bad.*1 unreadable"):
        _dataset((_folder(tmp_path / "A", 2), bad))


def test_bad_dataset_arguments_raise_usage_error(domains):
    with pytest.raises(UsageError, match="channels"):
        _dataset(domains, channels=2)
    with pytest.raises(UsageError, match="batch_size"):
        _dataset(domains, batch_size=0)
    with pytest.raises(UsageError, match="start_step"):
        make_loader(_dataset(domains), 5, 3)


@pytest.fixture
def dataroot(tmp_path: Path) -> Path:
    for name in ("trainA", "trainB", "testA"):
        (tmp_path / "root" / name).mkdir(parents=True)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("root", "a", "b", "split", "expected"),
    [
        ("root", None, None, "train", ("root/trainA", "root/trainB")),
        (None, "a", "b", "train", ("a", "b")),
        (None, "a", "b", "test", ("a", "b")),
    ],
)
def test_resolve_domains_accepts(dataroot, root, a, b, split, expected):
    def at(name: str | None) -> Path | None:
        return None if name is None else dataroot / name

    assert resolve_domains(at(root), at(a), at(b), split) == tuple(dataroot / e for e in expected)


@pytest.mark.parametrize(
    ("root", "a", "b", "split", "message"),
    [
        (None, None, None, "train", "give dataroot"),
        ("root", "a", "b", "train", "not both"),
        ("root", "a", None, "train", "not both"),
        (None, "a", None, "train", "domain_b is missing"),
        (None, None, "b", "train", "domain_a is missing"),
        ("root", None, None, "test", "testB"),  # testA exists, testB does not
        ("nowhere", None, None, "train", "dataroot .*nowhere"),
        (None, "a", "missing", "train", "missing"),
    ],
)
def test_resolve_domains_rejects(dataroot, root, a, b, split, message):
    def at(name: str | None) -> Path | None:
        return None if name is None else dataroot / name

    with pytest.raises(UsageError, match=message):
        resolve_domains(at(root), at(a), at(b), split)

"""Shipped data loaders and the shipped judges: floors on held-out data, honest cards, clear errors."""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from i2icli.data import shipped
from i2icli.errors import InputError, UsageError
from i2icli.eval import train_judges
from i2icli.eval.judges import (
    Judge,
    JudgeCard,
    accuracy,
    extract_features,
    judge_card,
    list_judges,
    load_judge,
    prepare_input,
    uint8_to_input,
)
from i2icli.eval.metrics import fid_from_features

SHARD = Path(__file__).parent / "fixtures" / "fashion_shard"
JUDGES = [
    "digits", "digits-mnist", "digits-uci", "domain-fashion-sandal-sneaker", "domain-fashion-sneaker-boot",
    "domain-mnist-uci", "fashion",
]  # fmt: skip


def _as_inputs(data: tuple[np.ndarray, np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data
    return uint8_to_input(images), torch.from_numpy(labels)


# ---------------------------------------------------------------- shipped data


@pytest.mark.parametrize(
    ("load", "n_train", "n_test"), [(shipped.load_mnist, 4000, 1000), (shipped.load_uci, 1438, 359)]
)
def test_digit_loaders_give_fixed_disjoint_mnist_like_splits(load, n_train, n_test):
    x_train, y_train = load("train")
    x_test, y_test = load("test")
    assert x_train.shape == (n_train, 28, 28) and x_test.shape == (n_test, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert set(np.unique(y_test)) == set(range(10))
    again, _ = load("test")
    assert np.array_equal(again, x_test)
    train_rows = {img.tobytes() for img in x_train}
    assert sum(img.tobytes() in train_rows for img in x_test) <= 2  # at most chance duplicates in the source


def test_stratified_split_is_per_class_and_disjoint():
    labels = np.repeat(np.arange(3), [10, 20, 5])
    split = shipped.stratified_split(labels, 0.2, seed=0)
    assert np.bincount(labels[split["test"]]).tolist() == [2, 4, 1]
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == len(labels)


def test_uci_frame_scales_and_centres():
    digits = np.full((1, 8, 8), 16.0)
    framed = shipped.uci_to_mnist_frame(digits)
    assert framed.shape == (1, 28, 28) and framed.dtype == np.uint8
    assert framed[0, 4:24, 4:24].min() == 255
    assert framed[0, :4].max() == 0 and framed[0, :, 24:].max() == 0


def test_fashion_from_the_shard_with_a_class_filter():
    images, labels = shipped.load_fashion("test", root=SHARD)
    assert images.shape == (1000, 28, 28) and labels.shape == (1000,)
    boots, boot_labels = shipped.load_fashion("test", classes=(7, 9), root=SHARD)
    assert set(boot_labels.tolist()) == {7, 9}
    assert len(boots) == int(np.isin(labels, (7, 9)).sum())
    assert shipped.FASHION_CLASSES[7] == "Sneaker" and shipped.FASHION_CLASSES[9] == "Ankle boot"


def test_fashion_folder_from_the_environment(monkeypatch):
    monkeypatch.setenv(shipped.FASHION_MNIST_ENV, str(SHARD))
    assert shipped.load_fashion("test")[0].shape == (1000, 28, 28)


def test_fashion_errors_name_the_fix_or_the_file(monkeypatch, tmp_path):
    monkeypatch.delenv(shipped.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(shipped, "FASHION_DEFAULT_DIR", tmp_path / "absent")
    with pytest.raises(InputError, match="apt-get install dataset-fashion-mnist"):
        shipped.load_fashion("test")
    with pytest.raises(InputError, match="train-images-idx3-ubyte.gz: file not found"):
        shipped.load_fashion("train", root=SHARD)  # the shard has only the test split
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + bytes(8)))
    with pytest.raises(InputError, match="magic number"):
        shipped.load_fashion("test", root=tmp_path)
    with pytest.raises(UsageError, match="classes must be in 0-9"):
        shipped.load_fashion("test", classes=(10,), root=SHARD)
    with pytest.raises(UsageError, match="split"):
        shipped.load_fashion("val", root=SHARD)


# ---------------------------------------------------------------- shipped judges


def test_every_judge_is_listed_and_small():
    assert list_judges() == JUDGES
    for name in JUDGES:
        weights = Path(train_judges.JUDGE_DIR) / f"{name}.safetensors"
        assert weights.stat().st_size <= 1_000_000


@pytest.mark.parametrize(
    ("name", "load", "floor"),
    [
        ("digits-mnist", shipped.load_mnist, 0.97),
        ("digits-uci", shipped.load_uci, 0.95),
        ("domain-mnist-uci", train_judges.RECIPES["domain-mnist-uci"].load, 0.97),
        ("digits", train_judges.RECIPES["digits"].load, 0.97),
    ],
)
def test_digit_judges_meet_their_floors_and_their_cards(name, load, floor):
    judge = load_judge(name)
    acc = accuracy(judge, *_as_inputs(load("test")))
    assert acc >= floor
    # The card must report what the shipped weights score; allow ~2 images flipped by float differences
    # between BLAS builds and thread counts.
    assert acc == pytest.approx(next(iter(judge_card(name).heldout.values())), abs=0.006)


def test_fashion_judge_meets_its_floor_on_the_shard():
    judge = load_judge("fashion")
    assert accuracy(judge, *_as_inputs(shipped.load_fashion("test", root=SHARD))) >= 0.88


@pytest.mark.parametrize(
    ("name", "pair", "classes"),
    [("domain-fashion-sneaker-boot", (7, 9), ("Sneaker", "Ankle boot")), ("domain-fashion-sandal-sneaker", (5, 7), ("Sandal", "Sneaker"))],
)
def test_fashion_pair_judges_on_the_shard(name: str, pair: tuple[int, int], classes: tuple[str, str]):
    images, labels = shipped.load_fashion("test", classes=pair, root=SHARD)
    judge = load_judge(name)
    assert judge.classes == classes
    assert accuracy(judge, uint8_to_input(images), torch.from_numpy((labels == pair[1]).astype(np.int64))) >= 0.95


def test_unknown_judge_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown judge 'digit'.*digits, digits-mnist, digits-uci"):
        load_judge("digit")


def test_judges_take_rgb_images_of_any_size():
    judge = load_judge("digits-mnist")
    x, y = _as_inputs(shipped.load_mnist("test"))
    rgb_large = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False).expand(-1, 3, -1, -1)
    assert accuracy(judge, rgb_large, y) >= 0.95


def test_prepare_input_converts_to_gray_28():
    gray = torch.linspace(-1, 1, 40 * 40).view(1, 1, 40, 40)
    prepared = prepare_input(gray.expand(2, 3, -1, -1))
    assert prepared.shape == (2, 1, 28, 28)
    assert torch.allclose(prepared[0], prepare_input(gray)[0], atol=1e-6)  # equal channels -> that channel
    with pytest.raises(InputError, match="1 or 3"):
        prepare_input(torch.zeros(1, 4, 28, 28))


# ReLU units that never fire on digits make the feature covariance singular; the Fréchet distance
# is computed through a symmetric PSD root, so it stays real there.
def test_judge_features_separate_domains():
    judge = load_judge("digits-mnist")
    mnist_train = extract_features(judge, uint8_to_input(shipped.load_mnist("train")[0][:1000]))
    mnist_test = extract_features(judge, uint8_to_input(shipped.load_mnist("test")[0]))
    uci_test = extract_features(judge, uint8_to_input(shipped.load_uci("test")[0]))
    assert mnist_test.shape == (1000, judge.hidden)
    assert fid_from_features(mnist_test, mnist_train) < fid_from_features(mnist_test, uci_test)


# ---------------------------------------------------------------- training script


def test_random_shift_moves_content_and_fills_background():
    x = torch.full((3, 1, 6, 6), -1.0)
    x[:, :, 2:4, 2:4] = 1.0
    gen = torch.Generator().manual_seed(0)
    shifted = train_judges.random_shift(x, 1, gen)
    assert shifted.shape == x.shape
    assert ((shifted == 1.0).sum(dim=(1, 2, 3)) == 4).all()  # the blob stays whole, only moves
    assert torch.equal(train_judges.random_shift(x, 0, gen), x)


def _tiny_recipe(floor: float) -> train_judges.JudgeRecipe:
    def load(split: str) -> tuple[np.ndarray, np.ndarray]:
        # Two trivially separable classes: dark and bright images.
        labels = np.arange(64, dtype=np.int64) % 2
        return (labels[:, None, None] * 200 + 20).astype(np.uint8).repeat(28, 1).repeat(28, 2), labels

    return train_judges.JudgeRecipe(
        kind="domain", classes=("dark", "bright"), data="tiny", test_data="tiny test", load=load,
        steps=30, floor=floor, batch_size=16,
    )


def test_build_writes_a_loadable_judge_and_card(monkeypatch, tmp_path):
    monkeypatch.setitem(train_judges.RECIPES, "tiny", _tiny_recipe(floor=0.9))
    card = train_judges.build("tiny", tmp_path, log=lambda _: None)
    assert card.heldout == {"tiny test": 1.0}
    assert JudgeCard.from_json((tmp_path / "tiny.json").read_text()) == card
    assert dataclasses.asdict(card)["classes"] == ("dark", "bright")
    assert (tmp_path / "tiny.safetensors").is_file()


def test_build_below_the_floor_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setitem(train_judges.RECIPES, "tiny", _tiny_recipe(floor=1.01))
    with pytest.raises(train_judges.FloorNotMet, match="below its floor"):
        train_judges.build("tiny", tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_judge_architecture_fits_the_cards():
    card = judge_card("digits-mnist")
    judge = Judge(card.classes, card.widths, card.hidden)
    assert judge(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert judge.features(torch.zeros(2, 3, 32, 32)).shape == (2, card.hidden)


def test_content_judge_reads_both_writers_and_the_uci_rendering_of_mnist():
    """The content judge reads a digit whoever drew it, in either style; UCI's own judge does not
    read MNIST writers' digits even when drawn exactly as UCI's were (what class-kept must avoid)."""
    mnist_images, mnist_labels = shipped.load_mnist("test")
    mnist, uci = _as_inputs((mnist_images, mnist_labels)), _as_inputs(shipped.load_uci("test"))
    rendered = _as_inputs((shipped.mnist_in_uci_style(mnist_images, fill=True), mnist_labels))
    content, uci_only = load_judge("digits"), load_judge("digits-uci")
    for images, labels in (mnist, uci, rendered):
        assert accuracy(content, images, labels) >= 0.97
    assert accuracy(uci_only, *rendered) < 0.7


def test_random_affine_keeps_background_and_moves_ink():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((8, 1, 28, 28), -1.0)
    x[:, :, 8:20, 12:16] = 1.0  # a vertical bar
    out = train_judges.random_affine(x, gen)
    assert out.shape == x.shape and out.min() >= -1 - 1e-6 and out.max() <= 1 + 1e-6
    assert torch.allclose(out[:, :, :2], torch.full_like(out[:, :, :2], -1.0), atol=1e-6)  # corners stay background
    moved = (out - x).abs().flatten(1).mean(1)  # (8,)
    assert (moved > 0.01).all() and len(set(moved.round(decimals=4).tolist())) == 8  # each image its own warp

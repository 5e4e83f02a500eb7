"""Tests of dataset recipes, downloads (against a local HTTP server), safe extraction and `i2i data`."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from httpserver import FileServer
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.data_cmd import app
from i2icli.data import builders, recipes, shipped
from i2icli.data.download import LOCK_NAME, download, safe_extract
from i2icli.errors import InputError, ResolveError, UsageError

PAYLOAD = bytes(range(256)) * 200  # 51,200 bytes, every offset distinguishable enough


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server() -> Iterator[FileServer]:
    with FileServer({"/f.bin": PAYLOAD}) as s:
        yield s


# ---------------------------------------------------------------------------------------------
# download()
# ---------------------------------------------------------------------------------------------


def test_download_resumes_a_partial_part_file(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(PAYLOAD[:20_000])
    download(server.url + "/f.bin", dest, sha256=_sha(PAYLOAD))
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("f.bin.part").exists()
    assert [(r.method, r.range) for r in server.log] == [("GET", "bytes=20000-")]


def test_download_resumes_after_the_connection_drops(server: FileServer, tmp_path: Path) -> None:
    server.cut_next("/f.bin", 12_345)
    dest = download(server.url + "/f.bin", tmp_path / "f.bin", sha256=None)
    assert dest.read_bytes() == PAYLOAD
    assert [r.range for r in server.log] == [None, "bytes=12345-"]


def test_download_restarts_when_the_server_ignores_range(tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(b"\xff" * 5_000)  # wrong bytes: kept only if we appended
    with FileServer({"/f.bin": PAYLOAD}, honour_range=False) as s:
        download(s.url + "/f.bin", dest, sha256=None)
        assert s.log[0].range == "bytes=5000-"
    assert dest.read_bytes() == PAYLOAD


def test_download_restarts_when_the_part_cannot_be_resumed(server: FileServer, tmp_path: Path) -> None:
    dest = tmp_path / "f.bin"
    dest.with_name("f.bin.part").write_bytes(PAYLOAD + b"extra")  # longer than the file: 416 from the server
    download(server.url + "/f.bin", dest, sha256=_sha(PAYLOAD))
    assert [r.range for r in server.log] == [f"bytes={len(PAYLOAD) + 5}-", None]
    assert dest.read_bytes() == PAYLOAD


def test_download_progress_bar_goes_to_stderr_only(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    download(server.url + "/f.bin", tmp_path / "f.bin", sha256=None, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "f.bin" in captured.err
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_download_gives_up_after_retries_and_keeps_the_part(server: FileServer, tmp_path: Path) -> None:
    for _ in range(2):
        server.cut_next("/f.bin", 1_000)
    with pytest.raises(InputError, match="interrupted 2 times.*resume"):
        download(server.url + "/f.bin", tmp_path / "f.bin", sha256=None, retries=1)
    assert tmp_path.joinpath("f.bin.part").read_bytes() == PAYLOAD[:2_000]
    # Running again resumes from the kept bytes.
    download(server.url + "/f.bin", tmp_path / "f.bin", sha256=None)
    assert server.log[-1].range == "bytes=2000-"
    assert tmp_path.joinpath("f.bin").read_bytes() == PAYLOAD


def test_sha256_mismatch_is_refused_and_the_file_kept_as_bad(server: FileServer, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(InputError) as info:
        download(server.url + "/f.bin", tmp_path / "f.bin", sha256=wrong)
    message = str(info.value)
    assert "f.bin" in message and "000000000000" in message and _sha(PAYLOAD)[:12] in message
    assert "\n" not in message
    assert not (tmp_path / "f.bin").exists()
    assert (tmp_path / "f.bin.bad").read_bytes() == PAYLOAD


def test_malformed_sha256_is_a_usage_error_before_any_request(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="64 hex digits"):
        download(server.url + "/f.bin", tmp_path / "f.bin", sha256="abc")
    assert server.log == []


def test_lock_file_pins_the_first_download(tmp_path: Path) -> None:
    lock = tmp_path / LOCK_NAME
    dest = tmp_path / "d" / "f.bin"
    with FileServer({"/f.bin": PAYLOAD}) as s:
        download(s.url + "/f.bin", dest, sha256=None, lock_file=lock)
        recorded = lock.read_text()
        assert _sha(PAYLOAD) in recorded
        dest.unlink()
        download(s.url + "/f.bin", dest, sha256=None, lock_file=lock)  # same bytes: accepted
        assert lock.read_text() == recorded
        dest.unlink()
        s.files["/f.bin"] = PAYLOAD[::-1]  # upstream changed (or a bad mirror)
        with pytest.raises(InputError) as info:
            download(s.url + "/f.bin", dest, sha256=None, lock_file=lock)
    message = str(info.value)
    assert "f.bin" in message and str(lock) in message
    assert _sha(PAYLOAD)[:12] in message and _sha(PAYLOAD[::-1])[:12] in message
    assert not dest.exists() and dest.with_name("f.bin.bad").exists()
    assert lock.read_text() == recorded


def test_http_404_is_a_resolve_error(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(ResolveError, match="HTTP 404"):
        download(server.url + "/missing.zip", tmp_path / "missing.zip", sha256=None)


# ---------------------------------------------------------------------------------------------
# safe_extract()
# ---------------------------------------------------------------------------------------------


def _zip(members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)  # a unix symlink; its data is the target
            zf.writestr(info, target)
    return buffer.getvalue()


def _tar(add: Callable[[tarfile.TarFile], None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        add(tf)
    return buffer.getvalue()


def _tar_file(tf: tarfile.TarFile, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _tar_link(tf: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tf.addfile(info)


ABSOLUTE_EVIL = "/tmp/i2i-test-recipes-evil.txt"
BAD_ARCHIVES: dict[str, tuple[str, bytes]] = {
    "zip-dotdot": ("../evil.txt", _zip({"ok/a.txt": b"a", "../evil.txt": b"evil"})),
    "zip-nested-dotdot": ("ok/../../evil.txt", _zip({"ok/../../evil.txt": b"evil"})),
    "zip-absolute": (ABSOLUTE_EVIL, _zip({"ok/a.txt": b"a", ABSOLUTE_EVIL: b"evil"})),
    "zip-symlink-out": ("ok/link", _zip({"ok/a.txt": b"a"}, symlinks={"ok/link": "../../evil"})),
    "tar-absolute": (ABSOLUTE_EVIL, _tar(lambda tf: (_tar_file(tf, "ok/a.txt"), _tar_file(tf, ABSOLUTE_EVIL)))),
    "tar-dotdot": ("../evil.txt", _tar(lambda tf: _tar_file(tf, "../evil.txt"))),
    "tar-symlink-out": ("ok/link", _tar(lambda tf: _tar_link(tf, "ok/link", "../../outside"))),
    "tar-symlink-absolute": ("ok/link", _tar(lambda tf: _tar_link(tf, "ok/link", "/etc"))),
    "tar-hardlink-out": ("ok/hard", _tar(lambda tf: _tar_link(tf, "ok/hard", "../secret", tarfile.LNKTYPE))),
}


@pytest.mark.parametrize("case", sorted(BAD_ARCHIVES))
def test_safe_extract_refuses_escaping_members(case: str, tmp_path: Path) -> None:
    member, data = BAD_ARCHIVES[case]
    archive = tmp_path / ("a.zip" if case.startswith("zip") else "a.tar.gz")
    archive.write_bytes(data)
    out = tmp_path / "deep" / "out"
    with pytest.raises(InputError) as info:
        safe_extract(archive, out)
    assert repr(member) in str(info.value)
    # Checked before writing: nothing at all was written, inside OUT or outside it.
    assert not (tmp_path / "deep").exists()
    assert [p.name for p in tmp_path.iterdir()] == [archive.name]
    assert not Path(ABSOLUTE_EVIL).exists()


def test_safe_extract_writes_a_good_tar_with_an_inner_symlink(tmp_path: Path) -> None:
    def add(tf: tarfile.TarFile) -> None:
        _tar_file(tf, "root/trainA/x.txt", b"hello")
        _tar_link(tf, "root/alias.txt", "trainA/x.txt")

    archive = tmp_path / "good.tar.gz"
    archive.write_bytes(_tar(add))
    names = safe_extract(archive, tmp_path / "out")
    assert names == ["root/trainA/x.txt", "root/alias.txt"]
    assert (tmp_path / "out/root/alias.txt").read_bytes() == b"hello"


def test_safe_extract_refuses_a_non_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not an archive")
    with pytest.raises(InputError, match="not a zip or tar"):
        safe_extract(junk, tmp_path / "out")


# ---------------------------------------------------------------------------------------------
# Download recipes, driven through prepare() against the local server
# ---------------------------------------------------------------------------------------------


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (value, value, value)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _cyclegan_zip(root: str, counts: dict[str, int]) -> bytes:
    return _zip({f"{root}/{split}/{i}_{split}.jpg": _jpeg(i * 20) for split, n in counts.items() for i in range(n)})


LAYOUT_COUNTS = {"trainA": 3, "trainB": 2, "testA": 2, "testB": 1}


@pytest.fixture
def zoo() -> Iterator[FileServer]:
    with FileServer({"/mirror/horse2zebra.zip": _cyclegan_zip("horse2zebra", LAYOUT_COUNTS)}) as s:
        yield s


def test_download_recipe_writes_the_cyclegan_layout(zoo: FileServer, tmp_path: Path) -> None:
    out = tmp_path / "h2z"
    result = recipes.prepare("horse2zebra", out, base_url=zoo.url + "/mirror/")
    assert dict(result.counts) == LAYOUT_COUNTS
    assert sorted(p.name for p in (out / "trainA").iterdir()) == ["0_trainA.jpg", "1_trainA.jpg", "2_trainA.jpg"]
    assert [r.path for r in zoo.log] == ["/mirror/horse2zebra.zip"]
    # Only the layout and the lock remain: no staging folder, no archive.
    assert sorted(p.name for p in out.iterdir()) == sorted([*LAYOUT_COUNTS, LOCK_NAME])
    assert _sha(zoo.files["/mirror/horse2zebra.zip"]) in (out / LOCK_NAME).read_text()


def test_download_recipe_force_redownload_is_checked_against_the_lock(zoo: FileServer, tmp_path: Path) -> None:
    out = tmp_path / "h2z"
    recipes.prepare("horse2zebra", out, base_url=zoo.url + "/mirror")
    with pytest.raises(UsageError, match="already exists.*--force"):
        recipes.prepare("horse2zebra", out, base_url=zoo.url + "/mirror")
    zoo.files["/mirror/horse2zebra.zip"] = _cyclegan_zip("horse2zebra", dict.fromkeys(LAYOUT_COUNTS, 1))
    with pytest.raises(InputError, match="horse2zebra.zip: sha256 mismatch"):
        recipes.prepare("horse2zebra", out, base_url=zoo.url + "/mirror", force=True)
    # The failed run left the earlier dataset untouched.
    assert len(list((out / "trainA").iterdir())) == LAYOUT_COUNTS["trainA"]


def test_download_recipe_from_a_local_archive(tmp_path: Path) -> None:
    archive = tmp_path / "horse2zebra.zip"
    archive.write_bytes(_cyclegan_zip("horse2zebra", LAYOUT_COUNTS))
    with pytest.raises(InputError, match="--sha256"):
        recipes.prepare("horse2zebra", tmp_path / "bad", source=tmp_path, sha256="1" * 64)
    assert archive.exists()  # the user's own file is never renamed
    result = recipes.prepare("horse2zebra", tmp_path / "out", source=archive, sha256=_sha(archive.read_bytes()))
    assert dict(result.counts) == LAYOUT_COUNTS


def test_download_recipe_refuses_an_archive_without_the_layout(tmp_path: Path) -> None:
    (tmp_path / "maps.zip").write_bytes(_cyclegan_zip("maps", {"trainA": 1, "trainB": 1, "testA": 1}))
    with pytest.raises(InputError, match="no maps/testB/ folder"):
        recipes.prepare("maps", tmp_path / "out", source=tmp_path)
    assert not (tmp_path / "out" / "trainA").exists()


def test_recipe_url_is_official_unless_redirected(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = recipes.RECIPES["summer2winter_yosemite"]
    monkeypatch.delenv(recipes.URL_ENV, raising=False)
    official = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/summer2winter_yosemite.zip"
    assert recipes.recipe_url(recipe) == official
    monkeypatch.setenv(recipes.URL_ENV, "https://mirror.example/ds/")
    assert recipes.recipe_url(recipe) == "https://mirror.example/ds/summer2winter_yosemite.zip"
    assert recipes.recipe_url(recipe, "http://other") == "http://other/summer2winter_yosemite.zip"


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "pattern"),
    [
        ("hors2zebra", {}, UsageError, "did you mean horse2zebra"),
        ("cityscapes", {}, UsageError, "needs --from DIR"),
        ("mnist-uci-digits", {"sha256": "0" * 64}, UsageError, "--sha256 applies to download recipes"),
        ("mnist-uci-digits", {"source": Path("/")}, UsageError, "takes no --from"),
        ("horse2zebra", {"source": Path("/nonexistent/x.zip")}, UsageError, "no such file"),
    ],
)
def test_prepare_refuses_bad_arguments_before_any_work(
    name: str, kwargs: dict[str, object], error: type[Exception], pattern: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=pattern):
        recipes.prepare(name, tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Offline recipes (the shipped loaders truncated, so PNG writing stays fast)
# ---------------------------------------------------------------------------------------------


Loader = Callable[..., tuple[np.ndarray, np.ndarray]]


def _truncated(loader: Loader, n: int) -> Loader:
    """A shipped loader cut to its first ``n`` images (real data, fewer PNGs to write)."""
    def load(split: str, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
        images, labels = loader(split, **kwargs)
        return images[:n], labels[:n]

    return load


def _labels_csv(path: Path) -> list[tuple[str, int]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["filename", "label"]
    return [(name, int(label)) for name, label in rows[1:]]


def _folder_images(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


@pytest.fixture
def small_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builders, "load_mnist", _truncated(shipped.load_mnist, 40))
    monkeypatch.setattr(builders, "load_uci", _truncated(shipped.load_uci, 30))


@pytest.mark.usefixtures("small_mnist")
def test_mnist_uci_digits_layout_and_labels(tmp_path: Path) -> None:
    result = recipes.prepare("mnist-uci-digits", tmp_path)
    assert dict(result.counts) == {"trainA": 40, "trainB": 30, "testA": 40, "testB": 30}
    for folder, loader in (("trainA", builders.load_mnist), ("testB", builders.load_uci)):
        split = "train" if folder.startswith("train") else "test"
        images, labels = loader(split)
        written = _folder_images(tmp_path / folder)
        assert written.shape == (len(images), 28, 28) and written.dtype == np.uint8
        np.testing.assert_array_equal(written, images)
        expected = [(f"{i:05d}.png", int(y)) for i, y in enumerate(labels)]
        assert _labels_csv(tmp_path / f"{folder}_labels.csv") == expected
    assert (tmp_path / "trainA" / "00000.png").exists()
    assert not (tmp_path / recipes.STAGING_NAME).exists()


def _expected_background(name: str) -> np.ndarray:
    """The documented background: centred square of side SYNTH_CROPS[name], BOX-shrunk to 32x32, as RGB."""
    from skimage import data

    image = {"astronaut": data.astronaut, "coffee": data.coffee, "chelsea": data.chelsea,
             "brick": data.brick, "grass": data.grass, "gravel": data.gravel}[name]()
    side = builders.SYNTH_CROPS[name]
    top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
    patch = Image.fromarray(image[top : top + side, left : left + side]).convert("RGB")
    return np.asarray(patch.resize((32, 32), Image.Resampling.BOX), dtype=np.float64)


def _expected_synthetic(digit: np.ndarray, index: int, domain: str) -> np.ndarray:
    """Recompute one image from the map documented in recipes.py, pixel by pixel in float64."""
    colour = np.array(builders.SYNTH_COLOURS[index % 6], dtype=np.float64)
    photo, texture = builders.SYNTH_BACKGROUNDS[(index // 6) % 3]
    if domain == "B":
        colour = np.array([colour[1], colour[2], colour[0]])
    background = _expected_background(photo if domain == "A" else texture)
    alpha = np.zeros((32, 32, 1))
    alpha[2:30, 2:30, 0] = digit / 255.0
    return np.rint(alpha * colour + (1 - alpha) * background).astype(np.uint8)


@pytest.mark.usefixtures("small_mnist")
def test_synthetic_colored_digits_paired_truth_matches_the_documented_map(tmp_path: Path) -> None:
    result = recipes.prepare("synthetic-colored-digits", tmp_path)
    assert result.paired
    assert dict(result.counts) == {"trainA": 20, "trainB": 20, "testA": 20, "testB": 20, "testB_paired": 20}
    digits, labels = builders.load_mnist("test")
    test_a, paired = _folder_images(tmp_path / "testA"), _folder_images(tmp_path / "testB_paired")
    assert test_a.shape == (20, 32, 32, 3) and paired.shape == (20, 32, 32, 3)
    for k in range(20):
        source = 2 * k  # testA holds the even source indices
        # float32 vs float64 arithmetic may round a .5 differently: allow at most 1 level.
        for written, domain in ((test_a[k], "A"), (paired[k], "B")):
            diff = np.abs(written.astype(int) - _expected_synthetic(digits[source], source, domain).astype(int))
            assert diff.max() <= 1, (k, domain)
    # trainA / trainB come from disjoint (even / odd) source images; labels follow them.
    train_labels = builders.load_mnist("train")[1]
    assert [y for _, y in _labels_csv(tmp_path / "trainA_labels.csv")] == list(train_labels[0::2])
    assert [y for _, y in _labels_csv(tmp_path / "trainB_labels.csv")] == list(train_labels[1::2])
    assert _labels_csv(tmp_path / "testB_paired_labels.csv") == _labels_csv(tmp_path / "testA_labels.csv")
    assert [y for _, y in _labels_csv(tmp_path / "testA_labels.csv")] == list(labels[0::2])
    # The two domains really differ (the backgrounds are swapped for textures).
    assert np.abs(test_a.astype(int) - paired.astype(int)).mean() > 20


def _fashion_available() -> bool:
    return shipped.fashion_dir().is_dir()


@pytest.mark.skipif(not _fashion_available(), reason="Debian package dataset-fashion-mnist is not installed")
@pytest.mark.parametrize(
    ("name", "class_a", "class_b"), [("fashion-sneaker-boot", 7, 9), ("fashion-shirt-tshirt", 6, 0)]
)
def test_fashion_recipes_hold_one_class_per_domain(
    name: str, class_a: int, class_b: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builders, "load_fashion", _truncated(shipped.load_fashion, 60))
    result = recipes.prepare(name, tmp_path)
    train = builders.load_fashion("train", classes=(class_a, class_b))[1]
    test = builders.load_fashion("test", classes=(class_a, class_b))[1]
    expected = {"trainA": (train == class_a).sum(), "trainB": (train == class_b).sum(),
                "testA": (test == class_a).sum(), "testB": (test == class_b).sum()}
    assert dict(result.counts) == expected and min(expected.values()) > 10
    assert {y for _, y in _labels_csv(tmp_path / "trainA_labels.csv")} == {class_a}
    assert {y for _, y in _labels_csv(tmp_path / "testB_labels.csv")} == {class_b}
    assert Image.open(tmp_path / "testA" / "00000.png").size == (28, 28)


def test_fashion_recipe_without_the_package_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shipped, "FASHION_DEFAULT_DIR", tmp_path / "absent")
    monkeypatch.delenv(shipped.FASHION_MNIST_ENV, raising=False)
    with pytest.raises(UsageError, match="dataset-fashion-mnist"):
        recipes.prepare("fashion-sandal-sneaker", tmp_path / "out")
    assert not (tmp_path / "out" / "trainA").exists()


# ---------------------------------------------------------------------------------------------
# Cityscapes (manual): a tiny fake pair of archives with the official member layout
# ---------------------------------------------------------------------------------------------

PALETTE = [(128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180)]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _label_map(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, len(PALETTE), size=(4, 8))
    pixels = np.asarray(PALETTE, dtype=np.uint8)[blocks].repeat(8, axis=0).repeat(8, axis=1)  # (32, 64, 3)
    return Image.fromarray(pixels)


def _cityscapes_zips(folder: Path, frames: dict[str, list[str]], *, drop_label: str | None = None) -> None:
    photos, labels = {}, {}
    for n, (split, keys) in enumerate(frames.items()):
        for m, key in enumerate(keys):
            city = key.split("_")[0]
            grey = 40 * n + 10 * m + 5  # each photo a distinct flat grey, so the order can be checked
            photos[f"leftImg8bit/{split}/{city}/{key}_leftImg8bit.png"] = _png(Image.new("RGB", (64, 32), (grey,) * 3))
            if key != drop_label:
                labels[f"gtFine/{split}/{city}/{key}_gtFine_color.png"] = _png(_label_map(grey))
                labels[f"gtFine/{split}/{city}/{key}_gtFine_labelIds.png"] = _png(Image.new("L", (64, 32)))
    (folder / builders.CITYSCAPES_PHOTOS).write_bytes(_zip({"license.txt": b"x", **photos}))
    (folder / builders.CITYSCAPES_LABELS).write_bytes(_zip({"README": b"x", **labels}))


CITY_FRAMES = {
    "train": ["bremen_000001_000019", "aachen_000000_000019", "aachen_000001_000019"],
    "val": ["lindau_000000_000019", "frankfurt_000000_000294"],
    "test": ["berlin_000000_000019"],  # no labels officially; must be skipped
}


def test_cityscapes_conversion_from_archives(tmp_path: Path) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    _cityscapes_zips(src, CITY_FRAMES)
    out = tmp_path / "city"
    result = recipes.prepare("cityscapes", out, source=src)
    assert dict(result.counts) == {"trainA": 3, "trainB": 3, "testA": 2, "testB": 2, "testB_paired": 2}
    photo = Image.open(out / "trainA" / "00000.png")
    assert photo.size == (256, 256) and photo.mode == "RGB"
    # Sorted by city_seq_frame: aachen_000000 (grey 15) first, bremen (grey 5) last.
    assert [np.asarray(Image.open(out / "trainA" / f"{i:05d}.png"))[0, 0, 0] for i in range(3)] == [15, 25, 5]
    # Label maps keep exact palette colours (NEAREST) and stay aligned with their photos.
    label = np.asarray(Image.open(out / "trainB" / "00000.png"))
    assert {tuple(c) for c in label.reshape(-1, 3)} <= set(PALETTE)
    expected = np.asarray(_label_map(15).resize((256, 256), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(label, expected)
    np.testing.assert_array_equal(_folder_images(out / "testB_paired"), _folder_images(out / "testB"))


def test_cityscapes_mismatched_archives_name_the_missing_frame(tmp_path: Path) -> None:
    _cityscapes_zips(tmp_path, CITY_FRAMES, drop_label="aachen_000001_000019")
    with pytest.raises(InputError, match=f"{builders.CITYSCAPES_LABELS}: no train image for aachen_000001_000019"):
        recipes.prepare("cityscapes", tmp_path / "out", source=tmp_path)


def test_cityscapes_missing_archive_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=builders.CITYSCAPES_PHOTOS):
        recipes.prepare("cityscapes", tmp_path / "out", source=tmp_path)


# ---------------------------------------------------------------------------------------------
# Recipe table and CLI
# ---------------------------------------------------------------------------------------------


def test_recipe_table_is_consistent() -> None:
    for name, recipe in recipes.RECIPES.items():
        assert recipe.name == name and recipe.license and recipe.description
        if recipe.kind == "download":
            assert recipe.url == f"{recipes.CYCLEGAN_URL}/{name}.zip" and recipe.archive_root == name
        else:
            assert recipe.url is None
            assert (recipe.build is not None) == (recipe.kind == "offline")
            assert (recipe.convert is not None) == (recipe.kind == "manual")


def test_cli_list_shows_every_recipe() -> None:
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0
    for name in recipes.RECIPES:
        assert name in result.output
    assert "manual" in result.output and "download" in result.output


def test_cli_prepare_downloads_through_the_env_mirror(zoo: FileServer, tmp_path: Path) -> None:
    env = {recipes.URL_ENV: zoo.url + "/mirror"}
    result = CliRunner(env=env).invoke(app, ["prepare", "horse2zebra", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "prepared horse2zebra" in result.stdout and "trainA 3" in result.stdout
    assert len(list((tmp_path / "o" / "testB").iterdir())) == 1
    again = CliRunner(env=env).invoke(app, ["prepare", "horse2zebra", str(tmp_path / "o"), "--force"])
    assert again.exit_code == 0, again.output


def test_cli_bad_name_exits_2_with_one_line_and_close_matches(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prepare", "horse2zebr", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: unknown dataset 'horse2zebr'; did you mean horse2zebra")
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_cli_module_does_not_import_torch_or_numpy() -> None:
    import subprocess
    import sys

    code = "import sys, i2icli.cli.data_cmd; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == "[]"

"""Tests for i2icli.imageio: odd real-world files, failures, tensors, writing, padding, listing.

Every input is generated here with Pillow/numpy; no binary fixtures.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageFile

from i2icli.errors import InputError, UsageError
from i2icli.imageio import ImageWriteError, LoadedImage, read_image, to_pil, to_tensor, write_image
from i2icli.listing import list_images
from i2icli.padding import Padding, pad_for_network

# ----------------------------------------------------------------------------- helpers


def _save(img: Image.Image, path: Path, **options: object) -> Path:
    img.save(path, **options)
    return path


def _opened(path: Path) -> Image.Image:
    """A file as Pillow stores it, with the file handle closed again."""
    with Image.open(path) as img:
        return img.copy()


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int64)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png16_rgb(values: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one) from a (H, W, 3) uint16 array."""
    height, width, _ = values.shape
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\x00" * 4 + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _linear_rgb_icc() -> bytes:
    """An ICC v2 matrix/TRC profile with sRGB primaries but a linear (gamma 1) tone curve.

    Pixel values in such a file are linear light, so converting to sRGB must brighten mid-grey.
    """
    identity_curve = b"curv" + b"\x00" * 4 + struct.pack(">I", 0)
    tags = [
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", _xyz_tag(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", _xyz_tag(0.1431, 0.0606, 0.7141)),
        (b"rTRC", identity_curve),
        (b"gTRC", identity_curve),
        (b"bTRC", identity_curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(blobs), len(data))
        blobs += data
    size = offset + len(blobs)
    header = (
        struct.pack(">I", size)
        + b"none"
        + bytes([2, 0x10, 0, 0])  # version 2.1
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + b"\x00" * 12  # creation date
        + b"acsp"
        + b"\x00" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15f16(0.9642)
        + _s15f16(1.0)
        + _s15f16(0.8249)
        + b"\x00" * 48  # creator, profile id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + blobs


# ----------------------------------------------------------------------------- reading


def test_rgb_png_reads_exactly_and_names_the_path(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = _save(Image.fromarray(pixels), tmp_path / "rgb.png")
    loaded = read_image(path)
    assert isinstance(loaded, LoadedImage)
    assert loaded.image.mode == "RGB" and loaded.alpha is None
    assert loaded.name == str(path)
    np.testing.assert_array_equal(np.asarray(loaded.image), pixels)


def test_bytes_source_uses_given_name_or_stdin(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (3, 2), (10, 20, 30)).save(buffer, "PNG")
    assert read_image(buffer.getvalue(), name="piped.png").name == "piped.png"
    loaded = read_image(buffer.getvalue())
    assert loaded.name == "<stdin>"
    assert loaded.image.getpixel((2, 1)) == (10, 20, 30)


def test_grayscale_to_rgb_and_rgb_to_gray(tmp_path: Path) -> None:
    gray = _save(Image.new("L", (4, 3), 77), tmp_path / "gray.png")
    as_rgb = read_image(gray, channels=3).image
    assert as_rgb.mode == "RGB" and as_rgb.getpixel((0, 0)) == (77, 77, 77)
    assert read_image(gray, channels=1).image.getpixel((0, 0)) == 77

    colour = _save(Image.new("RGB", (4, 3), (200, 100, 50)), tmp_path / "colour.png")
    as_gray = read_image(colour, channels=1).image
    assert as_gray.mode == "L"
    # ITU-R 601 luma: 0.299 R + 0.587 G + 0.114 B
    assert abs(as_gray.getpixel((0, 0)) - (0.299 * 200 + 0.587 * 100 + 0.114 * 50)) <= 1


def test_channels_must_be_one_or_three(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (2, 2)), tmp_path / "a.png")
    with pytest.raises(ValueError, match="channels"):
        read_image(path, channels=4)


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    # Pillow writes CMYK JPEGs Adobe-style (inverted), so reading back exercises that path too.
    path = _save(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), tmp_path / "print.jpg", quality=95)
    assert _opened(path).mode == "CMYK"
    red = _pixels(read_image(path).image)[8, 8]
    assert red[0] >= 250 and red[1] <= 5 and red[2] <= 5


def test_sixteen_bit_gray_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[65535, 32768, 0, 257, 1000]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    assert _opened(path).mode.startswith("I")
    got = _pixels(read_image(path, channels=1).image)[0]
    np.testing.assert_array_equal(got, [255, 128, 0, 1, 4])  # round(v / 257)
    rgb = _pixels(read_image(path).image)
    np.testing.assert_array_equal(rgb[0, 0], [255, 255, 255])


@pytest.mark.parametrize(
    ("mode", "samples", "expected"),
    [
        ("I;16B", [[65535, 32768, 514]], [[255, 128, 2]]),
        ("I", [[65535, 32768, 70000, -5]], [[255, 128, 255, 0]]),
        ("F", [[1.0, 0.5, 2.0, -1.0]], [[255, 128, 255, 0]]),
    ],
)
def test_wide_and_float_tiff_modes(
    tmp_path: Path, mode: str, samples: list, expected: list
) -> None:
    if mode == "F":
        img = Image.fromarray(np.array(samples, dtype=np.float32))
    elif mode == "I":
        img = Image.fromarray(np.array(samples, dtype=np.int32))
    else:
        big_endian = np.array(samples, dtype=">u2")
        img = Image.frombytes(mode, big_endian.shape[::-1], big_endian.tobytes())
    path = _save(img, tmp_path / "wide.tif")
    assert _opened(path).mode == mode
    np.testing.assert_array_equal(_pixels(read_image(path, channels=1).image), expected)


def test_sixteen_bit_rgb_png(tmp_path: Path) -> None:
    values = np.array([[[65535, 32768, 0], [0, 65535, 256]]], dtype=np.uint16)  # (1, 2, 3)
    path = tmp_path / "deep_rgb.png"
    path.write_bytes(_png16_rgb(values))
    got = _pixels(read_image(path).image)
    np.testing.assert_array_equal(got, [[[255, 128, 0], [0, 255, 1]]])


def test_palette_png_with_transparency_carries_alpha(tmp_path: Path) -> None:
    img = Image.new("P", (4, 2), 1)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    path = _save(img, tmp_path / "palette.png", transparency=0)
    loaded = read_image(path)
    assert loaded.alpha is not None and loaded.alpha.mode == "L"
    assert loaded.alpha.getpixel((0, 0)) == 0 and loaded.alpha.getpixel((1, 0)) == 255
    assert loaded.image.getpixel((1, 0)) == (0, 0, 255)


def test_palette_without_transparency_has_no_alpha(tmp_path: Path) -> None:
    img = Image.new("RGB", (4, 4), (0, 128, 255)).convert("P")
    loaded = read_image(_save(img, tmp_path / "palette.gif"))
    assert loaded.alpha is None
    assert loaded.image.mode == "RGB"


@pytest.mark.parametrize(("mode", "key"), [("L", 9), ("RGB", (9, 9, 9))])
def test_colour_key_transparency_becomes_alpha(tmp_path: Path, mode: str, key: int | tuple) -> None:
    img = Image.new(mode, (2, 1), 5 if mode == "L" else (5, 5, 5))
    img.putpixel((1, 0), key)
    alpha = read_image(_save(img, tmp_path / "keyed.png", transparency=key)).alpha
    assert alpha is not None
    assert (alpha.getpixel((0, 0)), alpha.getpixel((1, 0))) == (255, 0)


def test_lab_tiff_converts_to_srgb(tmp_path: Path) -> None:
    # Pillow's 8-bit LAB: L scaled to 0..255, a and b offset by 128; (136, 208, 195) is ~sRGB red.
    path = _save(Image.new("LAB", (4, 4), (136, 208, 195)), tmp_path / "lab.tif")
    red = _pixels(read_image(path).image)
    assert red[0, 0, 0] > 235 and red[0, 0, 1] < 20 and red[0, 0, 2] < 25


def test_gray_alpha_and_one_bit(tmp_path: Path) -> None:
    la = Image.merge("LA", (Image.new("L", (3, 3), 90), Image.new("L", (3, 3), 40)))
    loaded = read_image(_save(la, tmp_path / "la.png"), channels=1)
    assert loaded.image.getpixel((1, 1)) == 90
    assert loaded.alpha is not None and loaded.alpha.getpixel((1, 1)) == 40

    bits = Image.new("1", (3, 3), 0)
    bits.putpixel((2, 2), 1)
    got = read_image(_save(bits, tmp_path / "bits.png"))
    assert got.image.getpixel((2, 2)) == (255, 255, 255) and got.image.getpixel((0, 0)) == (0, 0, 0)


def test_rgba_alpha_round_trips_through_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    loaded = read_image(_save(Image.fromarray(rgba), tmp_path / "in.png"))
    assert loaded.alpha is not None
    np.testing.assert_array_equal(np.asarray(loaded.image), rgba[..., :3])
    out = tmp_path / "out.png"
    write_image(out, loaded.image, alpha=loaded.alpha)
    written = _opened(out)
    assert written.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(written), rgba)


# Orientation 6: stored image must be turned 90° clockwise; 8: 90° counter-clockwise.
@pytest.mark.parametrize(("orientation", "marked_corner"), [(6, "top_right"), (8, "bottom_left")])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, marked_corner: str) -> None:
    stored = Image.new("RGB", (48, 32), (0, 0, 0))
    stored.paste((255, 255, 255), (0, 0, 8, 8))  # mark the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(stored, tmp_path / "phone.jpg", exif=exif, quality=95)
    image = read_image(path).image
    assert image.size == (32, 48)  # width and height swapped
    width, height = image.size
    corners = {
        "top_left": (3, 3),
        "top_right": (width - 4, 3),
        "bottom_left": (3, height - 4),
        "bottom_right": (width - 4, height - 4),
    }
    for corner, xy in corners.items():
        brightness = image.getpixel(xy)[0]
        assert (brightness > 200) == (corner == marked_corner), corner


def test_icc_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    # Linear-light mid-grey 128/255 is sRGB ~188: the conversion must brighten it.
    img = Image.new("RGB", (4, 4), (128, 128, 128))
    path = _save(img, tmp_path / "linear.png", icc_profile=_linear_rgb_icc())
    value = read_image(path).image.getpixel((0, 0))
    assert all(185 <= v <= 191 for v in value), value


def test_srgb_profile_is_nearly_identity(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("RGB", (4, 4), (30, 140, 220))
    path = _save(img, tmp_path / "srgb.jpg", icc_profile=srgb, quality=100)
    value = read_image(path).image.getpixel((1, 1))
    assert all(abs(a - b) <= 3 for a, b in zip(value, (30, 140, 220))), value


def test_broken_icc_profile_falls_back_to_plain_conversion(tmp_path: Path) -> None:
    img = Image.new("RGB", (4, 4), (12, 34, 56))
    path = _save(img, tmp_path / "broken.png", icc_profile=b"not a profile")
    assert read_image(path).image.getpixel((0, 0)) == (12, 34, 56)


def test_gray_image_with_rgb_profile_falls_back(tmp_path: Path) -> None:
    img = Image.new("L", (4, 4), 99)
    path = _save(img, tmp_path / "mismatch.png", icc_profile=_linear_rgb_icc())
    assert read_image(path, channels=1).image.getpixel((0, 0)) == 99


@pytest.mark.parametrize("size", [(1, 1), (3, 700), (700, 3)])
def test_tiny_and_thin_images(tmp_path: Path, size: tuple[int, int]) -> None:
    path = _save(Image.new("RGB", size, (1, 2, 3)), tmp_path / "thin.png")
    loaded = read_image(path)
    assert loaded.image.size == size
    assert loaded.image.getpixel((size[0] - 1, size[1] - 1)) == (1, 2, 3)


# ----------------------------------------------------------------------------- failures


def _truncated_png(path: Path) -> None:
    rng = np.random.default_rng(2)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def _truncated_jpeg(path: Path) -> None:
    rng = np.random.default_rng(3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


FAILURES = [
    ("photo.jpg", lambda p: p.write_bytes(b""), "not an image (empty file)"),
    ("x.png", _truncated_png, "truncated or corrupt image data"),
    ("cut.jpg", _truncated_jpeg, "truncated or corrupt image data"),
    (
        "notes.jpg",
        lambda p: p.write_text("shopping list:\n- milk\n- eggs\n"),
        "not an image (looks like text)",
    ),
    (
        "page.png",
        lambda p: p.write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n"),
        "not an image (looks like HTML)",
    ),
    ("logo.png", lambda p: p.write_text('<?xml version="1.0"?>\n<svg></svg>\n'), "looks like SVG"),
    (
        "blob.png",
        lambda p: p.write_bytes(bytes(range(256)) * 4),
        "not an image (unknown or unsupported format)",
    ),
    # EPS would be rendered by Ghostscript; untrusted files must never reach it.
    (
        "figure.eps",
        lambda p: p.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n"),
        "not an image",
    ),
    ("missing.png", lambda p: None, "no such file"),
    ("folder.png", lambda p: p.mkdir(), "is a folder"),
]


@pytest.mark.parametrize(("file_name", "make", "message"), FAILURES, ids=[f[0] for f in FAILURES])
def test_bad_inputs_raise_one_line_naming_the_file(
    tmp_path: Path, file_name: str, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / file_name
    make(path)
    with pytest.raises(InputError) as caught:
        read_image(path)
    text = str(caught.value)
    assert text.startswith(str(path) + ": ")
    assert message in text
    assert "\n" not in text
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_bad_bytes_use_the_given_name() -> None:
    with pytest.raises(InputError, match=r"^upload\.jpg: not an image \(empty file\)$"):
        read_image(b"", name="upload.jpg")


# Between the limit and twice it Pillow also warns; above twice it raises itself.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("limit", [1000, 300])  # 40x40 = 1600 px: above limit, and above 2 x limit
def test_decompression_bomb_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    path = _save(Image.new("RGB", (40, 40)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    expected = rf"^{re.escape(str(path))}: image too large \(over {limit} pixels"
    with pytest.raises(InputError, match=expected):
        read_image(path)


# ----------------------------------------------------------------------------- tensors


def test_to_tensor_range_shape_and_exact_round_trip() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgb = Image.fromarray(np.stack([levels, levels[::-1], levels.T], axis=-1))
    t = to_tensor(rgb)
    assert t.shape == (3, 16, 16) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t.max().item() == 1.0
    assert torch.allclose(t[0, 0, 1], torch.tensor((1 / 255 - 0.5) / 0.5))
    np.testing.assert_array_equal(np.asarray(to_pil(t)), np.asarray(rgb))

    gray = Image.fromarray(levels)
    assert to_tensor(gray).shape == (1, 16, 16)
    back = to_pil(to_tensor(gray))
    assert back.mode == "L"
    np.testing.assert_array_equal(np.asarray(back), levels)


def test_to_pil_clamps_instead_of_stretching() -> None:
    t = torch.tensor([[[-3.0, -1.0, 0.0, 0.5, 7.0]]])  # (1, 1, 5), range far outside [-1, 1]
    np.testing.assert_array_equal(np.asarray(to_pil(t))[0], [0, 0, 128, 191, 255])
    # A low-contrast output must stay low-contrast (a min-max stretch would give 0 and 255).
    flat = to_pil(torch.tensor([[[0.1, 0.2]]]))
    np.testing.assert_array_equal(np.asarray(flat)[0], [140, 153])


@pytest.mark.parametrize("shape", [(2, 4, 4), (1, 3, 4, 4), (4, 4)])
def test_to_pil_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="to_pil"):
        to_pil(torch.zeros(shape))


def test_to_pil_rejects_nan_and_to_tensor_rejects_other_modes() -> None:
    with pytest.raises(ValueError, match="NaN"):
        to_pil(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="RGBA"):
        to_tensor(Image.new("RGBA", (2, 2)))


# ----------------------------------------------------------------------------- writing


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_creates_parents_atomically_and_leaves_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "b" / "out.png"
    image = Image.new("RGB", (5, 4), (9, 8, 7))
    write_image(dest, image)
    assert _opened(dest).getpixel((4, 3)) == (9, 8, 7)
    assert _leftovers(dest.parent) == []
    write_image(str(dest), Image.new("RGB", (5, 4), (1, 1, 1)))  # overwrite an existing file
    assert _opened(dest).getpixel((0, 0)) == (1, 1, 1)
    assert _leftovers(dest.parent) == []


def test_interrupted_write_keeps_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "out.png"
    write_image(dest, Image.new("RGB", (4, 4), (50, 60, 70)))

    def half_write_then_interrupt(self: Image.Image, fp, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", half_write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_image(dest, Image.new("RGB", (4, 4)))
    monkeypatch.undo()
    assert _opened(dest).getpixel((0, 0)) == (50, 60, 70)
    assert _leftovers(tmp_path) == []


def test_write_error_names_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    (dest / "inside").mkdir(parents=True)  # a non-empty folder where the file should go
    with pytest.raises(ImageWriteError, match=r"taken: cannot write"):
        write_image(dest, Image.new("RGB", (2, 2)))
    assert _leftovers(tmp_path) == []


def test_jpg_drops_alpha_webp_keeps_it(tmp_path: Path) -> None:
    image = Image.new("RGB", (8, 8), (200, 10, 10))
    alpha = Image.new("L", (8, 8), 255)
    alpha.paste(0, (0, 0, 4, 8))
    write_image(tmp_path / "o.jpg", image, alpha=alpha, format="jpg")
    assert _opened(tmp_path / "o.jpg").mode == "RGB"
    write_image(tmp_path / "o.webp", image, alpha=alpha, format="webp")
    webp = _opened(tmp_path / "o.webp")
    assert webp.mode == "RGBA"
    written_alpha = webp.getchannel("A")
    assert written_alpha.getpixel((0, 0)) < 20 and written_alpha.getpixel((7, 0)) > 235


def test_alpha_of_another_size_is_resized_and_gray_gets_la(tmp_path: Path) -> None:
    alpha = Image.new("L", (2, 2), 128)
    write_image(tmp_path / "g.png", Image.new("L", (6, 4), 30), alpha=alpha)
    written = _opened(tmp_path / "g.png")
    assert written.mode == "LA" and written.size == (6, 4)
    assert written.getpixel((5, 3)) == (30, 128)


def test_write_to_file_object_and_unknown_format(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    write_image(buffer, Image.new("RGB", (3, 3), (4, 5, 6)))
    assert buffer.getvalue().startswith(b"\x89PNG")
    assert read_image(buffer.getvalue()).image.getpixel((0, 0)) == (4, 5, 6)
    with pytest.raises(UsageError, match="'gif'"):
        write_image(tmp_path / "x.gif", Image.new("RGB", (3, 3)), format="gif")


# ----------------------------------------------------------------------------- padding


def _expected_padding(x: np.ndarray, multiple: int, min_size: int) -> np.ndarray:
    """The documented placement, recomputed with numpy: edge to min_size, then reflect."""
    for axis in (2, 3):
        grow = [(0, 0)] * 4
        grow[axis] = (0, max(min_size - x.shape[axis], 0))
        x = np.pad(x, grow, mode="edge")
        grow[axis] = (0, -x.shape[axis] % multiple)
        x = np.pad(x, grow, mode="edge" if x.shape[axis] == 1 else "reflect")
    return x


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (3, 700), (8, 8), (2, 9), (1, 6)])
@pytest.mark.parametrize(("multiple", "min_size"), [(4, 8), (16, 0), (4, 0)])
def test_padding_shapes_interior_and_placement(
    size: tuple[int, int], multiple: int, min_size: int
) -> None:
    x = torch.randn(2, 3, *size)
    padded, padding = pad_for_network(x, multiple, min_size)
    height, width = padded.shape[-2:]
    assert height % multiple == 0 and width % multiple == 0
    assert height >= min_size and width >= min_size
    assert padding == Padding(height=size[0], width=size[1])
    assert torch.equal(padded[..., : size[0], : size[1]], x)
    assert torch.equal(padding.crop(padded), x)
    np.testing.assert_array_equal(padded.numpy(), _expected_padding(x.numpy(), multiple, min_size))


def test_padding_uses_replicate_then_reflect() -> None:
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])  # (1, 1, 1, 3)
    padded, _ = pad_for_network(x, multiple=4, min_size=5)
    # Width 3 -> 5 by replicating 3; then 5 -> 8 by reflecting without repeating the edge.
    assert padded[0, 0, 0].tolist() == [1, 2, 3, 3, 3, 3, 3, 2]
    # Height 1 -> 5 by replicating the single row; then 5 -> 8 by reflecting identical rows.
    assert torch.equal(padded[0, 0], padded[0, 0, :1].expand(8, 8))

    y = torch.arange(3.0).reshape(1, 1, 3, 1)  # column [0, 1, 2]
    padded, _ = pad_for_network(y, multiple=12, min_size=0)
    # Mirror continued periodically past the input length: 0 1 2 1 0 1 2 1 ...
    assert padded[0, 0, :, 0].tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]
    assert padded.shape[-1] == 12  # the width-1 side is replicated


def test_crop_undoes_padding_after_a_size_preserving_network() -> None:
    torch.manual_seed(0)
    net = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    x = torch.randn(1, 3, 37, 53)
    padded, padding = pad_for_network(x, 4, 8)
    with torch.no_grad():
        out = padding.crop(net(padded))
        expected = net(padded)[..., :37, :53]
    assert out.shape == x.shape
    assert torch.equal(out, expected)


def test_padding_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="B, C, H, W"):
        pad_for_network(torch.zeros(3, 4, 4), 4, 0)
    with pytest.raises(ValueError, match="multiple"):
        pad_for_network(torch.zeros(1, 3, 4, 4), 0, 0)


# ----------------------------------------------------------------------------- listing inputs


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    files = ["b.jpg", "a.PNG", "notes.txt", ".hidden.jpg", "sub/c.webp", "sub/deep/d.tif"]
    for relative in [*files, ".git/e.png"]:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return root


def _relatives(pairs: list[tuple[Path, Path]]) -> list[str]:
    return [relative.as_posix() for _, relative in pairs]


def test_list_folder_flat_and_recursive(tree: Path) -> None:
    flat = list_images([str(tree)], recursive=False)
    assert _relatives(flat) == ["a.PNG", "b.jpg"]
    assert flat[0][0] == tree / "a.PNG"
    deep = list_images([str(tree)], recursive=True)
    assert _relatives(deep) == ["a.PNG", "b.jpg", "sub/c.webp", "sub/deep/d.tif"]


def test_list_named_files_keep_any_extension_and_dedupe(tree: Path) -> None:
    pairs = list_images([str(tree / "notes.txt"), str(tree), str(tree / "b.jpg")], recursive=False)
    assert [p for p, _ in pairs] == sorted(p for p, _ in pairs)
    assert [p.name for p, _ in pairs] == ["a.PNG", "b.jpg", "notes.txt"]
    assert _relatives(pairs) == ["a.PNG", "b.jpg", "notes.txt"]


def test_list_globs(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _relatives(list_images([str(tree / "*.jpg")], recursive=False)) == ["b.jpg"]
    deep = list_images([str(tree / "**" / "*.*")], recursive=True)
    assert _relatives(deep) == ["a.PNG", "b.jpg", "sub/c.webp", "sub/deep/d.tif"]
    monkeypatch.chdir(tree)
    assert list_images(["sub/*.webp"], recursive=False) == [(Path("sub/c.webp"), Path("c.webp"))]


@pytest.mark.parametrize("entry", ["nowhere", "nowhere/*.png", "*.gif"])
def test_list_missing_path_or_empty_glob_is_usage_error(
    tree: Path, monkeypatch: pytest.MonkeyPatch, entry: str
) -> None:
    monkeypatch.chdir(tree)
    with pytest.raises(UsageError, match="^" + re.escape(entry) + ": "):
        list_images([str(tree / "b.jpg"), entry], recursive=False)


def test_one_gray_mode_list_for_listing_and_evaluation(tmp_path: Path) -> None:
    """A big-endian 16-bit TIFF ("I;16B") is gray for training's channel choice and for eval's alike."""
    from i2icli.eval.datasets import image_channels
    from i2icli.imageio import GRAY_MODES
    from i2icli.listing import images_are_gray

    folder = tmp_path / "wide"
    folder.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8)).convert("I;16B").save(folder / "x.tif")
    assert Image.open(folder / "x.tif").mode == "I;16B" and {"I;16L", "I;16B", "I;16N", "F", "L"} <= GRAY_MODES
    assert images_are_gray([folder / "x.tif"]) and image_channels(folder) == 1

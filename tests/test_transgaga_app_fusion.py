"""TransGaGa's ``arch.app_fusion`` (ours, docs/methods/transgaga.md "Style diversity on sneaker <-> boot"):
"concat" (the seed's decoder, default, unchanged keys) or "adain" (the appearance code sets the AdaIN
scale and shift of every decoder residual block through an MLP, as MUNIT's style does)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from i2icli.config import ConfigError, apply_overrides
from i2icli.errors import UsageError
from i2icli.methods.load import load_checkpoint
from i2icli.methods.transgaga import METHOD, TransGaGaArch, TransGaGaModel, TransGaGaObjective
from i2icli.nn.adain import AdaptiveInstanceNorm2d, split_adain_params
from i2icli.registry import PRETRAINED
from i2icli.sources import fetch, resolve
from i2icli.train.loop import LoopOptions, train

torch.set_num_threads(1)
TINY = METHOD.test_presets["reencode"].config
ADAIN = METHOD.test_presets["adain"].config

# The decoder's state-dict keys before the option existed (tiny preset: one residual block, one upsampling).
CONCAT_DEC_KEYS = {
    "fuse.weight", "fuse.bias",
    *(f"res.model.0.model.{i}.{p}" for i in (0, 1) for p in ("conv.weight", "conv.bias", "norm.gamma", "norm.beta")),
    "up.1.conv.weight", "up.1.conv.bias", "up.1.norm.gamma", "up.1.norm.beta", "up.2.conv.weight", "up.2.conv.bias",
}  # fmt: skip


def _geometry_code(model: TransGaGaModel, n: int) -> torch.Tensor:
    """One landmark set's geometry code, repeated ``n`` times: (n, D, h, w)."""
    dom = model.dom_a
    points = torch.rand(1, model.arch.n_landmarks, 2, generator=torch.Generator().manual_seed(1)) * 1.2 - 0.6
    return dom.geo_enc(dom.render(points, 16, 16)).expand(n, -1, -1, -1)


def test_default_concat_keeps_the_decoder_keys_and_the_shipped_model_loads() -> None:
    assert TransGaGaArch().app_fusion == "concat"
    assert set(TransGaGaModel(TINY.arch).dom_a.dec.state_dict()) == CONCAT_DEC_KEYS
    if "transgaga-digits" in PRETRAINED:  # saved before the option: its config has no app_fusion
        model, _ = load_checkpoint(fetch(resolve("transgaga-digits")), device="cpu")  # strict load
        assert model.arch.app_fusion == "concat" and hasattr(model.dom_a.dec, "fuse")


def test_adain_feeds_every_residual_norm_from_the_code() -> None:
    """Each AdaIN layer's output has, per channel, exactly the mean β and standard deviation |γ| the
    MLP makes of the appearance code for that layer: the code reaches every block, not only the first."""
    torch.manual_seed(0)
    model = TransGaGaModel(ADAIN.arch).eval()
    dec = model.dom_a.dec
    keys = set(dec.state_dict())
    assert not any(k.startswith("fuse.") for k in keys) and any(k.startswith("mlp.") for k in keys)
    norms = [m for m in dec.res.modules() if isinstance(m, AdaptiveInstanceNorm2d)]
    assert len(norms) == 2 * ADAIN.arch.dec_res
    outputs: list[torch.Tensor] = []
    # Copies: the ReLU after the first norm of each block works in place.
    hooks = [n.register_forward_hook(lambda _m, _i, out: outputs.append(out.clone())) for n in norms]
    a = torch.randn(3, ADAIN.arch.app_code, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        dec(_geometry_code(model, 3), a)
        pairs = split_adain_params(dec.mlp(a), [n.num_features for n in norms])
    for h in hooks:
        h.remove()
    for out, (weight, bias) in zip(outputs, pairs, strict=True):
        torch.testing.assert_close(out.mean((2, 3)), bias, atol=1e-4, rtol=0)
        torch.testing.assert_close(out.std((2, 3), unbiased=False), weight.abs(), atol=1e-3, rtol=1e-3)


def test_adain_codes_change_the_whole_image_for_one_geometry() -> None:
    """At initialisation two appearance codes give different images for the same landmarks, and the
    difference is spread over the image, not a constant offset per channel."""
    torch.manual_seed(0)
    model = TransGaGaModel(ADAIN.arch).eval()
    a = torch.randn(2, ADAIN.arch.app_code, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model.dom_a.dec(_geometry_code(model, 2), a)  # (2, C, 16, 16)
    diff = y[0] - y[1]
    assert float((diff.abs() > 1e-3).float().mean()) > 0.9  # nearly every pixel moves
    varying = diff - diff.mean((1, 2), keepdim=True)  # what is left after a per-channel offset
    assert float(varying.abs().mean()) > 0.5 * float(diff.abs().mean())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: replace(TINY.arch, app_fusion="film"), "arch.app_fusion film: must be one of concat, adain"),
        (lambda: apply_overrides(TINY, ["arch.app_fusion=film"]), "'film' is not one of 'concat', 'adain'"),
    ],
)
def test_an_unknown_fusion_is_refused(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((UsageError, ConfigError), match=message):
        make()


def test_adain_trains_through_all_three_stages_and_moves_the_mlp(tmp_path: Path) -> None:
    cfg = apply_overrides(TINY, ["arch.app_fusion=adain"])
    assert cfg.arch.app_fusion == "adain"
    torch.manual_seed(0)
    model = TransGaGaModel(cfg.arch)
    mlp_before = [p.detach().clone() for p in model.dom_b.dec.mlp.parameters()]
    obj = TransGaGaObjective(cfg, model, _Noise(), seed=0)
    mlp = model.dom_a.dec.mlp.model[0].fc.weight
    assert all(any(p is mlp for p in phase.parameters()) for phase in obj.phases() if phase.name != "dis")
    steps = cfg.translate_start + 2  # the last two in the translation stage
    train(obj, _Noise(), LoopOptions(max_steps=steps, seed=0, save_every=0, sample_every=0, log_every=1),
          run_dir=tmp_path, device=torch.device("cpu"))  # fmt: skip
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("cyc_pix_a" in r for r in records)  # stage 3 ran
    assert all(torch.isfinite(torch.tensor(r["rec_a"])) for r in records if "rec_a" in r)
    assert any(not torch.equal(b, p) for b, p in zip(mlp_before, model.dom_b.dec.mlp.parameters(), strict=True))
    styles = model.eval().random_style(2, torch.Generator().manual_seed(0))
    x = _Noise()[0]["a"][:1]
    with torch.no_grad():
        out = model.decode(model.encode_content(x, "a").expand(2, -1, -1, -1), styles, "b")
    assert out.shape == (2, cfg.arch.channels_b, 16, 16) and not torch.equal(out[0], out[1])


class _Noise:
    """Unpaired smooth random images, a pure function of the step (the training data contract)."""

    files_a = [Path(f"a{i}.png") for i in range(16)]
    files_b = [Path(f"b{i}.png") for i in range(16)]

    def _images(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        low = torch.rand(n, TINY.arch.channels_a, 4, 4, generator=g) * 2 - 1
        return torch.nn.functional.interpolate(low, size=16, mode="bilinear", align_corners=False)

    def __getitem__(self, step: int) -> dict:
        return {"a": self._images(2, 2 * step), "b": self._images(2, 2 * step + 1), "step": step,
                "index_a": torch.zeros(2, dtype=torch.long), "index_b": torch.zeros(2, dtype=torch.long)}  # fmt: skip

    def __len__(self) -> int:
        return 10**6

    def sample(self, domain: str, n: int, seed: int) -> torch.Tensor:
        return self._images(min(n, 16), 1000 + 2 * seed + (domain == "b"))

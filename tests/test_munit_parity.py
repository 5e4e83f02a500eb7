"""MUNIT networks and the official-checkpoint converter against data made by NVlabs/MUNIT itself.

Fixtures (tests/fixtures/munit/, see its README.md): ``munit_gen_tiny.pt`` holds official
``AdaINGen`` weights (dim 8), ``munit_tiny_io.safetensors`` the official outputs for them with
every call described in ``munit_tiny_io.json``, and ``munit_keys_*.json`` official state-dict
manifests including the AdaIN parameter layout.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import fixture_tensors, loaded
from torch import Tensor, nn

from i2icli.config import ConfigError, from_dict, to_dict
from i2icli.convert.munit import convert_munit, load_official_munit
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.munit import MunitArch, MunitModel
from i2icli.nn.adain import (
    AdaptiveInstanceNorm2d,
    LayerNorm,
    MsDisArch,
    MultiScaleDiscriminator,
    init_weights,
)

FIXTURES = Path(__file__).parent / "fixtures" / "munit"
ATOL = 1e-5  # fixture README: observed float noise <= 6e-6; never loosen


def assert_close(actual: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0.0)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def model() -> MunitModel:
    arch, state = load_official_munit(FIXTURES / "munit_gen_tiny.pt")
    return loaded(MunitModel(arch), state)


@pytest.fixture(scope="module")
def io() -> dict[str, Tensor]:
    return fixture_tensors("munit/munit_tiny_io.safetensors")


@pytest.fixture(scope="module")
def sidecar() -> dict:
    return json.loads((FIXTURES / "munit_tiny_io.json").read_text())


def _manifest(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


# --------------------------------------------------------------------------- parity

Call = Callable[[MunitModel, dict[str, Tensor]], Tensor]

# Each entry mirrors the sidecar's "call" for that tensor, fed with the recorded inputs
# (gen_a -> domain "a", gen_b -> domain "b"; "x" also stands in for a domain-b image).
CALLS: dict[str, Call] = {
    "content_a": lambda m, t: m.encode(t["x"], "a")[0],
    "style_a": lambda m, t: m.encode(t["x"], "a")[1],
    "content_b": lambda m, t: m.encode(t["x"], "b")[0],
    "style_b": lambda m, t: m.encode(t["x"], "b")[1],
    "adain_params_recon_a": lambda m, t: m.gen_a.mlp(t["style_a"]),
    "adain_params_recon_b": lambda m, t: m.gen_b.mlp(t["style_b"]),
    "adain_params_a2b": lambda m, t: m.gen_b.mlp(t["s"]),
    "adain_params_b2a": lambda m, t: m.gen_a.mlp(t["s"]),
    "recon_a": lambda m, t: m.decode(t["content_a"], t["style_a"], "a"),
    "recon_b": lambda m, t: m.decode(t["content_b"], t["style_b"], "b"),
    "a2b": lambda m, t: m.decode(t["content_a"], t["s"], "b"),
    "b2a": lambda m, t: m.decode(t["content_b"], t["s"], "a"),
    "a2b_guided": lambda m, t: m.decode(t["content_a"], t["style_b"], "b"),
    "b2a_guided": lambda m, t: m.decode(t["content_b"], t["style_a"], "a"),
}


def test_every_recorded_tensor_has_a_call(sidecar: dict, io: dict[str, Tensor]) -> None:
    outputs = {name for name, spec in sidecar["tensors"].items() if spec["role"] != "input"}
    assert set(CALLS) == outputs
    assert set(io) == outputs | {"x", "s"}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_matches_official_output(
    name: str, model: MunitModel, io: dict[str, Tensor], sidecar: dict
) -> None:
    with torch.no_grad():
        out = CALLS[name](model, io)
    assert list(out.shape) == sidecar["tensors"][name]["shape"]
    assert_close(out, io[name])


@pytest.mark.parametrize("direction", ["a2b", "b2a"])
def test_translate_end_to_end(model: MunitModel, io: dict[str, Tensor], direction: str) -> None:
    # translate = encode content with the source generator, decode with the target's and style s.
    with torch.no_grad():
        out = model.translate(io["x"], direction, io["s"])
    assert_close(out, io[direction])


def test_reconstruction_chains_encode_and_decode(model: MunitModel, io: dict[str, Tensor]) -> None:
    # recon_a also equals the official gen_a(x): encode then decode with the image's own style.
    with torch.no_grad():
        content, style = model.encode(io["x"], "a")
        assert_close(model.decode(content, style, "a"), io["recon_a"])


def test_inferred_tiny_arch() -> None:
    arch, _ = load_official_munit(FIXTURES / "munit_gen_tiny.pt")
    params = _manifest("munit_keys_tiny.json")["meta"]["params"]
    expected = MunitArch(**params, channels_a=3, channels_b=3)
    assert arch == expected


# --------------------------------------------------------------------------- AdaIN


def test_adain_layers_receive_the_documented_slices(
    model: MunitModel, io: dict[str, Tensor]
) -> None:
    layout = _manifest("munit_keys_tiny.json")["meta"]["adain_param_layout"]
    gen = model.gen_a
    ours = [name for name, m in gen.named_modules() if isinstance(m, AdaptiveInstanceNorm2d)]
    assert ours == [entry["module"] for entry in layout]

    received: dict[str, list[tuple[Tensor, Tensor]]] = {}

    def hook(name: str):
        def record(_module: nn.Module, args: tuple[Tensor, ...], _out: Tensor) -> None:
            received.setdefault(name, []).append((args[1], args[2]))  # (weight, bias)

        return record

    handles = [
        gen.get_submodule(e["module"]).register_forward_hook(hook(e["module"])) for e in layout
    ]
    try:
        with torch.no_grad():
            params = gen.mlp(io["style_a"])  # (B, 256)
            gen.decode(io["content_a"], io["style_a"])
    finally:
        for h in handles:
            h.remove()

    covered = []
    for entry in layout:
        (weight, bias), = received[entry["module"]]
        b0, b1 = entry["bias_(mean)_slice"]
        w0, w1 = entry["weight_(std)_slice"]
        assert torch.equal(bias, params[:, b0:b1])
        assert torch.equal(weight, params[:, w0:w1])
        covered += list(range(b0, b1)) + list(range(w0, w1))
    assert sorted(covered) == list(range(params.shape[1]))


def test_adain_is_per_sample_instance_norm_with_external_affine() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, generator=g) * 3 + 1
    weight, bias = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    out = AdaptiveInstanceNorm2d(3)(x, weight, bias)
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), unbiased=False, keepdim=True)
    normed = (x - mean) / torch.sqrt(var + 1e-5)
    expected = normed * weight[:, :, None, None] + bias[:, :, None, None]
    assert_close(out, expected)
    assert list(AdaptiveInstanceNorm2d(3).state_dict()) == []


# --------------------------------------------------------------------------- LayerNorm


def _layer_norm_by_hand(x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
    out = torch.empty_like(x, dtype=torch.float64)
    for n in range(x.shape[0]):
        values = [float(v) for v in x[n].flatten()]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))  # unbiased
        for c in range(x.shape[1]):
            out[n, c] = (x[n, c].double() - mean) / (std + eps) * float(gamma[c]) + float(beta[c])
    return out


@pytest.mark.parametrize("batch", [1, 3])
def test_layer_norm_matches_hand_formula(batch: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 3, 5, generator=g) * 2 + 0.5
    ln = LayerNorm(4)
    with torch.no_grad():
        ln.gamma.copy_(torch.randn(4, generator=g))
        ln.beta.copy_(torch.randn(4, generator=g))
    expected = _layer_norm_by_hand(x, ln.gamma.detach(), ln.beta.detach(), 1e-5)
    with torch.no_grad():
        out = ln(x)
        # GroupNorm(1) is the usual look-alike (biased variance inside the sqrt); it must not match.
        look_alike = torch.nn.functional.group_norm(x, 1, ln.gamma, ln.beta, eps=1e-5)
    assert_close(out.double(), expected)
    assert not torch.allclose(look_alike.double(), expected, atol=ATOL, rtol=0.0)
    assert sorted(ln.state_dict()) == ["beta", "gamma"]


def test_layer_norm_init_gamma_uniform_beta_zero() -> None:
    ln = LayerNorm(1000)
    gamma = ln.gamma.detach()
    assert float(gamma.min()) >= 0.0 and float(gamma.max()) < 1.0
    assert 0.4 < float(gamma.mean()) < 0.6
    assert torch.equal(ln.beta, torch.zeros(1000))


# --------------------------------------------------------------------------- converter


@pytest.fixture(scope="module")
def full_checkpoint() -> dict[str, dict[str, Tensor]]:
    """Random tensors with the shapes of the official full-size AdaINGen, for both domains."""
    keys = _manifest("munit_keys_full.json")["keys"]
    g = torch.Generator().manual_seed(0)
    return {d: {k["key"]: torch.randn(k["shape"], generator=g) for k in keys} for d in ("a", "b")}


def _copy(obj: dict[str, dict[str, Tensor]]) -> dict[str, dict[str, Tensor]]:
    return {domain: dict(state) for domain, state in obj.items()}


def test_full_checkpoint_converts_with_official_config(full_checkpoint: dict) -> None:
    arch, state = convert_munit(_copy(full_checkpoint))
    assert arch == MunitArch()  # our defaults are the official edges2shoes / summer2winter config
    inferred = (arch.dim, arch.style_dim, arch.n_downsample, arch.n_res, arch.mlp_dim)
    assert inferred == (64, 8, 2, 4, 256)
    assert (arch.channels_a, arch.channels_b) == (3, 3)

    manifest = _manifest("munit_keys_full.json")["keys"]
    dummies = [k["key"] for k in manifest if k["key"].endswith(("running_mean", "running_var"))]
    assert len(dummies) == 16
    assert len(state) == 2 * (len(manifest) - len(dummies))
    assert not any(k.endswith(("running_mean", "running_var")) for k in state)
    key = "mlp.model.2.fc.weight"
    assert torch.equal(state[f"gen_b.{key}"], full_checkpoint["b"][key])

    with torch.device("meta"):
        net = MunitModel(arch)
    net.load_state_dict(state, strict=True, assign=True)
    n_params = sum(p.numel() for p in net.gen_a.parameters())
    assert n_params == _manifest("munit_keys_full.json")["meta"]["num_parameters"]


def test_stale_instance_norm_statistics_are_dropped(full_checkpoint: dict) -> None:
    obj = _copy(full_checkpoint)
    # PyTorch 0.3/0.4-era releases stored IN running statistics under enc_content.
    obj["a"]["enc_content.model.0.norm.running_mean"] = torch.zeros(64)
    obj["a"]["enc_content.model.0.norm.running_var"] = torch.ones(64)
    obj["b"]["enc_content.model.3.model.1.model.0.norm.num_batches_tracked"] = torch.tensor(0)
    _, state = convert_munit(obj)
    assert not any("norm.running" in k or "num_batches_tracked" in k for k in state)


# (domain, official key, replacement tensor or None to delete it); the error must name the key.
BAD_EDITS = {
    "unknown-key": ("a", "dec.model.9.conv.weight", torch.zeros(3)),
    "missing-key": ("b", "mlp.model.1.fc.bias", None),
    "missing-ln-gamma": ("a", "dec.model.4.norm.gamma", None),
    "missing-input-conv": ("b", "enc_content.model.0.conv.weight", None),
    "wrong-shape": ("b", "dec.model.5.conv.weight", torch.zeros(3, 32, 7, 7)),
    # Statistics are dropped only where an instance norm lives; on the LayerNorm they are unknown.
    "stats-on-ln": ("a", "dec.model.2.norm.running_mean", torch.zeros(128)),
}


@pytest.mark.parametrize("case", sorted(BAD_EDITS))
def test_bad_checkpoint_names_the_key(full_checkpoint: dict, case: str) -> None:
    domain, key, value = BAD_EDITS[case]
    obj = _copy(full_checkpoint)
    if value is None:
        del obj[domain][key]
    else:
        obj[domain][key] = value
    with pytest.raises(CheckpointError, match=f"{re.escape(repr(key))} of generator '{domain}'"):
        convert_munit(obj)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"a": {}}, "missing top-level key 'b'"),
        ({"gen": {}, "dis": {}}, "unexpected top-level key 'gen'"),
        ([1, 2], "expected a dict"),
        ({"a": {}, "b": 3}, "'b' is not a state dict"),
    ],
)
def test_bad_top_level_layout(obj: object, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        convert_munit(obj)


def test_load_official_reports_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "gen_00000001.pt"
    with pytest.raises(CheckpointError, match="gen_00000001.pt: file not found"):
        load_official_munit(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable PyTorch checkpoint"):
        load_official_munit(garbage)


def test_load_official_refuses_pickled_objects(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"a": {"opts": argparse.Namespace(lr=1e-4)}, "b": {}}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_official_munit(path)


def test_load_official_names_file_in_layout_errors(tmp_path: Path) -> None:
    path = tmp_path / "dis_00010000.pt"
    torch.save({"a": {"cnns.0.0.conv.weight": torch.zeros(1)}, "b": {}}, path)
    with pytest.raises(CheckpointError, match=r"dis_00010000\.pt: .*enc_content\.model\.0\.conv"):
        load_official_munit(path)


# --------------------------------------------------------------------------- model behaviour


def test_batch_independence(model: MunitModel, io: dict[str, Tensor]) -> None:
    x, s = io["x"], io["s"]
    with torch.no_grad():
        for direction in ("a2b", "b2a"):
            batch = model.translate(x, direction, s)
            alone = torch.cat(
                [model.translate(x[i : i + 1], direction, s[i : i + 1]) for i in range(2)]
            )
            assert_close(batch, alone)
        content, style = model.encode(x, "a")
        content_alone = torch.cat([model.encode_content(x[i : i + 1], "a") for i in range(2)])
        assert_close(content, content_alone)
        assert_close(style, torch.cat([model.encode_style(x[i : i + 1], "a") for i in range(2)]))


def test_one_style_applies_to_the_whole_batch(model: MunitModel, io: dict[str, Tensor]) -> None:
    x, s = io["x"], io["s"][:1]
    with torch.no_grad():
        shared = model.translate(x, "a2b", s)
        assert_close(shared, model.translate(x, "a2b", s.expand(2, -1, -1, -1)))


def test_decode_leaves_state_untouched_and_is_differentiable(
    model: MunitModel, io: dict[str, Tensor]
) -> None:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    style = io["s"].clone().requires_grad_(True)
    out = model.decode(io["content_a"], style, "b")
    out.square().mean().backward()
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any("running" in k for k in after)
    assert style.grad is not None and bool(torch.isfinite(style.grad).all())
    assert float(style.grad.abs().sum()) > 0
    model.zero_grad(set_to_none=True)


def test_random_style_is_seeded_standard_normal(model: MunitModel) -> None:
    first = model.random_style(4, torch.Generator().manual_seed(10))
    again = model.random_style(4, torch.Generator().manual_seed(10))
    other = model.random_style(4, torch.Generator().manual_seed(11))
    assert first.shape == (4, 8, 1, 1)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(first, torch.randn(4, 8, 1, 1, generator=torch.Generator().manual_seed(10)))
    many = model.random_style(20000, torch.Generator().manual_seed(0))
    assert abs(float(many.mean())) < 0.02 and abs(float(many.std()) - 1.0) < 0.02


def test_bad_direction_is_a_usage_error(model: MunitModel, io: dict[str, Tensor]) -> None:
    with pytest.raises(UsageError, match="'c2d'"):
        model.translate(io["x"], "c2d", io["s"])  # type: ignore[arg-type]


def test_bad_domain_is_a_usage_error(model: MunitModel, io: dict[str, Tensor]) -> None:
    with pytest.raises(UsageError, match="'x'"):
        model.encode(io["x"], "x")  # type: ignore[arg-type]


def test_channel_counts_per_domain() -> None:
    arch = MunitArch(dim=4, mlp_dim=8, n_res=1, channels_a=1, channels_b=3)
    net = MunitModel(arch).eval()
    x = torch.rand(1, 1, 16, 16) * 2 - 1
    style = net.random_style(1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net.translate(x, "a2b", style)
        back = net.translate(out, "b2a", style)
    assert out.shape == (1, 3, 16, 16) and back.shape == (1, 1, 16, 16)
    assert float(out.abs().max()) <= 1.0  # tanh output


# --------------------------------------------------------------------------- discriminator


def test_discriminator_official_keys_and_shapes() -> None:
    with torch.device("meta"):
        dis = MultiScaleDiscriminator(3, MsDisArch())
    shapes = {k: tuple(v.shape) for k, v in dis.state_dict().items()}
    expected_keys = {
        f"cnns.{s}.{i}.conv.{p}" for s in range(3) for i in range(4) for p in ("weight", "bias")
    } | {f"cnns.{s}.4.{p}" for s in range(3) for p in ("weight", "bias")}
    assert set(shapes) == expected_keys
    assert shapes["cnns.0.0.conv.weight"] == (64, 3, 4, 4)
    assert shapes["cnns.2.3.conv.weight"] == (512, 256, 4, 4)
    assert shapes["cnns.1.4.weight"] == (1, 512, 1, 1)


@pytest.mark.parametrize("num_scales", [1, 2, 3])
def test_discriminator_scales(num_scales: int) -> None:
    arch = MsDisArch(dim=4, n_layer=2, num_scales=num_scales)
    dis = MultiScaleDiscriminator(3, arch)
    x = torch.rand(2, 3, 32, 24)
    outs = dis(x)
    assert [tuple(o.shape) for o in outs] == [(2, 1, 8 >> i, 6 >> i) for i in range(num_scales)]
    if num_scales > 1:
        pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        assert_close(outs[1], dis.cnns[1](pooled))


# --------------------------------------------------------------------------- config and init


def test_arch_config_round_trip_and_errors() -> None:
    arch = MunitArch(dim=16, n_res=2, dis=MsDisArch(num_scales=2, gan_type="nsgan"))
    assert from_dict(MunitArch, to_dict(arch)) == arch
    assert to_dict(MunitArch())["dis"] == {
        "dim": 64, "n_layer": 4, "num_scales": 3, "norm": "none",
        "activ": "lrelu", "gan_type": "lsgan", "pad_type": "reflect",
    }
    with pytest.raises(ConfigError, match="nstyle"):
        from_dict(MunitArch, {"nstyle": 3})
    with pytest.raises(ConfigError, match="pad_type"):
        from_dict(MunitArch, {"pad_type": "circular"})
    with pytest.raises(ConfigError, match="dis.norm"):
        from_dict(MunitArch, {"dis": {"norm": "adain"}})


def test_init_weights() -> None:
    net = MunitModel(MunitArch(dim=8, n_res=1, mlp_dim=16))
    gamma = net.gen_a.dec.model[2].norm.gamma.detach().clone()
    init_weights(net, "kaiming")
    conv = net.gen_a.enc_content.model[3].model[0].model[0].conv  # 32 -> 32, 3x3: fan_in 288
    assert abs(float(conv.weight.detach().std()) - math.sqrt(2 / 288)) < 0.1 * math.sqrt(2 / 288)
    biases = [m.bias for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(torch.equal(b, torch.zeros_like(b)) for b in biases)
    assert torch.equal(net.gen_a.dec.model[2].norm.gamma, gamma)

    dis = MultiScaleDiscriminator(3, MsDisArch(dim=16, n_layer=3, num_scales=1))
    init_weights(dis, "normal")
    assert abs(float(dis.cnns[0][2].conv.weight.detach().std()) - 0.02) < 0.002
    with pytest.raises(ValueError, match="orthogonal"):
        init_weights(dis, "orthogonal")  # type: ignore[arg-type]

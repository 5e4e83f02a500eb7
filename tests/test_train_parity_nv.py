"""Training parity with the official MUNIT and UNIT trainers (NVlabs/MUNIT, mingyuliutw/UNIT).

Each fixture (``tests/fixtures/train_parity/<method>/``, provenance in its README) holds what the
official trainer did on tiny networks: the initial weights, three batches, the random draws it
made, every loss term it computed at each step and every weight (discriminators included) after
3 full iterations (D update, G update, lr schedule). Here our objective, run by our training
loop from the same weights, batches and draws, must give each term and each weight within 1e-5
(a loss term larger than 1 is compared relative to its size: float32 cannot resolve 1e-5 above 1;
the two entries' exceptions, biases that a norm cancels, are explained at ``_norm_cancelled_biases``).
Each fixture's README says how it was made (official commit, the edits to run it, the script).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from i2icli.train.loop import LoopOptions, train

FIXTURES = Path(__file__).parent / "fixtures" / "train_parity"
TOL = 1e-5


def _fixture(method: str, name: str = "official") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    folder = FIXTURES / method
    return load_file(folder / f"{name}.safetensors"), json.loads((folder / f"{name}.json").read_text())


def _section(tensors: dict[str, torch.Tensor], prefix: str, module: str) -> dict[str, torch.Tensor]:
    head = f"{prefix}.{module}."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


class _Batches:
    """``data[step]``: the fixture's batch of that step."""

    def __init__(self, tensors: dict[str, torch.Tensor], steps: int, extra: Callable[[int], dict[str, torch.Tensor]] | None = None):
        self.t, self.steps, self.extra = tensors, steps, extra

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        batch = {"a": self.t[f"batch.{step}.a"], "b": self.t[f"batch.{step}.b"]}
        return batch | (self.extra(step) if self.extra else {})


def _run_loop(objective: Any, data: _Batches, steps: int, noise_seed: int, tmp_path: Path) -> list[dict[str, float]]:
    """Our training loop for ``steps`` steps; the global RNG seeded as the official run seeded it
    right before its first iteration. Returns each step's logged scalars."""
    logged: list[dict[str, float]] = []
    opts = LoopOptions(max_steps=steps, save_every=0, sample_every=0, log_every=1)
    torch.manual_seed(noise_seed)
    train(objective, data, opts, run_dir=tmp_path, device=torch.device("cpu"), on_step=lambda s, v: logged.append(v), log=lambda m: None)
    return logged


def _assert_close(name: str, ours: float | torch.Tensor, theirs: float | torch.Tensor) -> None:
    ours_t, theirs_t = torch.as_tensor(ours, dtype=torch.float32), torch.as_tensor(theirs, dtype=torch.float32)
    assert ours_t.shape == theirs_t.shape, f"{name}: shape {tuple(ours_t.shape)} != official {tuple(theirs_t.shape)}"
    err = float((ours_t - theirs_t).abs().max()) if ours_t.numel() else 0.0
    assert err <= TOL, f"{name}: max |ours - official| = {err:.3g} > {TOL}"


def _assert_states(label: str, ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], skip: Collection[str] = ()) -> None:
    """Every entry within ``TOL`` but those in ``skip``: entries whose true gradient is zero,
    checked by ``_assert_noise_only_bounded`` instead (see ``_norm_cancelled_biases``)."""
    assert ours.keys() == theirs.keys(), f"{label}: keys differ: {sorted(ours.keys() ^ theirs.keys())[:5]}"
    for k, v in ours.items():
        if k not in skip:
            _assert_close(f"{label}.{k}", v.float(), theirs[k].float())


def _norm_cancelled_biases(module: torch.nn.Module, prefix: str = "") -> list[str]:
    """Conv biases right before an instance norm (plain or adaptive): the norm subtracts each
    channel's mean, so the bias has no effect on any loss and its true gradient is 0. Autograd
    returns rounding noise (~1e-9) there instead, which Adam rescales to steps of up to ~lr in a
    sign the noise decides, in the official run and in ours alike; so these entries cannot be
    compared value by value. They are checked to stay within the 3 steps' lr bound instead."""
    from i2icli.nn.adain import AdaINConv2dBlock, AdaptiveInstanceNorm2d, Conv2dBlock

    norms = (torch.nn.InstanceNorm2d, AdaptiveInstanceNorm2d)
    found = [
        f"{prefix}{name}.conv.bias"
        for name, m in module.named_modules()
        if isinstance(m, (Conv2dBlock, AdaINConv2dBlock)) and isinstance(m.norm, norms)
    ]
    for name, m in module.named_modules():  # plain Sequentials: a conv directly followed by the norm
        if isinstance(m, torch.nn.Sequential):
            children = list(m.named_children())
            for (key, conv), (_, norm) in pairwise(children):
                if isinstance(conv, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and isinstance(norm, norms):
                    found.append(f"{prefix}{name}.{key}.bias")
    return found


def _assert_noise_only_bounded(label: str, ours: dict[str, torch.Tensor], init: dict[str, torch.Tensor], names: list[str], bound: float) -> None:
    for k in names:
        moved = float((ours[k] - init[k]).abs().max())
        assert moved <= bound, f"{label}.{k}: moved {moved:.3g} (> {bound:.3g}), more than rounding noise under Adam can explain"


# --------------------------------------------------------------------------- MUNIT


def _munit_setup() -> tuple[Any, dict[str, torch.Tensor], dict[str, Any]]:
    from i2icli.convert.munit import convert_munit
    from i2icli.data.transforms import Preprocess
    from i2icli.methods.base import Optim
    from i2icli.methods.munit import MunitArch, MunitConfig, MunitModel, MunitObjective
    from i2icli.nn.adain import MsDisArch

    t, meta = _fixture("munit")
    c, g, d = meta["config"], meta["config"]["gen"], meta["config"]["dis"]
    arch = MunitArch(
        dim=g["dim"], style_dim=g["style_dim"], n_downsample=g["n_downsample"], n_res=g["n_res"], mlp_dim=g["mlp_dim"],
        channels_a=c["input_dim_a"], channels_b=c["input_dim_b"],
        dis=MsDisArch(dim=d["dim"], n_layer=d["n_layer"], num_scales=d["num_scales"], gan_type=d["gan_type"]),
    )  # fmt: skip
    cfg = MunitConfig(
        arch=arch, data=Preprocess(mode="scale_width_and_crop", load_size=meta["size"], crop_size=meta["size"], flip=False),
        gan_w=c["gan_w"], recon_x_w=c["recon_x_w"], recon_c_w=c["recon_c_w"], recon_s_w=c["recon_s_w"],
        recon_x_cyc_w=c["recon_x_cyc_w"], optim=Optim(lr=c["lr"], beta1=c["beta1"], beta2=c["beta2"], weight_decay=c["weight_decay"]),
        lr_policy=c["lr_policy"], step_size=c["step_size"], gamma=c["gamma"],
    )  # fmt: skip
    model = MunitModel(arch)
    objective = MunitObjective(cfg, model, None, seed=0)  # type: ignore[arg-type]
    gens = {x: _section(t, "init", f"gen_{x}") for x in "ab"}
    model.load_state_dict(convert_munit(gens)[1])
    for x in "ab":
        getattr(objective, f"dis_{x}").load_state_dict(_section(t, "init", f"dis_{x}"))
    return objective, t, meta


def test_munit_three_iterations_match_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from i2icli.convert.munit import convert_munit
    from i2icli.methods.munit import MunitObjective

    objective, t, meta = _munit_setup()
    n = len(meta["steps"])
    styles: list[torch.Tensor] = []
    draw = MunitObjective._random_styles

    def recording(self: MunitObjective, x_a: torch.Tensor, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s_a, s_b = draw(self, x_a, x_b)
        styles.extend([s_a, s_b])
        return s_a, s_b

    monkeypatch.setattr(MunitObjective, "_random_styles", recording)
    logged = _run_loop(objective, _Batches(t, n), n, meta["noise_seed"], tmp_path)
    # The same style draws, in the same order (D phase s_a, s_b; G phase s_a, s_b).
    assert len(styles) == meta["n_noise"]
    for i, s in enumerate(styles):
        _assert_close(f"style draw {i}", s, t[f"noise.{i}"])
    names = {
        "d_a": "dis_a", "d_b": "dis_b", "gan_a": "gen_adv_a", "gan_b": "gen_adv_b", "recon_x_a": "gen_recon_x_a",
        "recon_x_b": "gen_recon_x_b", "recon_s_a": "gen_recon_s_a", "recon_s_b": "gen_recon_s_b",
        "recon_c_a": "gen_recon_c_a", "recon_c_b": "gen_recon_c_b", "cyc_x_a": "gen_cycrecon_x_a",
        "cyc_x_b": "gen_cycrecon_x_b", "loss_dis": "dis_total", "loss_gen": "gen_total",
    }  # fmt: skip
    for step, (ours, theirs) in enumerate(zip(logged, meta["steps"], strict=True)):
        for our_name, their_name in names.items():
            _assert_close(f"step {step} {our_name}", ours[our_name], theirs[their_name])
    final = {x: _section(t, "final", f"gen_{x}") for x in "ab"}
    expected = convert_munit(final)[1]
    initial = convert_munit({x: _section(t, "init", f"gen_{x}") for x in "ab"})[1]
    cancelled = _norm_cancelled_biases(objective.model)
    assert len(cancelled) >= 8  # the content encoders' and the residual blocks' convs
    # Adam's step is at most ~lr per update; weight decay adds a negligible lr * wd * |w|.
    bound = 1.5 * sum(meta["steps"][i]["lr"] for i in range(n))
    _assert_states("final model", objective.model.state_dict(), expected, cancelled)
    _assert_noise_only_bounded("final model", objective.model.state_dict(), initial, cancelled, bound)
    for x in "ab":
        _assert_states(f"final dis_{x}", getattr(objective, f"dis_{x}").state_dict(), _section(t, "final", f"dis_{x}"))


# --------------------------------------------------------------------------- UNIT (master)


def _record_randn_like(monkeypatch: pytest.MonkeyPatch) -> list[torch.Tensor]:
    """Every ``torch.randn_like`` draw our objective makes, in order (the UNIT noise ε)."""
    draws: list[torch.Tensor] = []
    original = torch.randn_like

    def recording(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = original(*args, **kwargs)
        draws.append(out.detach().clone())
        return out

    monkeypatch.setattr(torch, "randn_like", recording)
    return draws


def test_unit_master_three_iterations_match_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from i2icli.convert.unit import convert_unit
    from i2icli.data.transforms import Preprocess
    from i2icli.methods.base import Optim
    from i2icli.methods.unit import UnitArch, UnitConfig, UnitModel, UnitObjective

    t, meta = _fixture("unit")
    c, g, d = meta["config"], meta["config"]["gen"], meta["config"]["dis"]
    arch = UnitArch(
        variant="master", channels_a=c["input_dim_a"], channels_b=c["input_dim_b"], dim=g["dim"],
        n_downsample=g["n_downsample"], n_res=g["n_res"], dis_dim=d["dim"], dis_layers=d["n_layer"], dis_scales=d["num_scales"],
    )  # fmt: skip
    cfg = UnitConfig(
        arch=arch, data=Preprocess(mode="resize_and_crop", load_size=meta["size"], crop_size=meta["size"], flip=False),
        optim=Optim(lr=c["lr"], beta1=c["beta1"], beta2=c["beta2"], weight_decay=c["weight_decay"]),
        gan_w=c["gan_w"], kl_w=c["recon_kl_w"], recon_x_w=c["recon_x_w"], kl_cyc_w=c["recon_kl_cyc_w"],
        cyc_w=c["recon_x_cyc_w"], kl_cyc_on_input=False, gan_type=d["gan_type"], lr_policy=c["lr_policy"],
        step_size=c["step_size"], gamma=c["gamma"], init=c["init"],
    )  # fmt: skip
    model = UnitModel(arch)
    objective = UnitObjective(cfg, model, None, seed=0)  # type: ignore[arg-type]
    model.load_state_dict(convert_unit({x: _section(t, "init", f"gen_{x}") for x in "ab"})[1])
    for x in "ab":
        getattr(objective, f"dis_{x}").load_state_dict(_section(t, "init", f"dis_{x}"))
    n = len(meta["steps"])
    draws = _record_randn_like(monkeypatch)
    logged = _run_loop(objective, _Batches(t, n), n, meta["noise_seed"], tmp_path)
    assert len(draws) == meta["n_noise"]
    for i, eps in enumerate(draws):
        _assert_close(f"noise draw {i}", eps, t[f"noise.{i}"])
    for step, (ours, theirs) in enumerate(zip(logged, meta["steps"], strict=True)):
        pairs = {
            "d_a": theirs["dis_a"], "d_b": theirs["dis_b"], "gan_a": theirs["gen_adv_a"], "gan_b": theirs["gen_adv_b"],
            "recon_a": theirs["gen_recon_x_a"], "recon_b": theirs["gen_recon_x_b"],
            "kl": theirs["gen_recon_kl_a"] + theirs["gen_recon_kl_b"],
            "kl_cyc": theirs["gen_recon_kl_cyc_aba"] + theirs["gen_recon_kl_cyc_bab"],
            "cyc_a": theirs["gen_cyc_x_a"], "cyc_b": theirs["gen_cyc_x_b"],
            "loss_dis": theirs["dis_total"], "loss_gen": theirs["gen_total"],
        }  # fmt: skip
        for name, value in pairs.items():
            _assert_close(f"step {step} {name}", ours[name], value)
    expected = convert_unit({x: _section(t, "final", f"gen_{x}") for x in "ab"})[1]
    initial = convert_unit({x: _section(t, "init", f"gen_{x}") for x in "ab"})[1]
    cancelled = _norm_cancelled_biases(model)
    bound = 1.5 * sum(s["lr"] for s in meta["steps"])
    _assert_states("final model", model.state_dict(), expected, cancelled)
    _assert_noise_only_bounded("final model", model.state_dict(), initial, cancelled, bound)
    for x in "ab":
        _assert_states(f"final dis_{x}", getattr(objective, f"dis_{x}").state_dict(), _section(t, "final", f"dis_{x}"))


# --------------------------------------------------------------------------- UNIT digits DA (da32)


def _official_da_to_ours(gen: dict[str, torch.Tensor], dis: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Official ``CoVAE32x32`` + ``CoDis32x32`` state dicts -> (our da32 ``UnitModel`` state with the
    official layout, our GAN head). Each official BN block is ``model.{0: conv, 1: BN, 2: bias}``."""
    blocks = {
        "g_en_conv0_a": "enc_a", "g_en_conv0_b": "enc_b", "g_en_conv1": "enc_shared.0", "g_en_conv2": "enc_shared.1",
        "g_en_conv3": "enc_shared.2", "g_de_conv0": "dec_shared.0", "g_de_conv1": "dec_shared.1",
        "g_de_conv2": "dec_shared.2", "g_de_conv3_a": "dec_a.0", "g_de_conv3_b": "dec_b.0",
    }  # fmt: skip
    plain = {
        "g_vae.en_mu": "latent.mu", "g_vae.en_sigma": "latent.sigma", "de_conv4_a": "dec_a.1", "de_conv4_b": "dec_b.1",
        "conv0_a.0": "classifier.front_a.0", "conv0_b.0": "classifier.front_b.0", "conv1.0": "classifier.trunk.0",
        "conv2.0": "classifier.trunk.4", "conv3.0": "classifier.trunk.8", "conv_cl": "classifier.class_head",
    }  # fmt: skip
    model: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    for key, value in (gen | dis).items():
        module, _, leaf = key.rpartition(".")
        if module == "conv4":
            head[leaf] = value
        elif module in plain:
            model[f"{plain[module]}.{leaf}"] = value
        else:
            block, part = module.split(".model.")
            ours = blocks[block]
            model[{"0": f"{ours}.0.{leaf}", "1": f"{ours}.1.norm.{leaf}", "2": f"{ours}.1.bias"}[part]] = value
    return model, head


def test_unit_da32_three_iterations_match_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digits DA trainer (version_02 ``COCOGANDAContextTrainer``, ``CoVAE32x32``/``CoDis32x32``)."""
    from i2icli.data.transforms import Preprocess
    from i2icli.methods.unit import UnitArch, UnitModel, UnitObjective, _da32_config

    t, meta = _fixture("unit_da")
    hp, n, b = meta["config"], len(meta["steps"]), meta["batch_size"]
    arch = UnitArch(
        variant="da32", channels_a=hp["input_dim_a"], channels_b=hp["input_dim_b"], dim=hp["gen_ch"],
        dis_dim=hp["dis_ch"], n_classes=10, da_layout="official",
    )  # fmt: skip
    cfg = _da32_config(arch, Preprocess(mode="resize_and_crop", load_size=32, crop_size=32, flip=False))
    assert (cfg.kl_w, cfg.recon_x_w, cfg.feat_w, cfg.cls_w, cfg.gan_w) == (
        hp["kl_normalized_direct_w"], hp["ll_normalized_direct_w"], hp["feature_w"], hp["cls_w"], hp["gan_w"],
    )  # the preset's weights are the official ones
    model = UnitModel(arch)
    objective = UnitObjective(cfg, model, None, seed=0)  # type: ignore[arg-type]
    # Labels: each step's batch carries indices into a label table made of the fixture's labels.
    objective.labels = torch.cat([t[f"batch.{i}.labels_a"] for i in range(n)])
    index = lambda step: {"index_a": torch.arange(step * b, (step + 1) * b)}
    state, head = _official_da_to_ours(_section(t, "init", "gen"), _section(t, "init", "dis"))
    model.load_state_dict(state)
    objective.gan_head.load_state_dict(head)
    draws = _record_randn_like(monkeypatch)
    logged = _run_loop(objective, _Batches(t, n, index), n, meta["noise_seed"], tmp_path)
    assert len(draws) == meta["n_noise"]
    for i, eps in enumerate(draws):
        _assert_close(f"noise draw {i}", eps, t[f"noise.{i}"])
    # Our KL keeps the -1 per element that the official code drops (so the prior scores 0).
    kl_offset = 2 * meta["code_numel_per_image"]
    for step, (ours, theirs) in enumerate(zip(logged, meta["steps"], strict=True)):
        pairs = {
            "d": theirs["dis_ad_true"] + theirs["dis_ad_fake"], "feat": theirs["dis_feature_a"] + theirs["dis_feature_b"],
            "cls": theirs["dis_cls"], "loss_dis": theirs["dis_total"], "gan_recon": theirs["gen_ce_recon"],
            "gan_trans": theirs["gen_ce_trans"], "recon_a": theirs["gen_ll_a"], "recon_b": theirs["gen_ll_b"],
            "kl": theirs["gen_enc"] - kl_offset,
        }  # fmt: skip
        for name, value in pairs.items():
            _assert_close(f"step {step} {name}", ours[name] / max(1.0, abs(value)), value / max(1.0, abs(value)))
        # The totals differ by the KL constant times its weight.
        _assert_close(f"step {step} loss_gen", ours["loss_gen"] + cfg.kl_w * kl_offset, theirs["gen_total"])
    state, head = _official_da_to_ours(_section(t, "final", "gen"), _section(t, "final", "dis"))
    _assert_states("final model", model.state_dict(), state)
    _assert_states("final gan_head", objective.gan_head.state_dict(), head)


# --------------------------------------------------------------------------- UNIT (paper: version_02)


def _by_order(ours: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor], groups: dict[str, str]) -> dict[str, torch.Tensor]:
    """Official state -> ours, entry by entry in module order within each group (official prefix
    -> our prefix); the two layouts hold the same tensors in the same order, checked by shape."""
    # Module order = natural order of the keys (the fixture file stores them sorted as text).
    natural = lambda k: [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in k.split(".")]
    out: dict[str, torch.Tensor] = {}
    for theirs_prefix, ours_prefix in groups.items():
        mine = sorted((k for k in ours if k.startswith(ours_prefix + ".")), key=natural)
        official = sorted((k for k in theirs if k.startswith(theirs_prefix + ".")), key=natural)
        assert len(mine) == len(official), f"{ours_prefix}: {len(mine)} entries, official {theirs_prefix}: {len(official)}"
        for k, o in zip(mine, official):
            assert ours[k].shape == theirs[o].shape, f"{k} {tuple(ours[k].shape)} vs official {o} {tuple(theirs[o].shape)}"
            out[k] = theirs[o]
    return out


_PAPER_GEN = {
    "encode_A": "enc_a", "encode_B": "enc_b", "enc_shared": "enc_shared", "dec_shared": "dec_shared",
    "decode_A": "dec_a", "decode_B": "dec_b",
}  # fmt: skip


def test_unit_paper_three_iterations_match_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The NIPS 2017 trainer (version_02 ``COCOGANTrainer``, ``COCOResGen`` + ``COCODis``, cat2tiger weights).

    Its code weights the input's KL by λ1 only (the paper's L_CC adds λ3): ``kl_cyc_on_input``
    False reproduces it; our default follows the paper's equations (labelled in methods/unit.py).
    """
    from i2icli.data.transforms import Preprocess
    from i2icli.methods.base import Optim
    from i2icli.methods.unit import UnitArch, UnitConfig, UnitModel, UnitObjective

    t, meta = _fixture("unit", "paper_official")
    hp, g, d = meta["config"], meta["config"]["gen"], meta["config"]["dis"]
    arch = UnitArch(
        variant="paper", channels_a=g["input_dim_a"], channels_b=g["input_dim_b"], dim=g["ch"],
        n_downsample=g["n_enc_front_blk"] - 1, n_res=g["n_enc_res_blk"], n_shared=g["n_enc_shared_blk"],
        dis_dim=d["ch"], dis_layers=d["n_layer"],
    )  # fmt: skip
    cfg = UnitConfig(
        arch=arch, data=Preprocess(mode="resize_and_crop", load_size=meta["size"], crop_size=meta["size"], flip=False),
        optim=Optim(lr=hp["lr"], beta1=0.5, beta2=0.999, weight_decay=1e-4), gan_w=hp["gan_w"],
        kl_w=hp["kl_direct_link_w"], recon_x_w=hp["ll_direct_link_w"], kl_cyc_w=hp["kl_cycle_link_w"],
        cyc_w=hp["ll_cycle_link_w"], kl_cyc_on_input=False,
    )  # fmt: skip
    model = UnitModel(arch)
    objective = UnitObjective(cfg, model, None, seed=0)  # type: ignore[arg-type]
    dis_groups = {"model_A": "dis_a.model", "model_B": "dis_b.model"}

    def ours_of(prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        gen = _by_order(model.state_dict(), _section(t, prefix, "gen"), _PAPER_GEN)
        both = {f"dis_{x}.{k}": v for x in "ab" for k, v in getattr(objective, f"dis_{x}").state_dict().items()}
        return gen, _by_order(both, _section(t, prefix, "dis"), dis_groups)

    gen0, dis0 = ours_of("init")
    model.load_state_dict(gen0)
    for x in "ab":
        getattr(objective, f"dis_{x}").load_state_dict({k[6:]: v for k, v in dis0.items() if k.startswith(f"dis_{x}.")})
    n = len(meta["steps"])
    draws = _record_randn_like(monkeypatch)
    logged = _run_loop(objective, _Batches(t, n), n, meta["noise_seed"], tmp_path)
    # The official code draws one noise tensor for both domains' batch (2B); ours one per domain.
    assert torch.cat(draws).numel() == sum(t[f"noise.{i}"].numel() for i in range(meta["n_noise"]))
    for step, (ours, theirs) in enumerate(zip(logged, meta["steps"], strict=True)):
        pairs = {
            "loss_dis": theirs["dis_total"], "gan_a": theirs["gen_ad_loss_a"], "gan_b": theirs["gen_ad_loss_b"],
            "recon_a": theirs["gen_ll_loss_a"], "recon_b": theirs["gen_ll_loss_b"], "cyc_a": theirs["gen_ll_loss_aba"],
            "cyc_b": theirs["gen_ll_loss_bab"], "kl": 2 * theirs["gen_enc_loss"],
            "kl_cyc": theirs["gen_enc_aba_loss"] + theirs["gen_enc_bab_loss"], "loss_gen": theirs["gen_total_loss"],
        }  # fmt: skip
        for name, value in pairs.items():
            _assert_close(f"step {step} {name}", ours[name] / max(1.0, abs(value)), value / max(1.0, abs(value)))
    gen1, dis1 = ours_of("final")
    cancelled = _norm_cancelled_biases(model)
    assert len(cancelled) >= 10
    bound = 1.5 * n * hp["lr"]
    _assert_states("final model", model.state_dict(), gen1, cancelled)
    _assert_noise_only_bounded("final model", model.state_dict(), gen0, cancelled, bound)
    for x in "ab":
        ours_d = {f"dis_{x}.{k}": v for k, v in getattr(objective, f"dis_{x}").state_dict().items()}
        _assert_states(f"final dis_{x}", ours_d, {k: v for k, v in dis1.items() if k.startswith(f"dis_{x}.")})


def test_unit_da32_official_layout_is_32_px_only() -> None:
    """The official layout's 8x8 valid conv fits 32x32 images only: other sizes are refused in one line."""
    from i2icli.errors import UsageError
    from i2icli.methods.unit import UnitArch, UnitModel

    model = UnitModel(UnitArch(variant="da32", channels_a=1, channels_b=1, dim=4, dis_dim=4, n_classes=10, da_layout="official"))
    assert model.encode_latent(torch.zeros(2, 1, 32, 32), "a").shape == (2, 32, 1, 1)  # 8·dim channels, 1x1 code
    assert model.translate(torch.zeros(2, 1, 32, 32), "a2b").shape == (2, 1, 32, 32)
    with pytest.raises(UsageError, match="32x32 images only"):
        model.translate(torch.zeros(1, 1, 64, 64), "a2b")
    with pytest.raises(UsageError, match="only arch da32"):
        UnitArch(variant="paper", da_layout="official")

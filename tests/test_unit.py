"""UNIT: official-checkpoint parity, the shared latent space, the KL term, labels files.

Fixtures (tests/fixtures/unit/, see its README.md): official ``VAEGen`` weights (dim 8) and the
outputs the official code computes from them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from conftest import fixture_tensors, loaded
from torch import Tensor

if TYPE_CHECKING:
    from i2icli.inference import LoadedModel

from i2icli.convert.unit import convert_official, convert_unit
from i2icli.data.labels import read_labels
from i2icli.errors import CheckpointError, UsageError
from i2icli.methods.unit import (
    METHOD,
    UnitArch,
    UnitConfig,
    UnitModel,
    gaussian_kl,
    read_domain_a_labels,
)

FIXTURES = Path(__file__).parent / "fixtures" / "unit"
ATOL = 1e-5  # fixture README: observed float noise <= 4e-6; never loosen


def assert_close(actual: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0.0)


@pytest.fixture(scope="module")
def official() -> UnitModel:
    converted = convert_official([FIXTURES / "unit_gen_tiny.pt"])
    return loaded(UnitModel(converted.arch), converted.state)


@pytest.fixture(scope="module")
def io() -> dict[str, Tensor]:
    return fixture_tensors("unit/unit_tiny_io.safetensors")


# --------------------------------------------------------------------------- converter parity


def test_converter_infers_the_tiny_config() -> None:
    arch = convert_official([FIXTURES / "unit_gen_tiny.pt"]).arch
    meta = json.loads((FIXTURES / "unit_keys_tiny.json").read_text())["meta"]["params"]
    assert (arch.variant, arch.dim, arch.n_downsample, arch.n_res) == ("master", meta["dim"], meta["n_downsample"], meta["n_res"])
    assert (arch.channels_a, arch.channels_b) == (3, 3)


def test_master_keys_match_the_official_manifests() -> None:
    for name, dim, n_res in (("unit_keys_tiny.json", 8, 2), ("unit_keys_full.json", 64, 4)):
        manifest = json.loads((FIXTURES / name).read_text())["keys"]
        official = {k["key"]: tuple(k["shape"]) for k in manifest}
        with torch.device("meta"):
            ours = UnitModel(UnitArch(variant="master", dim=dim, n_res=n_res, n_shared=0)).state_dict()
        assert {k[len("gen_a.") :]: tuple(v.shape) for k, v in ours.items() if k.startswith("gen_a.")} == official


def test_parity_latent_code(official: UnitModel, io: dict[str, Tensor]) -> None:
    with torch.no_grad():
        assert_close(official.encode_latent(io["x"], "a"), io["hidden_a"])
        assert_close(official.encode_latent(io["x"], "b"), io["hidden_b"])


def test_parity_reconstructions_and_translations(official: UnitModel, io: dict[str, Tensor]) -> None:
    x = io["x"]
    with torch.no_grad():
        h_a, h_b = official.encode_latent(x, "a"), official.encode_latent(x, "b")
        assert_close(official.decode_latent(h_a, "a"), io["recon_a"])
        assert_close(official.decode_latent(h_b, "b"), io["recon_b"])
        assert_close(official.translate(x, "a2b"), io["a2b"])
        assert_close(official.translate(x, "b2a"), io["b2a"])
        # The training path: the code plus the official noise.
        assert_close(official.decode_latent(h_a + io["noise_a"], "a"), io["recon_a_noisy"])
        assert_close(official.decode_latent(h_a + io["noise_a"], "b"), io["a2b_noisy"])


def test_converter_drops_stale_instance_norm_statistics(io: dict[str, Tensor]) -> None:
    obj = torch.load(FIXTURES / "unit_gen_tiny.pt", map_location="cpu", weights_only=True)
    for state in obj.values():  # what a PyTorch-0.3/0.4 file carries for each IN of the encoder
        state["enc.model.1.norm.running_mean"] = torch.full((16,), 5.0)
        state["enc.model.1.norm.running_var"] = torch.full((16,), 9.0)
        state["enc.model.1.norm.num_batches_tracked"] = torch.tensor(3)
    arch, state = convert_unit(obj)
    net = UnitModel(arch)
    net.load_state_dict(state, strict=True)
    with torch.no_grad():
        assert_close(net.eval().translate(io["x"], "a2b"), io["a2b"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: o.pop("b"), "missing top-level key 'b'"),
        (lambda o: o.update(gen=o["a"]), "unexpected top-level key 'gen'"),
        (lambda o: o["a"].update({"enc.extra.weight": torch.zeros(1)}), "unexpected key 'enc.extra.weight'"),
        (lambda o: o["b"].pop("dec.model.5.conv.bias"), "missing key 'dec.model.5.conv.bias' of generator 'b'"),
    ],
)
def test_converter_rejects_other_files(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    obj = torch.load(FIXTURES / "unit_gen_tiny.pt", map_location="cpu", weights_only=True)
    edit(obj)
    with pytest.raises(CheckpointError, match=message):
        convert_unit(obj)


def test_convert_files_names_an_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "gen.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="gen.pt: not a readable PyTorch checkpoint"):
        convert_official([bad])


# --------------------------------------------------------------------------- shared latent space


def _paper_model(seed: int = 0) -> UnitModel:
    torch.manual_seed(seed)
    return UnitModel(METHOD.test_presets["paper"].config.arch).eval()


def _train_a_reconstruction(model: UnitModel, x: Tensor) -> None:
    """One SGD step on domain A's reconstruction only (encoder a -> decoder a)."""
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    (model.decode_latent(model.encode_latent(x, "a"), "a") - x).abs().mean().backward()
    opt.step()
    model.eval()


def _recon_b(model: UnitModel, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model.decode_latent(model.encode_latent(x, "b"), "b")


def test_shared_layers_are_one_set_of_tensors() -> None:
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    model = _paper_model()
    before = _recon_b(model, x)
    _train_a_reconstruction(model, x)
    # B's private layers got no gradient from A's path ...
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith(("enc_b.", "dec_b.")))
    assert all(p.grad is not None for p in model.enc_shared.parameters())
    # ... yet B's own reconstruction changed: the shared blocks are the same tensors.
    assert (_recon_b(model, x) - before).abs().max() > 1e-4
    # Negative control: master shares nothing, so training A leaves B's output exactly as it was.
    torch.manual_seed(0)
    master = UnitModel(METHOD.test_presets["master"].config.arch).eval()
    before = _recon_b(master, x)
    _train_a_reconstruction(master, x)
    assert torch.equal(_recon_b(master, x), before)


def test_shared_module_is_the_same_object_for_both_domains() -> None:
    model = _paper_model()
    state = model.state_dict()
    assert not any(k.startswith(("enc_a.", "enc_b.")) and "shared" in k for k in state)
    # Paths through either domain see the same parameter objects.
    shared = {id(p) for p in model.enc_shared.parameters()} | {id(p) for p in model.dec_shared.parameters()}
    gen_params = [id(p) for m in model.generators() for p in m.parameters()]
    assert shared <= set(gen_params) and len(gen_params) == len(set(gen_params))


@pytest.mark.parametrize("variant", ["paper", "master", "da32"])
def test_no_noise_at_inference(variant: str) -> None:
    torch.manual_seed(0)
    model = UnitModel(METHOD.test_presets[variant].config.arch).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        first = model.translate(x, "a2b")
        torch.manual_seed(123)  # a different global RNG state must not matter either
        second = model.translate(x, "a2b")
    assert torch.equal(first, second)


def test_kl_equals_hand_formula() -> None:
    mu = torch.tensor([[[[1.0, -2.0]], [[0.5, 0.0]]]])  # (1, 2, 1, 2)
    assert gaussian_kl(mu).item() == pytest.approx((1 + 4 + 0.25 + 0) / 4)
    sigma = torch.tensor([[[[1.0, 2.0]], [[0.5, 1.0]]]])
    hand = sum(m * m + s * s - 2 * torch.log(torch.tensor(s)).item() - 1 for m, s in zip([1.0, -2.0, 0.5, 0.0], [1.0, 2.0, 0.5, 1.0]))
    assert gaussian_kl(mu, sigma).item() == pytest.approx(hand, rel=1e-5)
    zero = torch.zeros(3, 4, 2, 2)
    assert gaussian_kl(zero).item() == 0.0
    assert gaussian_kl(zero, torch.ones_like(zero)).item() == pytest.approx(0.0, abs=1e-6)
    assert gaussian_kl(zero, torch.full_like(zero, 2.0)).item() > 0  # negative control: a wider posterior costs


def test_da32_model_classifies_and_ships_its_class_head() -> None:
    torch.manual_seed(0)
    model = UnitModel(METHOD.test_presets["da32"].config.arch).eval()
    assert any(k.startswith("classifier.class_head.") for k in model.state_dict())
    logits = model.classify(torch.rand(3, 3, 32, 32), "b")
    assert logits.shape == (3, 10)
    with pytest.raises(UsageError, match="no class head"):
        _paper_model().classify(torch.rand(1, 3, 16, 16), "b")


def _da32_objective(**changes: object):  # type: ignore[no-untyped-def]
    from dataclasses import replace
    from types import SimpleNamespace

    from i2icli.methods.unit import build_objective

    cfg = replace(METHOD.test_presets["da32"].config, **changes)
    torch.manual_seed(0)
    model = UnitModel(cfg.arch)
    obj = build_objective(cfg, model, SimpleNamespace(files_a=[], files_b=[]), 0)  # type: ignore[arg-type]
    obj.labels = torch.arange(4) % 10  # as --labels-a would give for 4 files
    return obj, model


def _da32_batch() -> dict[str, Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = lambda: torch.rand(4, 3, 32, 32, generator=gen) * 2 - 1  # noqa: E731
    return {"a": x(), "b": x(), "index_a": torch.arange(4), "index_b": torch.arange(4), "step": 0}  # type: ignore[dict-item]


def test_da32_discriminator_starts_from_the_official_xavier_init() -> None:
    obj, model = _da32_objective()
    convs = [m for m in (*model.classifier.modules(), obj.gan_head) if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(torch.all(m.bias == 0.1) for m in convs)
    first = model.classifier.front_a[0].weight  # (D, C, 5, 5): Xavier-uniform bound gain·sqrt(6 / (fan_in + fan_out))
    bound = 2**0.5 * (6 / (first.shape[1] * 25 + first.shape[0] * 25)) ** 0.5
    assert first.abs().max() <= bound and first.abs().max() > 0.8 * bound


def test_da32_consistency_features_skip_dropout() -> None:
    _, model = _da32_objective()
    cls, x = model.classifier.train(), torch.rand(2, 3, 32, 32)
    assert torch.equal(cls.features(x, "a", dropout=False), cls.features(x, "a", dropout=False))
    assert not torch.equal(cls.features(x, "a"), cls.features(x, "a"))  # negative control: dropout draws masks


def test_da32_shared_layers_see_both_domains_as_one_batch() -> None:
    obj, model = _da32_objective()
    batch = _da32_batch()
    other_b = batch["b"].flip(0) * 0.5
    model.train()
    torch.manual_seed(2)
    first = obj._forward_joint(batch["a"], batch["b"])["x_aa"]
    torch.manual_seed(2)
    second = obj._forward_joint(batch["a"], other_b)["x_aa"]
    assert not torch.allclose(first, second)  # joint batch-norm statistics: x_b moves x_aa
    model.eval()  # negative control: running statistics, so x_b no longer matters
    outputs = []
    for b in (batch["b"], other_b):
        torch.manual_seed(2)
        outputs.append(obj._forward_joint(batch["a"], b)["x_aa"])
    assert torch.equal(outputs[0], outputs[1])


def test_da32_translated_source_term_adds_its_weighted_cross_entropy() -> None:
    losses = {}
    for weight in (0.0, 2.0):
        obj, model = _da32_objective(cls_trans_w=weight)
        model.eval()  # no dropout, so both runs see the same networks
        torch.manual_seed(3)
        with torch.no_grad():
            out = obj.discriminator_loss(_da32_batch(), {})
        losses[weight] = out
    assert "cls_trans" not in losses[0.0].scalars and "cls_trans" in losses[2.0].scalars
    added = losses[2.0].loss - losses[0.0].loss
    torch.testing.assert_close(added, 2.0 * losses[2.0].scalars["cls_trans"])


# --------------------------------------------------------------------------- labels


def _images(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")
    return [folder / n for n in names]


def test_labels_csv_and_folder_layout(tmp_path: Path) -> None:
    files = _images(tmp_path / "a", ["x0.png", "x1.png", "x2.png"])
    csv = tmp_path / "a" / "labels.csv"
    csv.write_text("filename,label\nx0.png,1\nx1.png,0\n")
    assert read_labels(csv, 2) == {files[0]: 1, files[1]: 0}
    assert read_domain_a_labels(str(csv), 2, files).tolist() == [1, 0, -1]
    p = _images(tmp_path / "classes" / "0", ["p.png"])
    q = _images(tmp_path / "classes" / "1", ["q.png", "r.png"])
    assert read_labels(tmp_path / "classes", 2) == {p[0]: 0, q[0]: 1, q[1]: 1}
    with pytest.raises(UsageError, match="none of the 2 training images has a label"):
        read_domain_a_labels(str(csv), 2, [tmp_path / "other.png", tmp_path / "x2.png"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("x0.png,1\nghost.png,0\n", r"row 2: ghost.png does not exist"),
        ("x0.png,1\nx1.png,1\n", r"class 0 has no labelled image"),
        ("x0.png,1\nx1.png,seven\n", r"row 2: label 'seven' is not a whole number"),
        ("x0.png,1\nx1.png,0,extra\n", r"row 2: expected 'filename,label'"),
        ("x0.png,1\nx1.png,2\n", r"row 2: label 2 is outside 0..1"),
    ],
)
def test_bad_labels_file_is_one_usage_line(tmp_path: Path, body: str, message: str) -> None:
    _images(tmp_path, ["x0.png", "x1.png"])
    csv = tmp_path / "labels.csv"
    csv.write_text(body)
    with pytest.raises(UsageError, match=message) as info:
        read_labels(csv, 2, option="--labels-a")
    assert f"--labels-a {csv}" in str(info.value) and "\n" not in str(info.value)


def test_labels_for_an_arch_without_class_head_is_refused() -> None:
    with pytest.raises(UsageError, match="arch paper has no class head"):
        UnitConfig(labels_a="labels.csv")


def _digit_folders(root: Path, n: int = 10) -> tuple[Path, Path, Path]:
    """Two folders of n random 28x28 gray images and a labels CSV inside the first."""
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    for domain in ("a", "b"):
        (root / domain).mkdir(parents=True)
        for i in range(n):
            pixels = (torch.rand(28, 28, generator=gen) * 255).to(torch.uint8).numpy()
            Image.fromarray(pixels, mode="L").save(root / domain / f"x{i}.png")
    labels = root / "a" / "labels.csv"
    labels.write_text("filename,label\n" + "".join(f"x{i}.png,{i % 10}\n" for i in range(n)))
    return root / "a", root / "b", labels


def test_arch_flag_sets_the_variant_and_da32_needs_its_preset(tmp_path: Path) -> None:
    a, b, labels = _digit_folders(tmp_path)
    common = ["train", "--method", "unit", "--domain-a", str(a), "--domain-b", str(b), "--device", "cpu", "--quiet"]
    # The command line with the default (paper) preset: one line pointing at --preset da32.
    run = tmp_path / "refused"
    result = _cli([*common, "--arch", "da32", "--labels-a", str(labels), "--run-dir", str(run)])
    assert result.exit_code == 2, result.output
    assert "--arch da32" in result.output and "--preset da32" in result.output
    assert "Traceback" not in result.output and not run.exists()
    # The da32 preset's class head on the paper network is refused the same way.
    result = _cli([*common, "--preset", "da32", "--arch", "paper", "--run-dir", str(run)])
    assert result.exit_code == 2 and "--arch paper" in result.output and not run.exists()
    # With its preset, --arch da32 trains (tiny widths, 2 steps) and the export has the class head.
    run = tmp_path / "da32"
    tiny = ["--set", "arch.dim=4", "--set", "arch.dis_dim=4", "--max-steps", "2", "--batch-size", "2"]
    result = _cli([*common, "--preset", "da32", "--arch", "da32", "--labels-a", str(labels), *tiny, "--run-dir", str(run)])
    assert result.exit_code == 0, result.output
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["arch"]["variant"] == "da32" and config["arch"]["n_classes"] == 10


def test_arch_flag_is_the_variant_field() -> None:
    from i2icli.cli.train_cmd import method_overrides

    assert method_overrides("unit", {"arch": "master"}) == {"arch.variant": "master"}
    with pytest.raises(UsageError, match="--arch: not an option of --method cyclegan"):
        method_overrides("cyclegan", {"arch": "da32"})


# --------------------------------------------------------------------------- interpolation


def _loaded(variant: str = "paper") -> LoadedModel:
    from i2icli.checkpoint import ModelConfig
    from i2icli.config import to_dict
    from i2icli.inference import LoadedModel

    torch.manual_seed(0)
    net = UnitModel(METHOD.test_presets[variant].config.arch).eval()
    return LoadedModel(net=net, config=ModelConfig(method="unit", arch=to_dict(net.arch)), path=Path("unit.safetensors"), device=torch.device("cpu"))


@pytest.mark.parametrize(("variant", "mode", "direction"), [("paper", "lerp", "a2b"), ("master", "slerp", "b2a"), ("da32", "lerp", "a2b")])
def test_interpolation_endpoints_equal_the_translations(variant: str, mode: str, direction: str) -> None:
    from i2icli.inference import translate_tensors
    from i2icli.multimodal import interpolate

    loaded = _loaded(variant)
    first, second = torch.rand(3, 20, 28) * 2 - 1, torch.rand(3, 20, 28) * 2 - 1  # padded to the stride inside
    frames = interpolate(loaded, [first, second], None, steps=5, mode=mode, direction=direction)  # type: ignore[arg-type]
    assert len(frames) == 5 and frames[0].shape == (3, 20, 28)
    ends = translate_tensors(loaded, [first, second], direction)  # type: ignore[arg-type]
    assert torch.equal(frames[0], ends[0]) and torch.equal(frames[-1], ends[1])
    assert not torch.equal(frames[2], frames[0]) and not torch.equal(frames[2], frames[-1])


def test_interpolation_of_a_latent_model_needs_two_inputs_and_no_styles() -> None:
    from i2icli.multimodal import interpolate

    loaded, x = _loaded(), torch.rand(3, 16, 16)
    with pytest.raises(UsageError, match="walks between two inputs' latent codes; got 1"):
        interpolate(loaded, [x], None, steps=3)
    with pytest.raises(UsageError, match="no style codes"):
        interpolate(loaded, [x, x], torch.zeros(1, 8, 1, 1), steps=3)
    with pytest.raises(UsageError, match="same size"):
        interpolate(loaded, [x, torch.rand(3, 16, 20)], None, steps=3)


# --------------------------------------------------------------------------- eval adapt


def test_confusion_matrix_and_scores_by_hand() -> None:
    from i2icli.eval.adapt import confusion_matrix, scores

    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 4)
    assert m == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    accuracy, per_class = scores(m)
    assert accuracy == pytest.approx(4 / 6)
    assert per_class == [0.5, 1.0, pytest.approx(2 / 3), None]


def _constant_classifier(label: int) -> UnitModel:
    """A da32 model whose class head always answers ``label`` (zero weights, one positive bias)."""
    torch.manual_seed(0)
    net = UnitModel(METHOD.test_presets["da32"].config.arch).eval()
    with torch.no_grad():
        net.classifier.class_head.weight.zero_()
        net.classifier.class_head.bias.zero_()
        net.classifier.class_head.bias[label] = 1.0
    return net


def _labelled_digits(root: Path, labels: dict[str, int]) -> Path:
    from PIL import Image

    for i, (name, label) in enumerate(labels.items()):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (28, 28), (i * 40, 0, 0)).save(root / str(label) / name)
    return root


def test_eval_adapt_gives_the_hand_computed_accuracy(tmp_path: Path) -> None:
    from i2icli.checkpoint import ModelConfig
    from i2icli.config import to_dict
    from i2icli.eval.adapt import confusion_png, evaluate_adaptation
    from i2icli.inference import LoadedModel

    net = _constant_classifier(3)
    config = ModelConfig(method="unit", arch=to_dict(net.arch), image_size=32)
    loaded = LoadedModel(net=net, config=config, path=tmp_path / "m.safetensors", device=torch.device("cpu"))
    data = _labelled_digits(tmp_path / "digits", {"p.png": 3, "q.png": 3, "r.png": 1, "s.png": 0})
    report = evaluate_adaptation(loaded, data, domain="b", batch_size=3)
    assert (report.n, report.accuracy) == (4, 0.5)
    expected = [[0] * 10 for _ in range(10)]
    expected[3][3], expected[1][3], expected[0][3] = 2, 1, 1
    assert report.confusion == expected
    assert report.per_class[:4] == [0.0, 0.0, None, 1.0]
    assert confusion_png(report.confusion).size == (28 * 11, 28 * 11)
    # Negative control: a head answering 1 scores the one image of class 1 instead.
    other = LoadedModel(net=_constant_classifier(1), config=config, path=loaded.path, device=loaded.device)
    assert evaluate_adaptation(other, data).accuracy == 0.25


def test_eval_adapt_refuses_a_model_without_class_head(tmp_path: Path) -> None:
    from i2icli.eval.adapt import evaluate_adaptation

    loaded = _loaded("paper")
    with pytest.raises(UsageError, match="has no class head"):
        evaluate_adaptation(loaded, _labelled_digits(tmp_path / "d", {"p.png": 0}))


# --------------------------------------------------------------------------- command line


def _cli(argv: list[str]):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    return CliRunner().invoke(app, argv)


def test_cli_convert_interpolate_and_refusals(tmp_path: Path, io: dict[str, Tensor]) -> None:
    from i2icli.imageio import to_pil

    out = tmp_path / "unit_tiny"
    result = _cli(["convert", "--from", "unit", str(FIXTURES / "unit_gen_tiny.pt"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    first, second = tmp_path / "x0.png", tmp_path / "x1.png"
    to_pil(io["x"][0]).save(first)
    to_pil(io["x"][1]).save(second)
    frames = tmp_path / "frames"
    argv = ["interpolate", str(first), str(second), "--model", str(out), "--steps", "3", "--gif", "-o", str(frames), "--device", "cpu"]
    result = _cli(argv)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in frames.iterdir()) == ["x0-x1.gif", "x0-x1_f0.png", "x0-x1_f1.png", "x0-x1_f2.png", "x0-x1_strip.png"]
    for argv in (
        ["sample-styles", str(first), "--model", str(out), "-o", str(tmp_path / "s")],
        ["exemplar", str(first), "--style", str(second), "--model", str(out), "-o", str(tmp_path / "e")],
    ):
        result = _cli(argv)
        assert result.exit_code == 2 and "a unit model cannot" in result.output and "Traceback" not in result.output
        assert not (tmp_path / argv[-1]).exists()


def test_cli_eval_adapt_text_json_and_png(tmp_path: Path) -> None:
    from i2icli.checkpoint import ModelConfig, save_model
    from i2icli.config import to_dict

    net = _constant_classifier(3)
    model = save_model(tmp_path / "m", net, ModelConfig(method="unit", arch=to_dict(net.arch), image_size=32))
    data = _labelled_digits(tmp_path / "digits", {"p.png": 3, "q.png": 3, "r.png": 1, "s.png": 0})
    result = _cli(["eval", "adapt", "--model", str(model), "--data", str(data), "--png", str(tmp_path / "cm.png"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "accuracy: 0.5000" in result.output and (tmp_path / "cm.png").is_file()
    result = _cli(["eval", "adapt", "--model", str(model), "--data", str(data), "--json", "--device", "cpu"])
    report = json.loads(result.output)
    assert report["accuracy"] == 0.5 and report["confusion"][1][3] == 1 and report["per_class"][3] == 1.0
    result = _cli(["eval", "adapt", "--model", str(model), "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "--data" in result.output

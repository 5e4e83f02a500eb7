"""Multimodal inference (MUNIT): the ``i2icli.multimodal`` library, the sample-styles / exemplar /
interpolate commands, ``translate`` on a MUNIT model, and ``convert --from munit``."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, write_rgb
from PIL import Image
from typer.testing import CliRunner

from i2icli.api import load_model
from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.app import app
from i2icli.config import to_dict
from i2icli.errors import UsageError
from i2icli.imageio import read_image, to_pil, to_tensor
from i2icli.inference import LoadedModel, translate_tensors
from i2icli.methods.munit import MunitArch, MunitModel
from i2icli.multimodal import (
    encode_styles,
    exemplar,
    grid_image,
    interpolate,
    mix,
    named_style,
    prior_styles,
    sample_styles,
    translate_with_styles,
)
from i2icli.nn.adain import init_weights

runner = CliRunner()
GAP = 2  # grid_image's default gap between cells
# Mean absolute difference (on the [-1, 1] scale) that two styles' outputs must exceed: about
# 2.5 grey levels per pixel on average, far above float noise (1e-6), far below a real change.
DIFFERENT = 0.02


def make_tiny_munit(seed: int = 0) -> MunitModel:
    torch.manual_seed(seed)
    arch = MunitArch(dim=4, n_res=1, mlp_dim=16)
    model = MunitModel(arch)
    init_weights(model, "kaiming")  # the official generator init; outputs vary clearly with the style
    return model.eval()


@pytest.fixture(scope="module")
def munit_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = make_tiny_munit()
    config = ModelConfig(method="munit", arch=to_dict(model.arch), domains=("day", "night"), image_size=32)
    return save_model(tmp_path_factory.mktemp("m") / "munit.safetensors", model, config)


@pytest.fixture(scope="module")
def loaded(munit_file: Path) -> LoadedModel:
    return load_model(str(munit_file), device="cpu")


def _image(seed: int, size: tuple[int, int] = (32, 32)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, size[1], size[0], generator=g) * 2 - 1  # (3, H, W)


def _pairwise(outputs: list[torch.Tensor]) -> list[float]:
    return [float((a - b).abs().mean()) for a, b in itertools.combinations(outputs, 2)]


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


# --------------------------------------------------------------------------- library


def test_prior_styles_are_seeded() -> None:
    model = make_tiny_munit()
    fake = LoadedModel(model, ModelConfig(method="munit", arch=to_dict(model.arch)), Path("x"), torch.device("cpu"))
    first, again, other = prior_styles(fake, 8, 3), prior_styles(fake, 8, 3), prior_styles(fake, 8, 4)
    assert first.shape == (8, 8, 1, 1)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert torch.equal(first, torch.randn(8, 8, 1, 1, generator=torch.Generator().manual_seed(3)))


def test_sampled_styles_give_different_outputs_at_native_size(loaded: LoadedModel) -> None:
    x = _image(0, (30, 22))  # not a multiple of the stride: padded, then cropped back
    (outputs,) = sample_styles(loaded, [x], 8, seed=1)
    assert len(outputs) == 8 and all(y.shape == (3, 22, 30) for y in outputs)
    assert min(_pairwise(outputs)) > DIFFERENT
    assert all(float(y.abs().max()) <= 1.0 for y in outputs)
    (again,) = sample_styles(loaded, [x], 8, seed=1)
    (other,) = sample_styles(loaded, [x], 8, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(outputs, again))
    assert all(float((a - b).abs().mean()) > DIFFERENT for a, b in zip(outputs, other))


def test_every_input_gets_the_same_styles(loaded: LoadedModel) -> None:
    x, y = _image(1), _image(2, (24, 40))
    alone = sample_styles(loaded, [x], 4, seed=7)[0]
    together = sample_styles(loaded, [y, x], 4, seed=7)[1]
    assert all(torch.equal(a, b) for a, b in zip(alone, together))


def test_exemplar_uses_each_references_encoded_style(loaded: LoadedModel) -> None:
    images, refs = [_image(3), _image(4, (20, 36))], [_image(5), _image(6, (48, 16)), _image(7, (8, 8))]
    out = exemplar(loaded, images, refs, "a2b")
    assert [len(row) for row in out] == [3, 3]
    styles = encode_styles(loaded, refs, "a2b")
    assert styles.shape == (3, 8, 1, 1)
    # The style comes from the target domain's style encoder (b for a2b).
    with torch.no_grad():
        assert torch.allclose(styles[0:1], loaded.net.encode_style(refs[0].unsqueeze(0), "b"), atol=1e-6)
    for i, j in itertools.product(range(2), range(3)):
        (single,) = translate_tensors(loaded, [images[i]], "a2b", styles=[styles[j]])
        torch.testing.assert_close(out[i][j], single, atol=1e-5, rtol=0)
    assert min(_pairwise(out[0])) > DIFFERENT


@pytest.mark.parametrize("mode", ["lerp", "slerp"])
def test_style_walk_ends_are_plain_translations(loaded: LoadedModel, mode: str) -> None:
    x = _image(8, (28, 20))
    styles = prior_styles(loaded, 2, 11)
    frames = interpolate(loaded, [x], styles, steps=5, mode=mode, direction="b2a")  # type: ignore[arg-type]
    assert len(frames) == 5
    (start,) = translate_tensors(loaded, [x], "b2a", styles=[styles[0]])
    (end,) = translate_tensors(loaded, [x], "b2a", styles=[styles[1]])
    assert torch.equal(frames[0], start) and torch.equal(frames[-1], end)
    assert float((frames[2] - start).abs().mean()) > DIFFERENT / 4
    assert float((frames[2] - end).abs().mean()) > DIFFERENT / 4


def test_content_walk_ends_are_plain_translations(loaded: LoadedModel) -> None:
    x, y = _image(9), _image(10)
    style = prior_styles(loaded, 1, 12)
    frames = interpolate(loaded, [x, y], style, steps=3, direction="a2b")
    (start,) = translate_tensors(loaded, [x], "a2b", styles=[style[0]])
    (end,) = translate_tensors(loaded, [y], "a2b", styles=[style[0]])
    assert torch.equal(frames[0], start) and torch.equal(frames[-1], end)
    with pytest.raises(UsageError, match="same size"):
        interpolate(loaded, [x, _image(11, (24, 32))], style, steps=3)


def test_mix_lerp_and_slerp() -> None:
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0])
    assert torch.equal(mix(a, b, 0.0, "slerp"), a) and torch.equal(mix(a, b, 1.0, "slerp"), b)
    assert torch.allclose(mix(a, b, 0.5, "lerp"), torch.tensor([0.5, 1.0, 0.0]))
    # Orthogonal vectors: slerp's halfway weights are both sin(pi/4) / sin(pi/2).
    w = float(np.sin(np.pi / 4))
    assert torch.allclose(mix(a, b, 0.5, "slerp"), torch.tensor([w, 2 * w, 0.0]))
    # Parallel vectors fall back to lerp instead of dividing by sin(0).
    assert torch.allclose(mix(a, 3 * a, 0.5, "slerp"), 2 * a)
    with pytest.raises(UsageError, match="cubic"):
        mix(a, b, 0.5, "cubic")  # type: ignore[arg-type]


def test_interpolate_refuses_bad_walks(loaded: LoadedModel) -> None:
    styles = prior_styles(loaded, 2, 0)
    with pytest.raises(UsageError, match="--steps 1"):
        interpolate(loaded, [_image(0)], styles, steps=1)
    with pytest.raises(UsageError, match="two styles"):
        interpolate(loaded, [_image(0)], styles[:1], steps=3)
    with pytest.raises(UsageError, match="got 3"):
        interpolate(loaded, [_image(0)] * 3, styles, steps=3)


def test_translate_tensors_needs_styles_exactly_for_style_models(loaded: LoadedModel, tiny_model_file: Path) -> None:
    with pytest.raises(UsageError, match="needs one style per image"):
        translate_tensors(loaded, [_image(0)], "a2b")
    cyclegan = load_model(str(tiny_model_file), device="cpu")
    with pytest.raises(UsageError, match="cyclegan model has no style codes"):
        translate_tensors(cyclegan, [_image(0)], "a2b", styles=[prior_styles(loaded, 1, 0)[0]])
    with pytest.raises(UsageError, match="no style codes"):
        prior_styles(cyclegan, 2, 0)


def test_named_style_depends_on_seed_and_name_only(loaded: LoadedModel) -> None:
    a = named_style(loaded, "sub/cat.png", 0)
    assert a.shape == (8, 1, 1)
    assert torch.equal(a, named_style(loaded, "sub/cat.png", 0))
    assert not torch.equal(a, named_style(loaded, "sub/dog.png", 0))
    assert not torch.equal(a, named_style(loaded, "sub/cat.png", 1))


def test_one_style_batch_equals_separate_translations(loaded: LoadedModel) -> None:
    x = _image(13)
    styles = prior_styles(loaded, 3, 5)
    together = translate_with_styles(loaded, x, styles, "a2b", batch_size=3)
    for k in range(3):
        (alone,) = translate_tensors(loaded, [x], "a2b", styles=[styles[k]])
        torch.testing.assert_close(together[k], alone, atol=1e-5, rtol=0)


def test_grid_image_layout() -> None:
    small, big = Image.new("L", (4, 6), 255), Image.new("RGB", (10, 8), (255, 0, 0))
    grid = grid_image([[None, small], [big, small, small]], gap=1)
    assert grid.size == (3 * 10 + 2, 2 * 8 + 1) and grid.mode == "RGB"
    assert grid.getpixel((0, 0)) == (0, 0, 0)  # empty cell
    assert grid.getpixel((11, 0)) == (255, 255, 255)  # gray image at its cell's top-left
    assert grid.getpixel((0, 9)) == (255, 0, 0)


# --------------------------------------------------------------------------- CLI


def test_sample_styles_cli_writes_outputs_and_grid(munit_file: Path, tmp_path: Path) -> None:
    one, two = write_rgb(tmp_path / "one.png", (32, 32), seed=1), write_rgb(tmp_path / "two.png", (24, 20), seed=2)
    out = tmp_path / "out"
    result = runner.invoke(app, ["sample", str(one), str(two), "--n", "3", "--seed", "4", "--model", str(munit_file), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["grid.png"] + [f"{stem}_s{k}.png" for stem in ("one", "two") for k in range(3)]
    assert Image.open(out / "two_s1.png").size == (24, 20)
    # Rows: one per input; columns: the input, then one per style; cells as large as the largest image.
    assert Image.open(out / "grid.png").size == (4 * 32 + 3 * GAP, 2 * 32 + GAP)
    # The same seed gives the same styles whatever the other inputs are.
    alone = tmp_path / "alone"
    result = runner.invoke(app, ["sample-styles", str(one), "--n", "3", "--seed", "4", "--model", str(munit_file), "-o", str(alone), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for k in range(3):
        assert np.array_equal(_pixels(alone / f"one_s{k}.png"), _pixels(out / f"one_s{k}.png"))
    assert not np.array_equal(_pixels(out / "one_s0.png"), _pixels(out / "one_s1.png"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "IMG", "--n", "0"], "--n 0"),
        (["sample", "IMG", "--direction", "up"], "--direction 'up'"),
        (["interpolate", "IMG", "--steps", "1"], "--steps 1"),
        (["interpolate", "IMG", "--from-seed", "1", "--style-a", "IMG"], "--from-seed and --style-a"),
        (["interpolate", "IMG", "IMG2", "--to-seed", "3"], "content walk"),
        (["interpolate", "IMG", "IMG2", "--geometry"], "--geometry: a munit model has no landmarks to walk"),
        (["exemplar", "IMG", "--style", "IMG", "--to", "winter"], "--to 'winter'"),
        (["exemplar", "IMG", "IMG2", "--style", "IMG", "--style", "IMG2", "-o", "SAME", "--direction", "a2b"], None),
    ],
)
def test_cli_usage_errors_do_nothing(munit_file: Path, tmp_path: Path, args: list[str], message: str | None) -> None:
    img, img2 = write_rgb(tmp_path / "img.png", (16, 16)), write_rgb(tmp_path / "sub" / "img.png", (16, 16), seed=1)
    names = {"IMG": str(img), "IMG2": str(img2), "SAME": str(tmp_path / "o")}
    argv = [names.get(a, a) for a in args] + ["--model", str(munit_file), "--device", "cpu"]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "o")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert (message or "would both be written") in lines[0]
    assert not (tmp_path / "o").exists()


def test_multimodal_without_any_default_model_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import i2icli.registry

    monkeypatch.setattr(i2icli.registry, "DEFAULT_MULTIMODAL_MODEL", None)
    img = write_rgb(tmp_path / "img.png", (16, 16))
    result = runner.invoke(app, ["sample", str(img), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "pass --model" in result.output
    assert not (tmp_path / "o").exists()


def test_exemplar_cli_with_one_unreadable_reference(munit_file: Path, tmp_path: Path) -> None:
    inputs = [write_rgb(tmp_path / f"in{i}.png", (32, 32), seed=i) for i in range(2)]
    refs = [write_rgb(tmp_path / "r" / "ref0.png", (20, 20), seed=10), tmp_path / "r" / "broken.png", write_rgb(tmp_path / "r" / "ref2.png", (40, 24), seed=12)]
    refs[1].write_text("not an image")
    out = tmp_path / "out"
    argv = ["exemplar", *map(str, inputs), "--model", str(munit_file), "-o", str(out), "--device", "cpu", "--to", "night"]
    for r in refs:
        argv += ["--style", str(r)]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "broken.png" in lines[0]
    assert "4 file(s) written" in result.output.strip().splitlines()[-1]
    written = sorted(p.name for p in out.iterdir())
    assert written == ["grid.png", "in0_ref0.png", "in0_ref2.png", "in1_ref0.png", "in1_ref2.png"]
    # Top row: an empty corner, then the two readable references; then one row per input.
    assert Image.open(out / "grid.png").size == (3 * 40 + 2 * GAP, 3 * 32 + 2 * GAP)
    assert not np.array_equal(_pixels(out / "in0_ref0.png"), _pixels(out / "in0_ref2.png"))


def test_interpolate_cli_style_walk(munit_file: Path, loaded: LoadedModel, tmp_path: Path) -> None:
    img = write_rgb(tmp_path / "walk.png", (28, 20), seed=3)
    out = tmp_path / "out"
    argv = ["interpolate", str(img), "--from-seed", "5", "--to-seed", "6", "--steps", "4", "--mode", "slerp", "--gif"]
    result = runner.invoke(app, argv + ["--model", str(munit_file), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["walk.gif", "walk_f0.png", "walk_f1.png", "walk_f2.png", "walk_f3.png", "walk_strip.png"]
    assert Image.open(out / "walk_strip.png").size == (4 * 28, 20)
    gif = Image.open(out / "walk.gif")
    assert gif.n_frames == 4 and gif.size == (28, 20)
    # The last frame is the plain translation with the --to-seed style.
    x = to_tensor(read_image(img).image)
    (end,) = translate_tensors(loaded, [x], "a2b", styles=[prior_styles(loaded, 1, 6)[0]])
    assert np.array_equal(_pixels(out / "walk_f3.png"), np.asarray(to_pil(end)))


def test_interpolate_cli_content_walk_and_reference_styles(munit_file: Path, tmp_path: Path) -> None:
    first, second = write_rgb(tmp_path / "p.png", (32, 24), seed=1), write_rgb(tmp_path / "q.png", (20, 20), seed=2)
    ref_a, ref_b = write_rgb(tmp_path / "ra.png", (16, 16), seed=3), write_rgb(tmp_path / "rb.png", (16, 16), seed=4)
    out = tmp_path / "content"
    result = runner.invoke(app, ["interpolate", str(first), str(second), "--steps", "3", "--model", str(munit_file), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["p-q_f0.png", "p-q_f1.png", "p-q_f2.png", "p-q_strip.png"]
    assert Image.open(out / "p-q_f2.png").size == (32, 24)  # the second input is resized to the first's size
    out = tmp_path / "refs"
    argv = ["interpolate", str(first), "--style-a", str(ref_a), "--style-b", str(ref_b), "--steps", "2", "--direction", "b2a"]
    result = runner.invoke(app, argv + ["--model", str(munit_file), "-o", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert not np.array_equal(_pixels(out / "p_f0.png"), _pixels(out / "p_f1.png"))


def _translate(munit_file: Path, out: Path, files: list[Path], *extra: str) -> None:
    argv = ["translate", *map(str, files), "--model", str(munit_file), "-o", str(out), "--device", "cpu", *extra]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output


def test_translate_munit_is_seeded_per_input_name(munit_file: Path, tmp_path: Path) -> None:
    files = [write_rgb(tmp_path / "in" / f"{name}.png", (24, 24), seed=i) for i, name in enumerate("abc")]
    _translate(munit_file, tmp_path / "one", files, "--batch-size", "1", "--seed", "3")
    _translate(munit_file, tmp_path / "three", files[::-1], "--batch-size", "3", "--seed", "3")
    _translate(munit_file, tmp_path / "other", files, "--seed", "4")
    for name in "abc":
        one = _pixels(tmp_path / "one" / f"{name}.png")
        assert np.array_equal(one, _pixels(tmp_path / "three" / f"{name}.png"))
        assert not np.array_equal(one, _pixels(tmp_path / "other" / f"{name}.png"))
    # Same pixels, other names: other random styles.
    assert not np.array_equal(_pixels(tmp_path / "one" / "a.png"), _pixels(tmp_path / "one" / "b.png"))


def test_translate_munit_with_a_style_reference(munit_file: Path, tiny_model_file: Path, tmp_path: Path) -> None:
    files = [write_rgb(tmp_path / f"{name}.png", (24, 24), seed=0) for name in ("x", "y")]
    ref = write_rgb(tmp_path / "ref.png", (30, 30), seed=9)
    _translate(munit_file, tmp_path / "out", files, "--style", str(ref))
    # The same image under two names: one shared style, so the same output.
    assert np.array_equal(_pixels(tmp_path / "out" / "x.png"), _pixels(tmp_path / "out" / "y.png"))
    result = runner.invoke(app, ["translate", str(files[0]), "--model", str(tiny_model_file), "--style", str(ref), "-o", str(tmp_path / "c")])
    assert result.exit_code == 2 and "a cyclegan model cannot take a style" in result.output


def test_convert_official_munit_then_translate_and_sample(tmp_path: Path) -> None:
    converted = tmp_path / "edges2shoes.safetensors"
    official = FIXTURES / "munit" / "munit_gen_tiny.pt"
    result = runner.invoke(app, ["convert", "--from", "munit", str(official), "-o", str(converted), "--domains", "edges", "shoes", "--image-size", "32"])
    assert result.exit_code == 0, result.output
    assert "dim 8, style_dim 8, 2 res blocks" in result.output
    model = load_model(str(converted), device="cpu")
    assert model.config.method == "munit" and model.config.domains == ("edges", "shoes")
    state = torch.load(official, weights_only=True)
    assert torch.equal(model.net.state_dict()["gen_b.mlp.model.0.fc.weight"], state["b"]["mlp.model.0.fc.weight"])

    img = write_rgb(tmp_path / "edge.png", (32, 32))
    _translate(converted, tmp_path / "t", [img], "--to", "shoes")
    result = runner.invoke(app, ["sample", str(img), "--n", "2", "--model", str(converted), "-o", str(tmp_path / "s"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t" / "edge.png").is_file() and (tmp_path / "s" / "edge_s1.png").is_file()
    refused = runner.invoke(app, ["convert", "--from", "munit", str(official), "-o", str(tmp_path / "x.safetensors"), "--gen-ba", str(official)])
    assert refused.exit_code == 2 and "already holds both generators" in refused.output

"""``i2i eval folders`` / ``i2i eval model`` on a small MNIST <-> UCI subset, and the metric definitions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, make_tiny_cyclegan, save_tiny, write_rgb
from typer.testing import CliRunner

from i2icli.checkpoint import ModelConfig, save_model
from i2icli.cli.eval_cmd import app
from i2icli.config import to_dict
from i2icli.data import layout, recipes
from i2icli.data.layout import DATASET_INFO
from i2icli.data.shipped import load_mnist, load_uci
from i2icli.errors import InputError
from i2icli.eval.datasets import load_split
from i2icli.eval.judges import accuracy, load_judge, predict
from i2icli.eval.report import EvalOptions, evaluate_model
from i2icli.imageio import read_image, to_tensor

runner = CliRunner()
N_TEST = 24


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist-uci-digits in miniature: 8 train and 24 test images per domain, spread over the classes."""
    root = tmp_path_factory.mktemp("digits")
    for split, n in (("train", 8), ("test", N_TEST)):
        for folder, (images, labels) in ((f"{split}A", load_mnist(split)), (f"{split}B", load_uci(split))):
            pick = np.linspace(0, len(images) - 1, n).astype(int)
            layout.write_images(root, folder, images[pick], labels[pick])
    recipes.write_dataset_info(recipes.RECIPES["mnist-uci-digits"], root)
    return root


@pytest.fixture(scope="module")
def tiny_digits_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("m") / "tiny.safetensors"
    return save_tiny(path, make_tiny_cyclegan(channels=1), ("mnist", "uci"))


def _json(args: list[str]) -> dict:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _one_line_error(args: list[str], *fragments: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def test_eval_model_json_reports_every_metric_that_applies(digits: Path, tiny_digits_model: Path) -> None:
    report = _json(["model", "--model", str(tiny_digits_model), "--data", str(digits), "--device", "cpu", "--json"])
    assert report["subject"] == str(tiny_digits_model) and report["dataset"] == "mnist-uci-digits"
    a2b, b2a = report["directions"]
    assert (a2b["direction"], a2b["source"], a2b["target"], a2b["n"]) == ("a2b", "mnist", "uci", N_TEST)
    assert (b2a["direction"], b2a["source"], b2a["target"], b2a["n"]) == ("b2a", "uci", "mnist", N_TEST)
    # FID/KID are named after the target domain's judge; never a plain "fid".
    rates = {"class-kept", "looks-like-target", "kept-as-target"}
    assert set(a2b["metrics"]) == rates | {"fid-digits-uci", "kid-digits-uci"}
    assert set(b2a["metrics"]) == rates | {"fid-digits-mnist", "kid-digits-mnist"}
    for d in (a2b, b2a):
        assert all(0 <= d["metrics"][k] <= 1 for k in rates)
        # Both at once cannot be more frequent than either alone.
        assert d["metrics"]["kept-as-target"] <= min(d["metrics"]["class-kept"], d["metrics"]["looks-like-target"])
        assert d["reference"]["real-class-acc"] > 0.8  # the judges read real target digits well
        assert any(s.startswith("diversity:") and "cyclegan" in s for s in d["skipped"])
    # 24 test images against the judges' 128 feature dimensions: the FID is given, with a caveat.
    assert [n.split(":")[0] for n in a2b["notes"]] == ["fid-digits-uci"] and "24 real" in a2b["notes"][0]
    assert [n.split(":")[0] for n in b2a["notes"]] == ["fid-digits-mnist"]


def test_do_nothing_scores_follow_the_definitions(digits: Path) -> None:
    """class kept of unchanged inputs = the content judge (digits) on the sources, against the source
    labels; kept-as-target = kept and judged as the target, per image."""
    report = _json(["model", "--do-nothing", "--data", str(digits), "--json"])
    for d, source, target_index in ((report["directions"][0], "testA", 1), (report["directions"][1], "testB", 0)):
        split = load_split(digits, source, 1)
        assert split.labels is not None
        images = torch.stack(split.images)
        kept = predict(load_judge("digits"), images) == split.labels
        assert d["metrics"]["class-kept"] == pytest.approx(float(kept.double().mean()))
        assert d["metrics"]["class-kept"] > 0.9  # the content judge reads both writers' digits
        on_target = predict(load_judge("domain-mnist-uci"), images) == target_index
        assert d["metrics"]["looks-like-target"] == pytest.approx(float(on_target.double().mean()))
        assert d["metrics"]["kept-as-target"] == pytest.approx(float((kept & on_target).double().mean()))
        assert d["metrics"]["looks-like-target"] < 0.2  # real MNIST does not look like UCI, nor the reverse


def test_class_kept_falls_back_to_the_target_judge_without_a_content_judge(digits: Path) -> None:
    """A dataset description without content_judge (written before it existed) is read by the target judge."""
    info_path = digits / DATASET_INFO
    info = json.loads(info_path.read_text(encoding="utf-8"))
    del info["content_judge"]
    info_path.write_text(json.dumps(info), encoding="utf-8")
    try:
        a2b = _json(["model", "--do-nothing", "--data", str(digits), "--json", "-d", "a2b"])["directions"][0]
    finally:
        recipes.write_dataset_info(recipes.RECIPES["mnist-uci-digits"], digits)
    split = load_split(digits, "testA", 1)
    assert split.labels is not None
    want = accuracy(load_judge("digits-uci"), torch.stack(split.images), split.labels)
    assert a2b["metrics"]["class-kept"] == pytest.approx(want)


def test_eval_model_table_and_direction(digits: Path, tiny_digits_model: Path) -> None:
    args = ["model", "-m", str(tiny_digits_model), "--data", str(digits), "-d", "b2a", "--limit", "8"]
    args += ["--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "uci -> mnist (b2a, n=8)" in result.stdout and "mnist -> uci" not in result.stdout
    for label in ("class kept", "looks like target", "FID-digits-mnist", "KID-digits-mnist"):
        assert label in result.stdout


def test_style_models_report_diversity_beside_real_images(digits: Path, tmp_path: Path) -> None:
    from i2icli.api import load_model
    from i2icli.methods.munit import MunitArch, MunitModel

    torch.manual_seed(0)
    net = MunitModel(MunitArch(dim=4, n_res=1, mlp_dim=16, channels_a=1, channels_b=1)).eval()
    config = ModelConfig(method="munit", arch=to_dict(net.arch), domains=("mnist", "uci"), image_size=28)
    model = load_model(str(save_model(tmp_path / "munit.safetensors", net, config)), device="cpu")
    opts = EvalOptions(directions=("a2b",), styles=3, diversity_inputs=4)
    first = evaluate_model(model, digits, opts, name="munit").directions[0]
    assert first.metrics["diversity"] > 0 and first.reference["real-diversity"] > 0
    assert not any(s.startswith("diversity") for s in first.skipped)
    assert evaluate_model(model, digits, opts, name="munit").directions[0].metrics == first.metrics  # seeded


def test_eval_folders_json_and_paired_metrics(digits: Path) -> None:
    args = ["folders", "--real", str(digits / "testB"), "--fake", str(digits / "testA"), "--json"]
    cross = _json([*args, "--metrics", "fid-digits-uci,kid-digits-uci"])
    assert (cross["n_real"], cross["n_fake"], cross["n_paired"]) == (N_TEST, N_TEST, 0)
    assert list(cross["metrics"]) == ["fid-digits-uci", "kid-digits-uci"]
    same = _json(["folders", "--real", str(digits / "testA"), "--fake", str(digits / "testA"), "--json",
                  "--metrics", "fid-digits-uci,l1,pixel-acc,ssim"])  # fmt: skip
    assert same["metrics"]["l1"] == 0 and same["metrics"]["pixel-acc"] == 1
    assert same["metrics"]["ssim"] == pytest.approx(1)
    assert same["metrics"]["fid-digits-uci"] < 1e-3 * cross["metrics"]["fid-digits-uci"]
    assert same["n_paired"] == N_TEST
    assert len(cross["notes"]) == 1 and "biased" in cross["notes"][0]
    table = runner.invoke(app, [*(a for a in args if a != "--json"), "--metrics", "fid-digits-uci"])
    assert table.exit_code == 0 and "note: fid-digits-uci: 24 real / 24 translated" in " ".join(table.stdout.split())


def test_eval_folders_pairs_by_name(digits: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    fake.mkdir()
    shutil.copy(digits / "testA" / "00003.png", fake / "00003.png")
    report = _json(["folders", "--real", str(digits / "testB"), "--fake", str(fake), "--metrics", "l1,psnr", "--json"])
    a = to_tensor(read_image(digits / "testA" / "00003.png").image)[None]
    b = to_tensor(read_image(digits / "testB" / "00003.png").image)[None]
    assert report["n_paired"] == 1
    assert report["metrics"]["l1"] == pytest.approx(float((a - b).abs().mean()))
    (fake / "extra.png").write_bytes((fake / "00003.png").read_bytes())
    _one_line_error(["folders", "--real", str(digits / "testB"), "--fake", str(fake), "--metrics", "l1"], "extra.png")


@pytest.mark.parametrize(
    ("metrics", "fragments"),
    [
        ("fid-digit-uci", ("unknown metric 'fid-digit-uci'", "fid-digits-uci")),
        ("fid-nosuch-judge", ("unknown metric 'fid-nosuch-judge'",)),
        ("psnr,FID", ("unknown metric 'FID'",)),
        ("fid-inception", ("--inception PATH",)),
        (",", ("at least one metric",)),
    ],
)
def test_bad_metric_names_exit_2_with_one_line(digits: Path, metrics: str, fragments: tuple[str, ...]) -> None:
    args = ["folders", "--real", str(digits / "testB"), "--fake", str(digits / "testA"), "--metrics", metrics]
    _one_line_error(args, *fragments)


def test_missing_judge_in_the_dataset_description_exits_2(digits: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    shutil.copytree(digits, root)
    info = json.loads((root / DATASET_INFO).read_text())
    info["class_judges"]["a"] = "digits-nope"
    (root / DATASET_INFO).write_text(json.dumps(info))
    _one_line_error(["model", "--do-nothing", "--data", str(root)], DATASET_INFO, "class_judges.a", "digits-nope")


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ([], "pass --model"),
        (["--do-nothing", "--model", "x.safetensors"], "exclude each other"),
        (["--do-nothing", "--direction", "sideways"], "--direction"),
        (["--do-nothing", "--limit", "1"], "--limit 1"),
        (["--do-nothing", "--styles", "1"], "--styles 1"),
    ],
)
def test_model_usage_errors_exit_2(digits: Path, extra: list[str], fragment: str) -> None:
    _one_line_error(["model", "--data", str(digits), *extra], fragment)


def test_model_on_a_folder_without_the_layout_exits_2(tmp_path: Path) -> None:
    _one_line_error(["model", "--do-nothing", "--data", str(tmp_path)], "no testA/ folder", "i2i data prepare")


def test_recipes_describe_how_to_judge_their_data(digits: Path) -> None:
    info = json.loads((digits / DATASET_INFO).read_text())
    assert info == {
        "format_version": 1, "recipe": "mnist-uci-digits", "domains": ["mnist", "uci"],
        "class_judges": {"a": "digits-mnist", "b": "digits-uci"}, "keeps_labels": True,
        "domain_judge": "domain-mnist-uci", "content_judge": "digits", "paired": False,
    }  # fmt: skip
    synthetic = recipes.dataset_info(recipes.RECIPES["synthetic-colored-digits"])
    assert synthetic["paired"] is True and synthetic["class_judges"] == {"a": None, "b": None}
    fashion = recipes.dataset_info(recipes.RECIPES["fashion-sneaker-boot"])
    assert fashion["keeps_labels"] is False and fashion["domain_judge"] == "domain-fashion-sneaker-boot"


def test_eval_module_does_not_import_torch() -> None:
    code = "import sys, i2icli.cli.eval_cmd; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_inception_kid_from_a_user_weights_file(digits: Path, tmp_path: Path) -> None:
    """The --inception path end to end, with a randomly initialised network of the right layout."""
    from safetensors.torch import save_file

    from i2icli.eval.inception import build_fid_inception

    weights = tmp_path / "pt_inception.safetensors"
    save_file({k: v.contiguous() for k, v in build_fid_inception().state_dict().items()}, str(weights))
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, source in ((real, "testB"), (fake, "testA")):
        folder.mkdir()
        for name in ("00000.png", "00001.png", "00002.png"):
            shutil.copy(digits / source / name, folder / name)
    args = ["folders", "--real", str(real), "--fake", str(fake), "--metrics", "kid-inception", "--json"]
    _one_line_error(args[:-1], "--inception PATH")
    report = _json([*args, "--inception", str(weights)])
    assert list(report["metrics"]) == ["kid-inception"] and np.isfinite(report["metrics"]["kid-inception"])


def test_split_labels_follow_the_one_csv_parser(tmp_path: Path) -> None:
    """The labels of a test split are read with the rules of ``--labels-a`` (header optional, two
    fields, whole numbers), a bad row named by number; names are relative to the split folder."""
    for i in range(2):
        write_rgb(tmp_path / "testA" / f"{i:05d}.png", (8, 8), seed=i)
    csv_path = tmp_path / "testA_labels.csv"
    csv_path.write_text("00000.png,1\n00001.png,7\n")  # no header
    assert load_split(tmp_path, "testA", 3).labels.tolist() == [1, 7]
    csv_path.write_text("filename,label\n00000.png,1\n00001.png,x\n")
    with pytest.raises(InputError, match=r"testA_labels.csv: row 3: label 'x' is not a whole number"):
        load_split(tmp_path, "testA", 3)

"""The authors' released models by name: registry entries, download -> convert -> verify -> cache,
Drive releases, offline mode, `models list/info/rm` and `i2i push` (local HTTP server and mock Hub).

Release files are built in the official layouts from the documented key manifests (key, shape,
dtype; random values), served from 127.0.0.1; nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, REPO, write_rgb
from httpserver import FileServer
from mockhub import MockHub
from safetensors.torch import load_file
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.registry import ALIASES, METHODS, PRETRAINED, lookup
from i2icli.sources import LOCK_NAME, MIRROR_ENV, cache_dir, cached_file, fetch_release, manual_steps, model_dir, resolve

runner = CliRunner()
H2Z = "cyclegan-horse2zebra"
H2Z_PATH = "/cyclegan/pretrained_models/horse2zebra.pth"
# The official list (docs/methods/cyclegan.md#checkpoints, scripts/download_cyclegan_model.sh of the official repository).
CYCLEGAN_RELEASES = {
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
    "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map", "map2sat",
    "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo", "iphone2dslr_flower",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------- helpers


def official_state(manifest: Path, seed: int) -> dict[str, torch.Tensor]:
    """A state dict with the manifest's keys, shapes and dtypes, filled with seeded random values."""
    gen = torch.Generator().manual_seed(seed)
    return {
        k["key"]: torch.randn(k["shape"], generator=gen).to(getattr(torch, k["dtype"]))
        for k in json.loads(manifest.read_text())["keys"]
    }


@cache
def cyclegan_file(size: str, seed: int) -> bytes:
    """An official CycleGAN generator file (``torch.save`` of a bare state dict), full or small layout."""
    buffer = io.BytesIO()
    torch.save(official_state(FIXTURES / "cyclegan" / f"cyclegan_keys_{size}.json", seed), buffer)
    return buffer.getvalue()


def two_generator_file(path: Path, manifest: Path) -> Path:
    """An official MUNIT/UNIT ``gen_*.pt``: ``{'a': state_dict, 'b': state_dict}``."""
    torch.save({"a": official_state(manifest, 0), "b": official_state(manifest, 1)}, path)
    return path


def closed_port_url() -> str:
    """An http:// URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh i2i cache and HF home per test; no mirror, no offline flag, no token from outside."""
    monkeypatch.setenv("I2I_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for name in (MIRROR_ENV, "HF_HUB_OFFLINE", "HF_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FileServer]:
    """The CycleGAN release folder on 127.0.0.1 (small layout), mirrored through $I2I_MODELS_URL."""
    with FileServer({H2Z_PATH: cyclegan_file("small", 0)}) as srv:
        monkeypatch.setenv(MIRROR_ENV, srv.url + "/cyclegan/pretrained_models")
        yield srv


def point_hf_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Make huggingface_hub (already imported, HF_ENDPOINT read) talk to ``url`` in this process."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def translate(model: str, image: Path, out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["translate", str(image), "--model", model, "-o", str(out), "--device", "cpu", *extra])


# ---------------------------------------------------------------------------------------------- registry data


def test_registry_lists_every_released_model_once() -> None:
    releases = {e.release.filename: e for e in PRETRAINED.values() if e.release is not None}
    assert len(releases) == sum(e.release is not None for e in PRETRAINED.values())  # lock-file keys are unique
    cyclegan = {e.aliases[0] for e in PRETRAINED.values() if e.method == "cyclegan" and e.release is not None}
    assert cyclegan == CYCLEGAN_RELEASES
    assert {"munit-edges2shoes", "unit-gta2city", "munit-summer2winter"} <= set(PRETRAINED)
    for name, entry in PRETRAINED.items():
        assert entry.name == name and name.startswith(entry.method + "-") and entry.method in METHODS
        assert (entry.local is not None) != (entry.release is not None or entry.repo_id is not None or entry.recipe is not None)
        assert (entry.dataset is None) != (entry.data == ""), name  # training data described exactly once
        if entry.release is not None:
            hosts = {"http": "http://efrosgans.eecs.berkeley.edu/", "manual": "https://drive.google.com/", "drive": "https://drive.google.com/"}
            assert entry.release.url.startswith(hosts[entry.release.hosting])
            assert entry.repo_id is None and entry.hub == "not yet published"
            assert entry.release.hosting != "drive" or bool(entry.release.drive_id) != bool(entry.release.drive_folder)
    assert len(ALIASES) == sum(len(e.aliases) for e in PRETRAINED.values()) and not set(ALIASES) & set(PRETRAINED)
    # MUNIT/UNIT releases (2018: CC BY-NC-SA; imaginaire: NVIDIA Source Code License-NC); nothing else is non-commercial.
    imaginaire = {"munit-summer2winter", "munit-dog2cat", "munit-edges2shoes-hd", "unit-winter2summer"}
    assert {e.name for e in PRETRAINED.values() if e.non_commercial} == {"munit-edges2shoes", "unit-gta2city", *imaginaire}


def test_every_dataset_named_by_an_entry_is_a_recipe() -> None:
    from i2icli.data.recipes import RECIPES

    assert all(e.dataset in RECIPES for e in PRETRAINED.values() if e.dataset is not None)


def test_registry_and_models_list_stay_torch_free() -> None:
    code = (
        "import sys; from i2icli.cli.app import app\n"
        "app(['models', 'list', '--json'], standalone_mode=False); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False")


def test_official_names_resolve_and_a_dataset_folder_does_not_shadow_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "horse2zebra" / "trainA").mkdir(parents=True)  # `i2i data prepare horse2zebra horse2zebra`
    for ref in ("horse2zebra", H2Z, "summer2winter_yosemite", "edges2shoes", "unit_gta2city"):
        got = resolve(ref)
        assert got.kind == "registry" and got.name == lookup(ref).name  # type: ignore[union-attr]
    assert resolve("horse2zebra").name == H2Z


# ---------------------------------------------------------------------------------------------- download -> cache


def test_full_layout_download_resumes_converts_caches_and_never_repeats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented 9-block, ngf-64 layout: a half download resumes with a Range request, converts
    with a strict load into the cache, translates; a second run and an offline run make no request."""
    data = cyclegan_file("full", 7)
    image = write_rgb(tmp_path / "in" / "horse.png", (40, 28))
    with FileServer({H2Z_PATH: data}) as srv:
        monkeypatch.setenv(MIRROR_ENV, srv.url + "/cyclegan/pretrained_models")
        part = cache_dir() / "downloads" / "horse2zebra.pth.part"
        part.parent.mkdir(parents=True)
        part.write_bytes(data[: len(data) // 2])  # an earlier run was interrupted half-way
        first = translate(H2Z, image, tmp_path / "out1")
        assert first.exit_code == 0, first.output
        assert [(r.method, r.range) for r in srv.log] == [("GET", f"bytes={len(data) // 2}-")]
        assert "horse2zebra.pth" in first.stderr and "sha256 recorded" in first.stderr
        cached = cached_file(PRETRAINED[H2Z])
        assert cached is not None and not (cache_dir() / "downloads" / "horse2zebra.pth").exists()
        # The cached tensors are the served ones, bit for bit, under our prefix.
        served = torch.load(io.BytesIO(data), weights_only=True)
        converted = load_file(str(cached))
        assert converted.keys() == {f"gen_ab.{k}" for k in served}
        assert all(torch.equal(converted[f"gen_ab.{k}"], v) for k, v in served.items())
        config = json.loads((cached.parent / "config.json").read_text())
        assert (config["arch"]["ngf"], config["arch"]["n_blocks"], config["arch"]["directions"]) == (64, 9, ["a2b"])
        assert config["domains"] == ["horse", "zebra"] and config["training"]["files"] == ["horse2zebra.pth"]
        assert "BSD-2-Clause" in (cached.parent / "README.md").read_text()
        lock = json.loads((cache_dir() / "downloads" / LOCK_NAME).read_text())
        assert lock["files"]["horse2zebra.pth"]["sha256"] == __import__("hashlib").sha256(data).hexdigest()

        second = translate("horse2zebra", image, tmp_path / "out2")  # the official alias, same cache
        assert second.exit_code == 0, second.output
        assert len(srv.log) == 1  # no request at all
    offline = translate(H2Z, image, tmp_path / "out3", "--offline")  # server gone: the cache is enough
    assert offline.exit_code == 0, offline.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf_offline = translate(H2Z, image, tmp_path / "out4")
    assert hf_offline.exit_code == 0, hf_offline.output
    outputs = [(tmp_path / d / "horse.png").read_bytes() for d in ("out1", "out2", "out3", "out4")]
    assert outputs[0] == outputs[1] == outputs[2] == outputs[3]
    assert outputs[0] != image.read_bytes()


def test_a_transfer_cut_mid_body_resumes_and_shows_a_progress_bar(server: FileServer, capsys: pytest.CaptureFixture[str]) -> None:
    data = server.files[H2Z_PATH]
    server.cut_next(H2Z_PATH, 5000)
    path = fetch_release(PRETRAINED[H2Z], progress=True)
    assert path == cached_file(PRETRAINED[H2Z])
    assert [r.range for r in server.log] == [None, "bytes=5000-"]
    assert "horse2zebra.pth" in capsys.readouterr().err  # the bar's label (rich, on stderr)
    assert len(data) > 5000


def test_changed_upstream_file_fails_the_sha256_check_in_one_line(server: FileServer, tmp_path: Path) -> None:
    image = write_rgb(tmp_path / "x.png", (32, 32))
    assert translate(H2Z, image, tmp_path / "a").exit_code == 0
    removed = runner.invoke(app, ["models", "rm", H2Z])
    assert removed.exit_code == 0 and str(model_dir(H2Z)) in removed.stderr and cached_file(PRETRAINED[H2Z]) is None

    server.files[H2Z_PATH] = cyclegan_file("small", 1)  # same layout, other bytes
    changed = translate(H2Z, image, tmp_path / "b")
    assert changed.exit_code == 1
    assert len(lines(changed.stderr)) == 1 and "Traceback" not in changed.output
    assert "horse2zebra.pth: sha256 mismatch" in changed.stderr and "kept as" in changed.stderr
    assert cached_file(PRETRAINED[H2Z]) is None and not (tmp_path / "b").exists()
    assert (cache_dir() / "downloads" / "horse2zebra.pth.bad").exists()

    # Accepting the new upstream file is explicit: forget the recorded hash, then it is recorded afresh.
    assert runner.invoke(app, ["models", "rm", H2Z, "--forget-sha256"]).exit_code == 0
    assert translate(H2Z, image, tmp_path / "c").exit_code == 0
    assert (tmp_path / "a" / "x.png").read_bytes() != (tmp_path / "c" / "x.png").read_bytes()


def test_offline_without_cache_makes_no_request(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = write_rgb(tmp_path / "x.png", (32, 32))
    for extra, env in ((("--offline",), None), ((), "1")):
        if env:
            monkeypatch.setenv("HF_HUB_OFFLINE", env)
        result = translate(H2Z, image, tmp_path / "out", *extra)
        assert result.exit_code == 2 and len(lines(result.stderr)) == 1 and "Traceback" not in result.output
        assert "offline mode is on" in result.stderr and "horse2zebra.pth" in result.stderr
    assert server.log == [] and not (tmp_path / "out").exists()


def test_no_network_and_no_cache_fails_in_one_line_exit_2(tmp_path: Path) -> None:
    """The real registry URL, in a fresh process whose every HTTP request meets a closed port."""
    closed = closed_port_url()
    image = write_rgb(tmp_path / "x.jpg", (32, 32))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", MIRROR_ENV.lower())}
    env |= {"http_proxy": closed, "I2I_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "i2icli", "translate", "--model", H2Z, str(image), "-o", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    assert out.returncode == 2, out.stderr
    assert len(lines(out.stderr)) == 1 and "Traceback" not in out.stderr
    assert "needs a one-time download of horse2zebra.pth" in out.stderr
    assert "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth" in out.stderr
    assert not (tmp_path / "out").exists()


def test_a_published_hub_copy_comes_first_and_the_release_is_the_fallback(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from i2icli.sources import fetch

    fetch_release(PRETRAINED[H2Z])  # the converted file that a Hub copy would hold
    converted = cached_file(PRETRAINED[H2Z]).read_bytes()  # type: ignore[union-attr]
    runner.invoke(app, ["models", "rm", H2Z])
    published = dataclasses.replace(PRETRAINED[H2Z], repo_id="i2i/cyclegan-horse2zebra")
    monkeypatch.setitem(PRETRAINED, H2Z, published)
    requests = len(server.log)
    with MockHub() as hub:
        hub.add_commit("i2i/cyclegan-horse2zebra", {"model.safetensors": converted})
        point_hf_at(monkeypatch, hub.url)
        path = fetch(resolve(H2Z))
        assert path.read_bytes() == converted and len(server.log) == requests  # the release was not touched
    from huggingface_hub import constants

    monkeypatch.setenv("I2I_CACHE_DIR", str(tmp_path / "cache2"))  # another machine: nothing cached anywhere
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf2"))
    with MockHub() as gone:
        point_hf_at(monkeypatch, gone.url)  # a Hub without that repo: fall back to the release
        assert fetch(resolve(H2Z)) == cached_file(published)
    assert len(server.log) == requests + 1


# ---------------------------------------------------------------------------------------------- Drive releases, recipes


@pytest.mark.parametrize(
    ("name", "manifest", "url"),
    [
        ("munit-edges2shoes", FIXTURES / "munit" / "munit_keys_tiny.json", "https://drive.google.com/drive/folders/10IEa7gibOWmQQuJUIUOkh-CV4cm6k8__"),
        ("unit-gta2city", FIXTURES / "unit" / "unit_keys_tiny.json", "https://drive.google.com/open?id=1R9MH_p8tDmUsIAjKCu-jgoilWgANfObx"),
    ],
)
def test_drive_release_prints_steps_then_installs_by_hand(name: str, manifest: Path, url: str, tmp_path: Path) -> None:
    """The by-hand path next to the one-command download (tests/test_drive.py): offline it says what
    to do; a release marked ``manual`` prints the steps; the person's file installs into the cache."""
    entry = PRETRAINED[name]
    assert entry.release is not None and entry.release.hosting == "drive"
    image = write_rgb(tmp_path / "x.png", (32, 32))
    asked = translate(entry.aliases[0], image, tmp_path / "out", "--offline")
    assert asked.exit_code == 2 and len(lines(asked.stderr)) == 1 and "Traceback" not in asked.output
    assert "offline mode is on" in asked.stderr and entry.release.filename in asked.stderr
    steps = manual_steps(dataclasses.replace(entry, release=dataclasses.replace(entry.release, hosting="manual")))
    for step in (url, f"download {entry.release.filename}", f"i2i convert --model {name} ", "CC BY-NC-SA 4.0"):
        assert step in steps

    # Step 2 as printed: the file the person downloaded (official layout), converted into the cache.
    downloaded = two_generator_file(tmp_path / entry.release.filename, manifest)
    installed = runner.invoke(app, ["convert", "--model", name, str(downloaded)])
    assert installed.exit_code == 0, installed.output
    assert "CC BY-NC-SA 4.0" in installed.stderr and "non-commercial" in installed.stderr
    assert downloaded.exists()  # the person's own file is left alone
    listed = json.loads(runner.invoke(app, ["models", "list", "--cached", "--json"]).stdout)
    assert name in {m["name"] for m in listed}
    card = runner.invoke(app, ["models", "info", name])
    assert card.exit_code == 0 and "license: cc-by-nc-sa-4.0" in card.stdout and "Non-commercial use only" in card.stdout
    done = translate(name, image, tmp_path / "out", "--offline")
    assert done.exit_code == 0, done.output
    assert (tmp_path / "out" / "x.png").is_file()


def unpublished(monkeypatch: pytest.MonkeyPatch) -> None:
    """Turn munit-summer2winter into an entry with nothing published, only a recipe (every real entry
    now has weights; the path stays for future ones)."""
    entry = dataclasses.replace(
        PRETRAINED["munit-summer2winter"], release=None, license="MIT", license_note="", data="",
        dataset="summer2winter_yosemite",
        recipe="i2i data prepare summer2winter_yosemite d && i2i train --method munit --preset paper --dataroot d",
    )  # fmt: skip
    monkeypatch.setitem(PRETRAINED, entry.name, entry)


def test_an_entry_without_weights_says_not_yet_published_and_how_to_train(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unpublished(monkeypatch)
    image = write_rgb(tmp_path / "x.png", (32, 32))
    result = translate("munit-summer2winter", image, tmp_path / "out")
    assert result.exit_code == 2 and len(lines(result.stderr)) == 1 and "Traceback" not in result.output
    for part in (
        "not yet published",
        "i2i data prepare summer2winter_yosemite",
        "i2i train --method munit --preset paper",
        "hf-hub:ORG/NAME",
    ):
        assert part in result.stderr
    info = runner.invoke(app, ["models", "info", "munit-summer2winter"])
    assert info.exit_code == 0 and "## How to make it" in info.stdout and "not yet published" in info.stdout


def test_convert_model_refuses_what_the_registry_sets(tmp_path: Path) -> None:
    pth = tmp_path / "horse2zebra.pth"
    pth.write_bytes(cyclegan_file("small", 0))
    for args, message in (
        (["--model", "cyclegan-digits", str(pth)], "not a registry model with an authors' release"),
        (["--model", H2Z, str(pth), "--from", "cyclegan"], "drop --from, -o and --gen-ba"),
        (["--model", H2Z, str(tmp_path / "missing.pth")], "no such file"),
        ([str(pth)], "needs --from METHOD and -o OUT"),
    ):
        result = runner.invoke(app, ["convert", *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)


# ---------------------------------------------------------------------------------------------- models list / info / rm


def test_models_list_shows_licence_source_and_cache_state(server: FileServer) -> None:
    table = runner.invoke(app, ["models", "list"])
    assert table.exit_code == 0
    for text in ("cyclegan-style-vangogh", "BSD-2-Clause", "CC BY-NC-SA 4.0", "efrosgans", "not yet published"):
        assert text in table.stdout
    embedded = {name for name, entry in PRETRAINED.items() if entry.local is not None}
    assert {"cyclegan-digits", "munit-fashion"} <= embedded
    assert {m["name"] for m in json.loads(runner.invoke(app, ["models", "list", "--cached", "--json"]).stdout)} == embedded
    fetch_release(PRETRAINED[H2Z])
    listed = {m["name"]: m for m in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    assert listed[H2Z]["cached"] == str(cached_file(PRETRAINED[H2Z])) and listed["cyclegan-zebra2horse"]["cached"] is None
    assert listed[H2Z]["release"]["filename"] == "horse2zebra.pth" and listed[H2Z]["license"] == "BSD-2-Clause"
    assert runner.invoke(app, ["models", "rm", "cyclegan-zebra2horse"]).stderr.strip() == "cyclegan-zebra2horse: nothing cached"
    for bad in ("cyclegan-digits", "nope"):
        assert runner.invoke(app, ["models", "rm", bad]).exit_code == 2


def test_models_info_never_downloads_and_uses_the_cached_config(server: FileServer) -> None:
    before = runner.invoke(app, ["models", "info", H2Z])
    assert before.exit_code == 0 and server.log == []
    assert "BSD-2-Clause" in before.stdout and "horse2zebra.pth" in before.stdout and "i2i translate --model cyclegan-horse2zebra" in before.stdout
    as_json = json.loads(runner.invoke(app, ["models", "info", H2Z, "--json"]).stdout)
    assert as_json["path"] is None and as_json["registry"]["name"] == H2Z
    fetch_release(PRETRAINED[H2Z])
    after = runner.invoke(app, ["models", "info", "horse2zebra"])
    assert "directions: a2b" in after.stdout and '"ngf": 8' in after.stdout
    embedded = runner.invoke(app, ["models", "info", "cyclegan-digits"])
    assert embedded.stdout == (REPO / "weights" / "cyclegan-digits" / "README.md").read_text()


# ---------------------------------------------------------------------------------------------- push


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[MockHub]:
    with MockHub() as mock:
        mock.write_token = "hf_write"
        point_hf_at(monkeypatch, mock.url)
        yield mock


def test_push_uploads_weights_config_and_card(hub: MockHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_write")
    result = runner.invoke(app, ["push", "cyclegan-digits", "--repo", "acme/digits", "--private", "--revision", "v1"])
    assert result.exit_code == 0, result.output
    assert "acme/digits" in hub.private
    sha, files = hub.resolve("acme/digits", "v1")
    assert hub.resolve("acme/digits", "main")[1].keys() == {".gitattributes"}  # the branch got the commit
    assert set(files) == {".gitattributes", "model.safetensors", "config.json", "README.md"}
    assert files["model.safetensors"] == (REPO / "weights" / "cyclegan-digits" / "model.safetensors").read_bytes()
    config = json.loads(files["config.json"])
    assert config["method"] == "cyclegan" and config["domains"] == ["mnist", "uci"]
    card = files["README.md"].decode()
    kept = json.loads((REPO / "weights" / "cyclegan-digits" / "metrics.json").read_text())["a2b:model:kept-as-target"]
    for text in (
        "license: mit", "# cyclegan-digits", "Zhu et al., ICCV 2017", "`mnist` (a) and `uci` (b)", "MNIST",
        f"a2b:model:kept-as-target | {kept:.4g}", "i2i translate --model hf-hub:acme/digits", "this repository",
    ):  # fmt: skip
        assert text in card, text
    assert sha in result.stderr

    # What was pushed loads back through hf-hub: and translates like the original.
    image = write_rgb(tmp_path / "d.png", (28, 28))
    pushed = translate("hf-hub:acme/digits@v1", image, tmp_path / "pushed")
    original = translate("cyclegan-digits", image, tmp_path / "original")
    assert pushed.exit_code == original.exit_code == 0, pushed.output
    assert (tmp_path / "pushed" / "d.png").read_bytes() == (tmp_path / "original" / "d.png").read_bytes()


def test_push_of_a_non_commercial_release_carries_its_licence(hub: MockHub, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_write")
    downloaded = two_generator_file(tmp_path / "edges2shoes.pt", FIXTURES / "munit" / "munit_keys_tiny.json")
    assert runner.invoke(app, ["convert", "--model", "munit-edges2shoes", str(downloaded)]).exit_code == 0
    result = runner.invoke(app, ["push", "edges2shoes", "--repo", "acme/e2s"])
    assert result.exit_code == 0, result.output
    card = hub.resolve("acme/e2s", "main")[1]["README.md"].decode()
    assert "license: cc-by-nc-sa-4.0" in card and "Non-commercial use only" in card and "edges2shoes.pt" in card
    assert "i2i sample-styles --model hf-hub:acme/e2s" in card and "acme/e2s" not in hub.private


def test_push_failures_are_one_line(hub: MockHub, monkeypatch: pytest.MonkeyPatch) -> None:
    no_token = runner.invoke(app, ["push", "cyclegan-digits", "--repo", "acme/digits"])
    assert no_token.exit_code == 1 and len(lines(no_token.stderr)) == 1 and "HTTP 401" in no_token.stderr
    bad_repo = runner.invoke(app, ["push", "cyclegan-digits", "--repo", "digits"])
    assert bad_repo.exit_code == 2 and "exactly 'ORG/NAME'" in bad_repo.stderr
    unpublished(monkeypatch)
    not_published = runner.invoke(app, ["push", "munit-summer2winter", "--repo", "acme/s2w"])
    assert not_published.exit_code == 2 and "not yet published" in not_published.stderr
    assert [p for p in hub.paths_requested("POST")] == ["/api/repos/create"]  # only the refused first call
    point_hf_at(monkeypatch, closed_port_url())
    monkeypatch.setenv("HF_TOKEN", "hf_write")
    unreachable = runner.invoke(app, ["push", "cyclegan-digits", "--repo", "acme/digits"])
    assert unreachable.exit_code == 1 and len(lines(unreachable.stderr)) == 1 and "could not be reached" in unreachable.stderr


def test_readme_registry_table_names_every_entry() -> None:
    table = (REPO / "README.md").read_text().split("## Registry", 1)[1].split("## Python API", 1)[0]
    assert all(f"`{name}`" in table for name in PRETRAINED)

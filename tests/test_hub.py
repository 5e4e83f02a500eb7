"""Tests of i2icli.hub against a mock Hub on 127.0.0.1, a real HF cache and real offline mode (no network)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from mockhub import MockHub
from safetensors.numpy import save

from i2icli.errors import ResolveError
from i2icli.hub import HubRef, _explain_hub_error, download_model_file, parse_hub_ref, push_model, sha256_file

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO = "acme/tiny-gan"


def _weights(value: float) -> bytes:
    """A real (tiny) safetensors file whose single tensor is filled with `value`."""
    return save({"w": np.full((2, 3), value, dtype=np.float32)})


@pytest.fixture
def hub() -> Iterator[MockHub]:
    with MockHub() as server:
        yield server


@pytest.fixture
def two_revisions(hub: MockHub) -> tuple[str, str]:
    """REPO with two commits holding different weights; main points at the second."""
    first = hub.add_commit(REPO, {"model.safetensors": _weights(1.0), "config.json": b'{"method": "cyclegan"}'})
    second = hub.add_commit(REPO, {"model.safetensors": _weights(2.0), "config.json": b'{"method": "cyclegan"}'})
    return first, second


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's HF cache and token out of every test."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)


def _download(hub: MockHub, cache: Path, **kwargs: object) -> Path:
    return download_model_file(REPO, endpoint=hub.url, cache_dir=cache, token=False, **kwargs)


# ---------------------------------------------------------------------------------------------- references


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("hf-hub:acme/tiny-gan", HubRef("acme/tiny-gan", None)),
        ("hf-hub:acme/tiny-gan@main", HubRef("acme/tiny-gan", "main")),
        ("hf-hub:Org_1/model.v2@v1.0", HubRef("Org_1/model.v2", "v1.0")),
        ("hf-hub:a/b@refs/pr/3", HubRef("a/b", "refs/pr/3")),
        ("hf-hub:acme/x@" + "0123456789abcdef" * 2 + "01234567", HubRef("acme/x", "0123456789abcdef" * 2 + "01234567")),
    ],
)
def test_parse_hub_ref_accepts(ref: str, expected: HubRef) -> None:
    parsed = parse_hub_ref(ref)
    assert parsed == expected
    assert str(parsed) == ref


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "hf-hub:",
        "acme/tiny-gan",  # no prefix
        "hf_hub:acme/tiny-gan",
        "hf-hub:tiny-gan",  # no slash
        "hf-hub:acme/tiny/gan",  # two slashes
        "hf-hub:/tiny",
        "hf-hub:acme/",
        "hf-hub:acme/tiny gan",
        "hf-hub:acme/tiny$gan",
        "hf-hub:acme/tiny--gan",
        "hf-hub:acme/tiny..gan",
        "hf-hub:acme/-tiny",
        "hf-hub:acme/" + "x" * 97,
        "hf-hub:acme/tiny@",  # empty revision
        "hf-hub:acme/tiny@v1@v2",
        "hf-hub:acme/tiny@../main",
        "hf-hub:acme/tiny@bad rev",
    ],
)
def test_parse_hub_ref_refuses(ref: str) -> None:
    with pytest.raises(ResolveError) as info:
        parse_hub_ref(ref)
    message = str(info.value)
    assert repr(ref) in message
    assert "\n" not in message


# ---------------------------------------------------------------------------------------------- downloads


def test_revision_pins_the_commit_and_main_follows_the_branch(
    hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path
) -> None:
    first, second = two_revisions
    old = _download(hub, tmp_path, revision=first)
    assert old.read_bytes() == _weights(1.0)
    assert f"/{REPO}/resolve/{first}/model.safetensors" in hub.paths_requested("GET")
    assert not any("/resolve/main/" in path for path in hub.paths_requested())

    new = _download(hub, tmp_path)
    assert new.read_bytes() == _weights(2.0)
    assert f"/{REPO}/resolve/main/model.safetensors" in hub.paths_requested("HEAD")
    # The cache is laid out by commit, so the two revisions never overwrite each other.
    assert first in old.parts and second in new.parts
    assert old.read_bytes() == _weights(1.0)


def test_cached_commit_is_not_downloaded_again(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    first, _ = two_revisions
    _download(hub, tmp_path, revision=first)
    seen = len(hub.requests)
    assert _download(hub, tmp_path, revision=first).read_bytes() == _weights(1.0)
    assert len(hub.requests) == seen


def test_other_files_and_branches(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    first, _ = two_revisions
    hub.branches[REPO]["stable"] = first
    config = _download(hub, tmp_path, filename="config.json", revision="stable")
    assert config.read_bytes() == b'{"method": "cyclegan"}'
    assert _download(hub, tmp_path, revision="stable").read_bytes() == _weights(1.0)


def test_sha256_pin_that_matches_passes(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    first, _ = two_revisions
    digest = hashlib.sha256(_weights(1.0)).hexdigest()
    path = _download(hub, tmp_path, revision=first, sha256=digest.upper())
    assert sha256_file(path) == digest


def test_sha256_pin_that_differs_raises(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    pinned = hashlib.sha256(_weights(1.0)).hexdigest()
    actual = hashlib.sha256(_weights(2.0)).hexdigest()
    with pytest.raises(ResolveError) as info:
        _download(hub, tmp_path, sha256=pinned)  # main holds the second weights
    message = str(info.value)
    for part in (REPO, "model.safetensors", pinned[:12], actual[:12], "sha256 mismatch"):
        assert part in message


@pytest.mark.parametrize(
    ("repo_id", "revision", "filename", "fragments"),
    [
        ("acme/missing", None, "model.safetensors", ["'acme/missing'", "not found"]),
        (REPO, "v9", "model.safetensors", ["revision 'v9'", "not found", REPO]),
        (REPO, "f" * 40, "model.safetensors", ["revision '" + "f" * 40 + "'", "not found"]),
        (REPO, None, "weights.bin", ["'weights.bin'", "not found", REPO]),
    ],
)
def test_hub_lookup_failures_are_one_line(
    hub: MockHub,
    two_revisions: tuple[str, str],
    tmp_path: Path,
    repo_id: str,
    revision: str | None,
    filename: str,
    fragments: list[str],
) -> None:
    with pytest.raises(ResolveError) as info:
        download_model_file(
            repo_id, filename, revision=revision, endpoint=hub.url, cache_dir=tmp_path, token=False
        )
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_gated_repo_says_to_accept_terms(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    hub.gated.add(REPO)
    with pytest.raises(ResolveError, match="gated.*HF_TOKEN"):
        _download(hub, tmp_path)


def test_private_repo_needs_the_token(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    hub.tokens[REPO] = "hf_secret"
    with pytest.raises(ResolveError, match="private"):
        download_model_file(REPO, endpoint=hub.url, cache_dir=tmp_path, token=False)
    path = download_model_file(REPO, endpoint=hub.url, cache_dir=tmp_path, token="hf_secret")
    assert path.read_bytes() == _weights(2.0)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"repo_id": "no-slash"}, "exactly 'ORG/NAME'"),
        ({"repo_id": REPO, "revision": ""}, "revision after '@' is empty"),
        ({"repo_id": REPO, "sha256": "abc"}, "64 hex digits"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    hub: MockHub, tmp_path: Path, kwargs: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ResolveError, match=fragment):
        download_model_file(endpoint=hub.url, cache_dir=tmp_path, token=False, **kwargs)
    assert hub.requests == []


# ---------------------------------------------------------------------------------------------- mock Hub itself


def test_mock_hub_serves_byte_ranges_and_api_listings(hub: MockHub, two_revisions: tuple[str, str]) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.utils import get_session

    first, _ = two_revisions
    session = get_session()
    part = session.get(f"{hub.url}/{REPO}/resolve/{first}/model.safetensors", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206
    assert part.content == _weights(1.0)[2:6]

    api = HfApi(endpoint=hub.url, token=False)
    info = api.model_info(REPO, revision=first)
    assert info.sha == first
    assert sorted(s.rfilename for s in info.siblings) == ["config.json", "model.safetensors"]
    listed = {entry.path: entry.size for entry in api.list_repo_tree(REPO, revision="main")}
    assert listed == {"config.json": len(b'{"method": "cyclegan"}'), "model.safetensors": len(_weights(2.0))}
    assert hub.paths_requested("GET")[-1].startswith(f"/api/models/{REPO}/tree/main")


# ---------------------------------------------------------------------------------------------- offline


def _run_offline(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter with HF_HUB_OFFLINE=1 (read by huggingface_hub at import)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.update(env_extra, HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


# Prints the local path, or the one-line error on stderr with the error's exit code, like the CLI does.
_OFFLINE_SCRIPT = """
import sys
from i2icli.errors import I2IError
from i2icli.hub import download_model_file
try:
    print(download_model_file({repo!r}, revision={revision!r}, cache_dir={cache!r}, sha256={sha256!r}))
except I2IError as err:
    print(err, file=sys.stderr)
    sys.exit(err.exit_code)
"""


def _offline_script(
    repo: str, *, revision: str | None = None, cache: str | None = None, sha256: str | None = None
) -> str:
    return _OFFLINE_SCRIPT.format(repo=repo, revision=revision, cache=cache, sha256=sha256)


def test_offline_after_download_uses_the_cache(hub: MockHub, two_revisions: tuple[str, str], tmp_path: Path) -> None:
    first, _ = two_revisions
    cache = tmp_path / "cache"
    _download(hub, cache, revision=first)
    _download(hub, cache)
    hub.stop()

    pinned = _run_offline(_offline_script(REPO, revision=first, cache=str(cache)), {"HF_HOME": str(tmp_path)})
    assert pinned.returncode == 0, pinned.stderr
    assert Path(pinned.stdout.strip()).read_bytes() == _weights(1.0)
    latest = _run_offline(_offline_script(REPO, cache=str(cache)), {"HF_HOME": str(tmp_path)})
    assert latest.returncode == 0, latest.stderr
    assert Path(latest.stdout.strip()).read_bytes() == _weights(2.0)


def test_offline_without_cache_says_so(tmp_path: Path) -> None:
    result = _run_offline(_offline_script("acme/never-downloaded", cache=str(tmp_path)), {"HF_HOME": str(tmp_path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'acme/never-downloaded'" in lines[0]
    assert "not in the local cache and HF_HUB_OFFLINE=1 is set" in lines[0]


def test_hand_made_cache_works_offline_without_any_server(tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = tmp_path / "hub" / "models--acme--handmade"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(_weights(3.0))
    digest = hashlib.sha256(_weights(3.0)).hexdigest()

    # No cache_dir argument: HF_HUB_CACHE must be honoured, and the sha256 pin checked on the cached file.
    result = _run_offline(_offline_script("acme/handmade", sha256=digest), {"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert result.returncode == 0, result.stderr
    found = Path(result.stdout.strip())
    assert found == snapshot / "model.safetensors"
    assert found.read_bytes() == _weights(3.0)


def test_unreachable_hub_without_cache(tmp_path: Path) -> None:
    # Fast: i2i probes the endpoint before huggingface_hub would retry a refused connection with backoff.
    with MockHub() as server:
        url = server.url
    with pytest.raises(ResolveError, match="cannot be reached .*Connection refused.* not in the local cache"):
        download_model_file(REPO, endpoint=url, cache_dir=tmp_path, token=False)


@pytest.mark.parametrize(
    ("offline", "fragment"),
    [(True, "HF_HUB_OFFLINE=1 is set"), (False, "could not be reached (or is not a Hub)")],
)
def test_missing_local_entry_is_explained_by_mode(offline: bool, fragment: str) -> None:
    # What hf_hub_download raises when neither the Hub nor the cache has the file (fast stand-in for the slow test).
    from huggingface_hub.errors import LocalEntryNotFoundError

    explained = _explain_hub_error(
        LocalEntryNotFoundError("cannot find the requested files"),
        repo_id=REPO,
        filename="model.safetensors",
        revision=None,
        endpoint="http://hub.invalid",
        offline=offline,
    )
    assert isinstance(explained, ResolveError)
    assert fragment in str(explained)
    assert "'main'" in str(explained)


# ---------------------------------------------------------------------------------------------- misc


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_push_model_checks_its_arguments_before_uploading(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(_weights(1.0))
    with pytest.raises(ResolveError, match="missing config.json"):
        push_model(tmp_path, REPO)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ResolveError, match="'acme'"):
        push_model(tmp_path, "acme")

"""Google Drive releases in one command (``i2icli.drive`` through gdown), served from 127.0.0.1.

gdown's transport is replaced: every session it opens gets an adapter that sends requests for
drive.google.com / drive.usercontent.google.com to a local fake Drive, which answers like Drive does
for a large file: ``/uc?id=ID`` -> an HTML confirm page with a download form; the form's URL -> the
bytes, with Content-Disposition and Range support; or Drive's quota page. Nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from conftest import FIXTURES, write_rgb
from requests.adapters import HTTPAdapter
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.drive import partial_files
from i2icli.registry import PRETRAINED
from i2icli.sources import LOCK_NAME, downloads_dir, model_dir

runner = CliRunner()
S2W = "munit-summer2winter"
S2W_ID = "17gYCHgWD9xM_EFqid1S3b3MXBjIvElAI"
LICENCE = "NVIDIA Source Code License-NC"
# Drive serves its pages minified: the whole form is on one line (gdown reads the page line by line).
CONFIRM = (
    "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>\n"
    '<p>Google Drive can\'t scan this file for viruses.</p><form id="download-form" '
    'action="https://drive.usercontent.google.com/download" method="get"><input type="submit" value="Download anyway"/>'
    '<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">'
    '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0b5e6f1a-test"></form>\n'
    "</body></html>\n"
)
QUOTA = """<!DOCTYPE html><html><body><p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try accessing the file again later.</p>
</body></html>
"""


class FakeDrive:
    """Files by Drive id; ``log``: (path, query id, Range header); ``cut``: bytes of the next body
    before the connection drops; ``quota``: answer every file with the quota page."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.log, self.cut, self.quota = dict(files), [], None, False
        drive = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                file_id = query.get("id", [""])[0]
                drive.log.append((url.path, file_id, self.headers.get("Range")))
                data = drive.files.get(file_id)
                if url.path == "/uc" and (data is not None or drive.quota):
                    self._page(QUOTA if drive.quota else CONFIRM.format(id=file_id))
                elif url.path == "/download" and data is not None and query.get("confirm") == ["t"]:
                    self._file(file_id, data)
                else:
                    self.send_error(404)

            def _page(self, html: str) -> None:
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, file_id: str, data: bytes) -> None:
                rng = self.headers.get("Range")
                start = int(rng.split("=")[1].rstrip("-")) if rng else 0
                body = data[start:]
                self.send_response(206 if rng else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Disposition", f'attachment; filename="{file_id}.pt"')
                self.send_header("Content-Length", str(len(body)))
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                cut, drive.cut = drive.cut, None
                self.wfile.write(body if cut is None else body[:cut])  # a cut: the connection drops early
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True)

    def paths(self) -> list[str]:
        return [p for p, _, _ in self.log]


class ToLocal(HTTPAdapter):
    """Sends every https request for a Google host to the fake Drive (``None``: refuses to connect)."""

    def __init__(self, base: str | None) -> None:
        super().__init__()
        self.base = base

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def, override]
        if self.base is None:
            raise requests.exceptions.ConnectionError("Failed to resolve 'drive.google.com'")
        parts = urllib.parse.urlsplit(request.url)
        assert parts.hostname in ("drive.google.com", "drive.usercontent.google.com", "docs.google.com"), request.url
        request.url = self.base + parts.path + ("?" + parts.query if parts.query else "")
        return super().send(request, **kwargs)


def route_gdown(monkeypatch: pytest.MonkeyPatch, base: str | None) -> None:
    import gdown  # noqa: F401  (loads gdown.download, the module; the package re-exports a function of that name)

    def session() -> requests.Session:
        sess = requests.Session()
        sess.mount("https://", ToLocal(base))
        return sess

    monkeypatch.setattr(sys.modules["gdown.download"].requests, "session", session)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("I2I_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def drive(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrive]:
    fake = FakeDrive({S2W_ID: (FIXTURES / "imaginaire" / "munit_d3.pt").read_bytes()})
    fake.thread.start()
    route_gdown(monkeypatch, fake.url)
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


def translate(tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    image = tmp_path / "img.jpg"
    if not image.exists():
        write_rgb(tmp_path / "img.png", (48, 32)).rename(image)
    return runner.invoke(app, ["translate", "--model", S2W, str(image), "-o", str(tmp_path / "out"), "--device", "cpu", *extra])


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_the_users_line_downloads_through_the_confirm_page_converts_caches_and_translates(drive: FakeDrive, tmp_path: Path) -> None:
    result = translate(tmp_path)
    assert result.exit_code == 0, result.output
    assert drive.paths() == ["/uc", "/download"]  # the confirm page, then the file
    assert result.stderr.count(LICENCE) == 1 and "non-commercial" in result.stderr
    assert (tmp_path / "out" / "img.png").is_file()
    config = json.loads((model_dir(S2W) / "config.json").read_text())
    assert config["arch"]["variant"] == "imaginaire" and config["training"]["preprocess"]["load_size"] == 1024
    lock = json.loads((downloads_dir() / LOCK_NAME).read_text())
    digest = hashlib.sha256((FIXTURES / "imaginaire" / "munit_d3.pt").read_bytes()).hexdigest()
    assert digest in json.dumps(lock)  # recorded on the first download
    assert not (downloads_dir() / PRETRAINED[S2W].release.filename).exists()  # converted, then deleted
    again = translate(tmp_path, "--overwrite")
    assert again.exit_code == 0 and len(drive.log) == 2 and LICENCE not in again.stderr  # cached: no request


def test_an_interrupted_download_resumes_and_the_sha256_is_enforced_later(drive: FakeDrive, tmp_path: Path) -> None:
    total = len(drive.files[S2W_ID])
    drive.cut = total - 20_000  # past gdown's first 512 KiB chunk, so part of the file reaches the disk
    first = translate(tmp_path)
    assert first.exit_code == 2 and len(lines(first.stderr)) == 2, first.output  # licence notice + the error
    assert S2W in first.stderr and "run the same command again to resume" in first.stderr
    part = partial_files(PRETRAINED[S2W].release, downloads_dir())
    assert len(part) == 1
    kept = part[0].stat().st_size
    assert 0 < kept < total
    second = translate(tmp_path)
    assert second.exit_code == 0, second.output
    assert ("/download", S2W_ID, f"bytes={kept}-") in drive.log  # continued, not restarted
    assert LICENCE not in second.stderr  # shown once, before the first download
    # The upstream file changes: the recorded sha256 refuses it, in one line, keeping the bytes.
    assert runner.invoke(app, ["models", "rm", S2W]).exit_code == 0
    drive.files[S2W_ID] = (FIXTURES / "imaginaire" / "munit_d2.pt").read_bytes()
    changed = translate(tmp_path, "--overwrite")
    assert changed.exit_code != 0 and "sha256" in changed.stderr and "Traceback" not in changed.output
    assert len([ln for ln in lines(changed.stderr) if ln.startswith("error:")]) == 1
    assert (downloads_dir() / (PRETRAINED[S2W].release.filename + ".bad")).is_file()


def test_models_rm_removes_a_partial_drive_download(drive: FakeDrive, tmp_path: Path) -> None:
    drive.cut = len(drive.files[S2W_ID]) - 20_000
    assert translate(tmp_path).exit_code == 2
    (part,) = partial_files(PRETRAINED[S2W].release, downloads_dir())
    removed = runner.invoke(app, ["models", "rm", S2W])
    assert removed.exit_code == 0 and part.name in removed.output and not part.exists()


def test_quota_page_no_network_and_offline_are_one_line_exit_2(drive: FakeDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drive.quota = True
    quota = translate(tmp_path)
    assert quota.exit_code == 2 and "Traceback" not in quota.output
    error = [ln for ln in lines(quota.stderr) if ln.startswith("error:")]
    assert len(error) == 1 and S2W in error[0] and "try again later" in error[0] and "i2i convert --model" in error[0]

    route_gdown(monkeypatch, None)
    down = translate(tmp_path)
    error = [ln for ln in lines(down.stderr) if ln.startswith("error:")]
    assert down.exit_code == 2 and len(error) == 1 and S2W in error[0] and "check the network" in error[0]

    before = len(drive.log)
    offline = translate(tmp_path, "--offline")
    assert offline.exit_code == 2 and len(lines(offline.stderr)) == 1 and "offline mode is on" in offline.stderr
    assert len(drive.log) == before


def test_missing_gdown_gives_the_install_hint_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_gdown(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name == "gdown" or name.startswith("gdown."):
            raise ImportError("No module named 'gdown'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gdown)
    result = translate(tmp_path)
    assert result.exit_code == 2 and len(lines(result.stderr)) == 1, result.output
    assert "pip install 'i2icli[drive]'" in result.stderr  # brackets survive the console


def test_the_2018_drive_folder_release_takes_the_same_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gdown

    file_id = "1edges2shoesFileIdInsideTheFolder0"
    fake = FakeDrive({file_id: (FIXTURES / "munit" / "munit_gen_tiny.pt").read_bytes()})
    fake.thread.start()
    route_gdown(monkeypatch, fake.url)
    listed: list[str] = []

    def listing(**kwargs):  # type: ignore[no-untyped-def]
        listed.append(kwargs["id"])
        item = sys.modules["gdown.download"].GoogleDriveFileToDownload
        return [item(id=file_id, path="edges2shoes.pt", local_path="edges2shoes.pt")]

    monkeypatch.setattr(gdown, "download_folder", listing)
    image = write_rgb(tmp_path / "edge.png", (32, 32))
    try:
        result = runner.invoke(app, ["translate", "--model", "edges2shoes", str(image), "-o", str(tmp_path / "o"), "--device", "cpu"])
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()
    assert result.exit_code == 0, result.output
    assert listed == [PRETRAINED["munit-edges2shoes"].release.drive_folder]
    assert fake.paths() == ["/uc", "/download"] and "CC BY-NC-SA 4.0" in result.stderr


def test_prefilled_cache_translate_sample_exemplar_and_models_info(tmp_path: Path) -> None:
    installed = runner.invoke(app, ["convert", "--model", S2W, str(FIXTURES / "imaginaire" / "munit_d3.pt")])
    assert installed.exit_code == 0, installed.output
    image = write_rgb(tmp_path / "img.png", (40, 24))
    done = runner.invoke(app, ["translate", "--model", "summer2winter_hd", str(image), "-o", str(tmp_path / "w"), "--device", "cpu"])
    assert done.exit_code == 0 and (tmp_path / "w" / "img.png").is_file(), done.output
    assert "training scale (short side 1024 px)" in done.stderr
    for argv in (
        # at 64 px: eight styles of a 1024 px image take long on a tiny net for no extra coverage
        ["sample", str(image), "--model", S2W, "--n", "8", "-o", str(tmp_path / "s"), "--seed", "3", "--size", "64"],
        ["exemplar", str(image), "--style", str(image), "--model", S2W, "-o", str(tmp_path / "e"), "--size", "64"],
    ):
        result = runner.invoke(app, [*argv, "--device", "cpu"])
        assert result.exit_code == 0, (argv, result.output)
    assert len(list((tmp_path / "s").glob("img_s*.png"))) == 8
    listed = {m["name"]: m for m in json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)}
    for name in (S2W, "munit-dog2cat", "munit-edges2shoes-hd", "unit-winter2summer"):
        assert LICENCE in json.dumps(listed[name])
    info = runner.invoke(app, ["models", "info", S2W])
    assert info.exit_code == 0 and LICENCE in info.stdout and "17gYCHgWD9xM_EFqid1S3b3MXBjIvElAI" in info.stdout


def test_progress_bar_on_request(drive: FakeDrive, capfd: pytest.CaptureFixture[str]) -> None:
    from i2icli.sources import fetch_release

    path = fetch_release(PRETRAINED[S2W], progress=True)
    assert path.is_file()
    err = capfd.readouterr().err
    size = len(drive.files[S2W_ID])
    assert "100%" in err and f"{size / 1000:.0f}k" in err.replace(" ", "").lower()  # tqdm's bar, total in bytes

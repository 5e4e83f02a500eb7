"""Concurrency: two ``i2i translate`` processes writing into one folder never leave a corrupt or
partial file; readers never see one either. (Two ``train`` runs on one run folder: see
test_rel_training.py, refused through a lock.)"""

from __future__ import annotations

import io
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
from conftest import make_tiny_cyclegan, save_tiny
from faults import env, i2i, leftovers, rgb_array
from PIL import Image
from typer.testing import CliRunner

from i2icli.cli.app import app
from i2icli.imageio import write_image

runner = CliRunner()


def test_two_translate_processes_into_one_folder_leave_only_whole_files(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for k in range(30):
        Image.fromarray(rgb_array(64, 64, k)).save(src / f"{k:02d}.png")
    models = [save_tiny(tmp_path / f"m{i}.safetensors", make_tiny_cyclegan(seed=i)) for i in range(2)]
    refs = []
    for i, model in enumerate(models):
        ref = tmp_path / f"ref{i}"
        result = runner.invoke(app, ["translate", str(src), "-m", str(model), "-o", str(ref)])
        assert result.exit_code == 0, result.output
        refs.append(ref)

    out = tmp_path / "out"
    procs = [
        subprocess.Popen(i2i("translate", src, "-m", model, "-o", out, "--overwrite", "--device", "cpu"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())  # fmt: skip
        for model in models
    ]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in stdout + stderr, stderr
    assert sorted(os.listdir(out)) == sorted(os.listdir(refs[0]))
    assert not leftovers(out)
    for name in os.listdir(out):
        data = (out / name).read_bytes()
        matches = [i for i, ref in enumerate(refs) if (ref / name).read_bytes() == data]
        assert len(matches) == 1, name  # exactly one process's whole output, never a mix
    # The two models' outputs differ, so the check above could tell a mixed file from a whole one.
    assert any((refs[0] / n).read_bytes() != (refs[1] / n).read_bytes() for n in os.listdir(out))


def test_concurrent_writers_and_a_reader_of_one_path_never_see_a_partial_image(tmp_path: Path) -> None:
    path = tmp_path / "shared.png"
    images = [Image.fromarray(rgb_array(96, 96, seed)) for seed in (1, 2)]
    wanted = [np.asarray(img) for img in images]
    write_image(path, images[0])
    stop = threading.Event()
    bad: list[str] = []
    reads = [0]

    def writer(img: Image.Image) -> None:
        for _ in range(60):
            write_image(path, img)

    def reader() -> None:
        while not stop.is_set():
            data = path.read_bytes()
            try:
                got = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            except Exception as e:  # noqa: BLE001 - any failure to decode is the bug this test looks for
                bad.append(repr(e))
                continue
            if not any(np.array_equal(got, w) for w in wanted):
                bad.append("a mixture of two images")
            reads[0] += 1

    threads = [threading.Thread(target=writer, args=(img,)) for img in images]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    assert bad == [] and reads[0] > 10
    assert os.listdir(tmp_path) == ["shared.png"]

"""The streaming pipeline: order of events, bad inputs, bounded memory, equal-size batches, names kept."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest
from conftest import write_rgb

from i2icli.api import load_model
from i2icli.errors import InputError
from i2icli.imageio import ImageWriteError, read_image, to_tensor
from i2icli.inference import translate_tensors
from i2icli.listing import list_images
from i2icli.pipeline import LOOKAHEAD, Done, Failed, Job, Skipped, stream, translate_files


def _jittery_decode(bad: set[int]):  # type: ignore[no-untyped-def]
    rng = random.Random(0)
    delays = [rng.random() * 0.004 for _ in range(1000)]

    def decode(job: int) -> int:
        time.sleep(delays[job])  # decode threads finish out of order
        if job in bad:
            raise InputError(f"job{job}.png: not an image")
        return job

    return decode


def test_events_in_input_order_and_bad_inputs_cost_only_themselves() -> None:
    bad = {3, 17, 18}
    written: list[int] = []

    def write(job: int, item: int, result: int) -> int:
        if job == 25:
            raise ImageWriteError("out/job25.png: cannot write (disk full)")
        written.append(job)
        return result

    events = list(stream(range(40), _jittery_decode(bad), lambda items: [i * 10 for i in items], write, decode_threads=4))
    assert sorted(e.index for e in events) == list(range(40))  # one event per job, none lost
    failed = {e.index: str(e.error) for e in events if isinstance(e, Failed)}
    assert failed == {3: "job3.png: not an image", 17: "job17.png: not an image", 18: "job18.png: not an image",
                      25: "out/job25.png: cannot write (disk full)"}  # fmt: skip
    done = [e for e in events if isinstance(e, Done)]
    assert [e.index for e in done] == sorted(set(range(40)) - set(failed))  # input order (batches of 1)
    assert all(e.value == e.job * 10 for e in done) and written == [e.job for e in done]


def test_memory_stays_bounded_on_many_files() -> None:
    """100k lazily generated jobs: the reader never runs more than a bounded number ahead of the writer."""
    lock = threading.Lock()
    state = {"read": 0, "written": 0, "ahead": 0}

    def jobs():  # type: ignore[no-untyped-def]
        for i in range(100_000):
            with lock:
                state["read"] += 1
                state["ahead"] = max(state["ahead"], state["read"] - state["written"])
            yield i

    def write(job: int, item: int, result: int) -> None:
        with lock:
            state["written"] += 1

    batch = 4
    count = sum(1 for _ in stream(jobs(), lambda j: j, lambda items: items, write, batch_size=batch, decode_threads=2))
    assert count == 100_000
    # compute queue + lookahead buckets + write queue + decode window + one batch in flight
    assert state["ahead"] <= batch * LOOKAHEAD * 2 + 2 * batch + 2 * 2 + 2 * batch


def test_equal_sizes_share_batches() -> None:
    sizes = [(8, 8), (12, 8)] * 10  # alternating sizes: consecutive grouping alone would give batches of 1
    batches: list[list[tuple[int, int]]] = []

    def compute(items: list[tuple[int, int]]) -> list[int]:
        batches.append(items)
        return [0] * len(items)

    events = list(stream(range(20), lambda j: sizes[j], compute, lambda j, d, r: None, batch_size=4, batch_key=lambda d: d))
    assert len(events) == 20 and all(isinstance(e, Done) for e in events)
    assert all(len(set(b)) == 1 for b in batches)  # one size per batch
    assert sorted(len(b) for b in batches) == [2, 2, 4, 4, 4, 4]  # full batches but the last of each size


def test_a_bug_in_a_stage_is_raised_not_swallowed() -> None:
    def write(job: int, item: int, result: int) -> None:
        raise RuntimeError("bug in write")

    with pytest.raises(RuntimeError, match="bug in write"):
        list(stream(range(5), lambda j: j, lambda items: items, write))


def test_translate_files_keeps_names_and_subfolders(tiny_model_file: Path, tmp_path: Path) -> None:
    src = tmp_path / "in"
    for rel, size in [("a.png", (20, 16)), ("sub/b.jpg", (20, 16)), ("sub/deeper/c.png", (13, 9)), ("d.png", (20, 16))]:
        write_rgb(src / rel, size, seed=len(rel))
    (src / "sub" / "broken.png").write_bytes(b"not an image")
    model = load_model(str(tiny_model_file), device="cpu")
    files = list_images([str(src)], recursive=True)
    jobs = [Job(path, rel, tmp_path / "out" / rel.with_suffix(".png")) for path, rel in files]
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "d.png").write_bytes(b"keep me")
    events = list(translate_files(model, "a2b", jobs, batch_size=2, skip_existing=True))
    by_name = {e.job.rel.as_posix(): e for e in events}
    assert isinstance(by_name["sub/broken.png"], Failed) and "broken.png" in str(by_name["sub/broken.png"].error)
    assert isinstance(by_name["d.png"], Skipped) and (tmp_path / "out" / "d.png").read_bytes() == b"keep me"
    for rel in ("a.png", "sub/b.jpg", "sub/deeper/c.png"):
        event = by_name[rel]
        assert isinstance(event, Done)
        out = tmp_path / "out" / Path(rel).with_suffix(".png")
        x = to_tensor(read_image(src / rel).image)
        (expected,) = translate_tensors(model, [x], "a2b")
        got = to_tensor(read_image(out).image)
        assert [w.size for w in event.value.written] == [(x.shape[2], x.shape[1])] and event.value.written[0].error is None
        assert (got - expected.clamp(-1, 1)).abs().max() <= 1 / 127.5 + 1e-6  # one 8-bit level


def test_multimodal_commands_still_report_bad_inputs(tmp_path: Path) -> None:
    """sample-styles runs through the pipeline: a bad input is one error line, the rest are written."""
    from typer.testing import CliRunner

    from i2icli.cli.app import app

    write_rgb(tmp_path / "in" / "good.png", (28, 28))
    (tmp_path / "in" / "bad.png").write_bytes(b"nope")
    result = CliRunner().invoke(app, ["sample-styles", str(tmp_path / "in"), "-n", "2", "-o", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        line for line in result.stderr.splitlines() if "bad.png" in line
    ]
    assert (tmp_path / "out" / "good_s0.png").is_file() and (tmp_path / "out" / "grid.png").is_file()

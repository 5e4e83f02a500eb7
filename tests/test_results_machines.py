"""Every committed benchmark block of benchmarks/RESULTS.md names its machine: the CPU, whether it
computes bf16 natively (or that the record predates that field), the torch threads and the command."""

from __future__ import annotations

import pytest
from conftest import REPO
from machine_info import describe
from results_md import read_block

RESULTS = REPO / "benchmarks" / "RESULTS.md"


def test_describe_says_native_bf16_or_that_it_was_not_recorded() -> None:
    full = {"cpu": "AMD EPYC", "cores": 2, "native_bf16": True, "threads": 1, "torch": "2.14.1", "python": "3.11.7"}
    assert describe(full) == "AMD EPYC, 2 cores, native bf16, torch threads 1, torch 2.14.1, Python 3.11.7"
    assert "no native bf16" in describe(full | {"native_bf16": False})
    older = {"cpu": "AMD EPYC", "threads": 1, "torch": "2.14.1"}  # a record from before the field existed
    assert describe(older) == "AMD EPYC, native bf16 not recorded, torch threads 1, torch 2.14.1"


@pytest.mark.parametrize(
    "block",
    ["quality", "geometry", "speed", "transgaga-spike", "adaptation", "threads", "scale", "hd", "judge-ceiling", "curves"],
)
def test_committed_block_names_cpu_bf16_threads_and_command(block: str) -> None:
    text = read_block(RESULTS, block)
    assert text is not None, f"RESULTS.md has no {block} block"
    assert "AMD EPYC" in text or "Intel" in text  # the lscpu model name
    assert "bf16" in text  # native bf16, no native bf16, not recorded, or the CPU flags
    assert "thread" in text
    assert "python benchmarks/" in text  # the command that made it

"""How a training run folder is recognised (torch-free): ``run.json`` marks it (``i2icli.runs.run``
writes it), and its training checkpoints are ``checkpoints/step_*.pt``."""

from __future__ import annotations

from pathlib import Path

RUN_FILE = "run.json"


def training_run_of(path: Path) -> Path | None:
    """The run folder when ``path`` is a training checkpoint ``RUN/checkpoints/step_*.pt``."""
    run = path.parent.parent
    if path.parent.name == "checkpoints" and path.name.startswith("step_") and (run / RUN_FILE).is_file():
        return run
    return None


def export_command(path: Path) -> str | None:
    """When ``path`` is a training checkpoint, the command that exports its model (quoted for a
    message: `i2i export-checkpoint RUN --step N`); None otherwise."""
    run = training_run_of(path)
    if run is None:
        return None
    step = int(path.stem.split("_")[-1])
    return f"`i2i export-checkpoint {run} --step {step}`"

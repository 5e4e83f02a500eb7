"""The entry point every benchmark script (and the make scripts through them) shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


def run_script(main: Callable[[], int | None]) -> NoReturn:
    """``sys.exit(main())``, with an ``I2IError`` (for example a run folder that holds another
    recipe's run) shown as one ``error:`` line on stderr and its exit code, without a traceback."""
    from i2icli.errors import I2IError

    try:
        code = main()
    except I2IError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(code)


def seed_list(text: str) -> list[int]:
    """``--seeds`` as argparse's ``type``: comma-separated integers >= 0 (else a usage error, exit 2)."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated integers, e.g. 0,1,2") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give integers >= 0, e.g. 0,1,2")
    return seeds

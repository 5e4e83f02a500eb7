"""A checkpoint file -> the model of the method it names, weights loaded strictly."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from i2icli.checkpoint import ModelConfig, load_state_strict, model_file, read_config, read_tensors
from i2icli.config import ConfigError, from_dict
from i2icli.errors import CheckpointError
from i2icli.methods import load_method, method_info


def load_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelConfig]:
    """Build the model a checkpoint describes and load its weights strictly (fp32, eval mode)."""
    file = model_file(Path(path))
    config = read_config(file)
    method_info(config.method)  # an unknown method: one line naming the known ones
    impl = load_method(config.method)
    try:
        arch = from_dict(impl.arch_cls, config.arch)
    except ConfigError as e:
        raise CheckpointError(f"{file}: arch: {e}") from None
    model = impl.build_model(arch)
    tensors, _ = read_tensors(file)
    load_state_strict(model, tensors, file)
    return model.to(device).eval(), config

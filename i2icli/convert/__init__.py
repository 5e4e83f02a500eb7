"""Official checkpoints -> i2i checkpoints: one small filter module per codebase."""

"""The ``i2i`` command line: ``app`` assembles one small module per command."""

"""``python -m i2icli`` is the ``i2i`` command."""

from i2icli.cli.app import main

main()

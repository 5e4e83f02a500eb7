"""``python -m i2icli`` is the ``i2i`` command."""

from i2icli.cli.app import main

if __name__ == "__main__":  # not when a spawned training rank imports this module (``i2i train --procs``)
    main()

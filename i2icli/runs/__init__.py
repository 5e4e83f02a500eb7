"""A training run: what binds a method (looked up in the method table) to the one training loop.

``spec`` (the run's options and ``run.json``), ``resume`` (what a ``--resume`` may change) and ``run``
(run folders, the lock, export). They sit above ``i2icli.methods``; ``i2icli.train`` (the loop, its
state, the batch feed) stays below every method and knows none (an import-linter contract).
"""

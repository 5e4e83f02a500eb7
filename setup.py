"""Packaging hook; all metadata lives in pyproject.toml.

The embedded models stay in the repository's top-level ``weights/`` folder (product layout) and
ship inside the package as ``i2icli/_weights/``: a ``package-dir`` mapping cannot be combined with
pyproject's ``packages.find``, so the package list is computed here. ``weights/`` also holds the
scripts that make those models; they are repository tools, not package code, and stay out.
"""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

WEIGHTS_PACKAGE = "i2icli._weights"


class BuildPy(build_py):
    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:
        if package == WEIGHTS_PACKAGE:
            return []  # weights/make_*.py
        return super().find_package_modules(package, package_dir)

    def check_package(self, package: str, package_dir: str) -> str | None:
        if package == WEIGHTS_PACKAGE:
            return None  # a data folder: no __init__.py, and no warning about it
        return super().check_package(package, package_dir)


setup(
    packages=[*find_packages(include=["i2icli", "i2icli.*"]), WEIGHTS_PACKAGE],
    package_dir={WEIGHTS_PACKAGE: "weights"},
    cmdclass={"build_py": BuildPy},
)

"""Builds the Rust library with cargo and installs libtensorbridge.so inside the package, so
``pip install ./python`` gives a self-contained, compiler-free-at-import package."""
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = Path(__file__).resolve().parent.parent


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
        subprocess.run([cargo, "build", "--release", "--manifest-path", str(ROOT / "Cargo.toml")], check=True)
        target = Path(self.build_lib) / "tensorbridge"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "target" / "release" / "libtensorbridge.so", target / "libtensorbridge.so")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: tag it for the platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithLibrary}, distclass=BinaryDistribution)

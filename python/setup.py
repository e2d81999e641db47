"""Packages libtensorbridge.so inside the Python package, so that the wheel installs and imports
with no Rust, no compiler and no build tree.

The library comes from ``$TENSORBRIDGE_LIBRARY`` when set (an already-built libtensorbridge.so: no
cargo run, the way scripts/test.sh builds the wheel); otherwise ``cargo build --release`` runs in
this checkout and the library is taken from cargo's target directory as cargo resolves it
(scripts/cargo-target-dir.sh: ``$CARGO_TARGET_DIR``, a .cargo/config.toml, else target/).

The optional compiled fast path ``tensorbridge._native`` (``tensorbridge/_native.c``, the stable
ABI) is built where a C compiler and Python's headers exist; where they do not, the build goes on
without it and the package runs on ctypes alone. The wheel is tagged ``cp39-abi3-<platform>``:
the extension (when built) needs CPython >= 3.9's stable ABI, and the library is native. On Linux the platform is
``manylinux_<X>_<Y>_<arch>``, X.Y being the newest glibc symbol version the library needs (read
from the library itself), so pip installs the wheel exactly where the library can load; build on an
older glibc for a wider tag. ``--plat-name`` overrides it.
"""
import functools
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1: the wheel package provides it
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:  # neither: only commands that make no wheel (build_ext --inplace) work
        bdist_wheel = object

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = "libtensorbridge.so"


@functools.lru_cache(maxsize=None)
def built_library():
    """The libtensorbridge.so to package: ``$TENSORBRIDGE_LIBRARY``, else a fresh cargo build."""
    explicit = os.environ.get("TENSORBRIDGE_LIBRARY")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            sys.exit(f"setup.py: TENSORBRIDGE_LIBRARY={explicit} is not a file")
        return path
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    subprocess.run([cargo, "build", "--release", "--manifest-path", str(ROOT / "Cargo.toml")], check=True)
    target_dir = subprocess.run([str(ROOT / "scripts" / "cargo-target-dir.sh")], check=True,
                                capture_output=True, text=True).stdout.strip()
    return Path(target_dir) / "release" / LIBRARY


def glibc_platform_tag(library):
    """``manylinux_X_Y_<arch>`` for the newest GLIBC_X.Y symbol version ``library`` needs, or None
    when it names none (not a glibc build). Version needs are NUL-terminated strings in the
    library's dynamic string table."""
    versions = re.findall(rb"(?<=\0)GLIBC_(\d+)\.(\d+)(?:\.\d+)?(?=\0)", library.read_bytes())
    needed = {(int(major), int(minor)) for major, minor in versions}
    if not needed:
        return None
    major, minor = max(needed)
    return f"manylinux_{major}_{minor}_{platform.machine()}"


class BuildWithLibrary(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "tensorbridge"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built_library(), target / LIBRARY)  # the file itself, never a symlink


class PlatformWheel(bdist_wheel):
    """cp39-abi3-<platform>: the stable-ABI fast path (optional) and one native library."""

    def get_tag(self):
        if self.plat_name_supplied:
            plat = self.plat_name
        elif sys.platform.startswith("linux"):
            plat = glibc_platform_tag(built_library()) or sysconfig.get_platform()
        else:
            plat = sysconfig.get_platform()
        return "cp39", "abi3", plat.replace("-", "_").replace(".", "_")


class BinaryDistribution(Distribution):
    """The wheel holds a native library: platlib, not purelib."""

    def has_ext_modules(self):
        return True


NATIVE = Extension("tensorbridge._native", ["tensorbridge/_native.c"], py_limited_api=True,
                   include_dirs=[str(ROOT / "include")],
                   define_macros=[("Py_LIMITED_API", "0x03090000")], optional=True)

COMMANDS = {"build_py": BuildWithLibrary}
if bdist_wheel is not object:
    COMMANDS["bdist_wheel"] = PlatformWheel
setup(cmdclass=COMMANDS, distclass=BinaryDistribution, ext_modules=[NATIVE])

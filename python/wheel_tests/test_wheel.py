"""The wheel: ``pip wheel ./python`` from an already-built library gives a cp39-abi3-manylinux wheel
holding libtensorbridge.so and the compiled fast path (``_native.abi3.so``; this machine has a C
compiler and Python's headers) (no absolute RPATH, only manylinux-allowed dependencies), which installs
with ``pip install --no-index`` into a fresh virtual environment with no Rust on PATH and passes
the CPU tests of python/tests and mypy --strict there, importing the environment's copy.

The library comes from $TENSORBRIDGE_LIBRARY (scripts/test.sh passes the one it built), else from
cargo's target directory. NumPy and pytest come from the package index (or pip's cache)."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# manylinux policies allow these (and only these here) as dependencies of a packaged library.
MANYLINUX_LIBRARIES = {"libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
                       "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def _run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def _built_library():
    explicit = os.environ.get("TENSORBRIDGE_LIBRARY")
    if explicit:
        return Path(explicit)
    target = _run([str(REPO / "scripts" / "cargo-target-dir.sh")]).strip()
    return Path(target) / "release" / "libtensorbridge.so"


def _without_rust(env):
    """``env`` less the library override, PYTHONPATH and every Rust toolchain directory on PATH."""
    env = {k: v for k, v in env.items() if k not in ("TENSORBRIDGE_LIBRARY", "PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(d for d in env.get("PATH", "").split(os.pathsep)
                                  if d and ".cargo" not in d and "rustup" not in d)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    library = _built_library()
    assert library.is_file(), f"no built library at {library}: build it first (cargo build --release)"
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
          "-w", str(out), str(REPO / "python")], env={**os.environ, "TENSORBRIDGE_LIBRARY": str(library)})
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory):
    """A fresh virtual environment holding the wheel, NumPy and pytest; its python and env."""
    root = tmp_path_factory.mktemp("venv")
    env = _without_rust(os.environ)
    assert shutil.which("cargo", path=env["PATH"]) is None
    _run([sys.executable, "-m", "venv", str(root)], env=env)
    python = root / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "--no-index", str(wheel)], env=env)
    _run([*pip, "numpy", "pytest"], env=env)
    return python, env


def test_wheel_is_an_abi3_platform_wheel_with_the_library_the_fast_path_and_types(wheel):
    name = re.fullmatch(r"tensorbridge-[\w.]+-cp39-abi3-(manylinux_\d+_\d+_\w+)\.whl", wheel.name)
    assert name, f"{wheel.name}: want a cp39-abi3-manylinux_X_Y_<arch> wheel"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    assert {"tensorbridge/libtensorbridge.so", "tensorbridge/_native.abi3.so", "tensorbridge/py.typed",
            "tensorbridge/__init__.pyi"} <= names
    assert "Root-Is-Purelib: false" in meta and f"Tag: cp39-abi3-{name.group(1)}" in meta


def test_packaged_library_is_manylinux_compatible(wheel, tmp_path):
    with zipfile.ZipFile(wheel) as archive:
        library = Path(archive.extract("tensorbridge/libtensorbridge.so", tmp_path))
    dynamic = _run(["readelf", "-d", str(library)])
    paths = re.findall(r"\((?:RPATH|RUNPATH)\)\s+Library r(?:un)?path: \[(.*)\]", dynamic)
    absolute = [p for entry in paths for p in entry.split(":") if not p.startswith("$ORIGIN")]
    assert not absolute, f"absolute RPATH/RUNPATH entries: {absolute}"
    assert "Library soname: [libtensorbridge.so.0]" in dynamic
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.*)\]", dynamic))
    assert needed <= MANYLINUX_LIBRARIES, f"dependencies outside the manylinux policy: {needed - MANYLINUX_LIBRARIES}"
    # The tag's glibc is the newest glibc symbol version the library needs (readelf -V, not
    # setup.py's own reading of the file).
    versions = re.findall(r"Name: GLIBC_(\d+)\.(\d+)", _run(["readelf", "-V", str(library)]))
    newest = max((int(a), int(b)) for a, b in versions)
    assert wheel.name.endswith(f"-manylinux_{newest[0]}_{newest[1]}_{os.uname().machine}.whl")


def test_cpu_tests_pass_against_the_installed_wheel(venv, tmp_path):
    python, env = venv
    # The tests alone, away from the checkout's package, with the header test_abi.py compares with.
    tests = tmp_path / "python" / "tests"
    shutil.copytree(REPO / "python" / "tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "include").mkdir()
    shutil.copy(REPO / "include" / "tensorbridge.h", tmp_path / "include")
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests)],
                          cwd=tmp_path, env={**env, "TENSORBRIDGE_TEST_INSTALLED": "1"},
                          capture_output=True, text=True)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "test_installed.py" not in output, f"the installed-copy check did not run:\n{output}"
    print(output.strip().splitlines()[-1])


def test_installed_package_is_typed(venv, tmp_path):
    """mypy (from this environment) resolves tensorbridge in the venv: only a py.typed package
    is read there, so this fails if the marker or the stub is missing from the wheel."""
    python, env = venv
    example = shutil.copy(REPO / "python" / "tests" / "typing_usage.py", tmp_path)
    where = json.loads(_run([str(python), "-c", "import json, tensorbridge; print(json.dumps(tensorbridge.__file__))"],
                            cwd=tmp_path, env=env))
    assert where.endswith("site-packages/tensorbridge/__init__.py") and where.startswith(str(python.parent.parent))
    _run([sys.executable, "-m", "mypy", "--strict", "--python-executable", str(python), "--no-incremental",
          "--cache-dir", os.devnull, example], cwd=tmp_path, env={**env, "MYPYPATH": ""})

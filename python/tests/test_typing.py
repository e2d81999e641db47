"""The package's type information (py.typed, tensorbridge/__init__.pyi) is checked by mypy: the
stub and a small program using the public API under --strict, the whole package in mypy's default
mode, and stubtest, which fails when the stub and the runtime disagree (a name, a parameter, a
default). The installed wheel's types are checked by python/wheel_tests."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent

checkout_only = pytest.mark.skipif(
    os.environ.get("TENSORBRIDGE_TEST_INSTALLED") == "1",
    reason="testing an installed wheel: its types are checked by the wheel check, not from the checkout")


def _run(request, module, *arguments):
    pytest.importorskip("mypy", reason="not a GPU test: mypy is not installed (pip install mypy)")
    cache = ["--cache-dir", str(request.config.cache.mkdir("mypy"))] if module == "mypy" else []
    command = [sys.executable, "-m", module, *cache, *arguments]
    done = subprocess.run(command, cwd=PYTHON_DIR, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"


@checkout_only
def test_public_api_and_usage_example_pass_mypy_strict(request):
    _run(request, "mypy", "--strict", "tensorbridge/__init__.pyi", str(TESTS_DIR / "typing_usage.py"))


@checkout_only
def test_package_passes_mypy(request):
    _run(request, "mypy", "--config-file", "pyproject.toml", "tensorbridge")


@checkout_only
def test_stub_matches_runtime(request):
    _run(request, "mypy.stubtest", "--mypy-config-file", "pyproject.toml",
         "--allowlist", str(TESTS_DIR / "stubtest_allowlist.txt"), "tensorbridge")


def test_usage_example_runs(capsys):
    runpy.run_path(str(TESTS_DIR / "typing_usage.py"), run_name="__main__")
    assert "cpu:0 HWC" in capsys.readouterr().out

"""When the suite runs against an installed wheel (TENSORBRIDGE_TEST_INSTALLED=1, as the wheel
check in python/wheel_tests does): the package imported is the environment's, and the library
loaded is the copy inside it, not a build tree's or $TENSORBRIDGE_LIBRARY's."""
import os
import sysconfig
from pathlib import Path

import pytest

import tensorbridge
from tensorbridge import _lib

pytestmark = pytest.mark.skipif(os.environ.get("TENSORBRIDGE_TEST_INSTALLED") != "1",
                                reason="not a GPU test: runs only against an installed wheel (TENSORBRIDGE_TEST_INSTALLED=1)")


def test_package_and_library_come_from_the_environment():
    assert "TENSORBRIDGE_LIBRARY" not in os.environ
    package = Path(tensorbridge.__file__).resolve().parent
    site = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    assert package.parent in site, f"tensorbridge imported from {package}, not from {site}"
    library = package / "libtensorbridge.so"
    assert Path(_lib.lib._name).resolve() == library
    with open("/proc/self/maps") as maps:
        mapped = {line.split()[-1] for line in maps if "libtensorbridge" in line}
    assert mapped == {str(library)}, f"mapped: {mapped}"


def test_the_compiled_fast_path_is_installed_and_used():
    import numpy

    from tensorbridge import _compiled

    assert _compiled.native is not None, "the wheel's tensorbridge._native did not import"
    assert Path(_compiled.native.__file__).parent == Path(tensorbridge.__file__).parent
    assert isinstance(tensorbridge.as_tensor(numpy.zeros(3)), _compiled.native.TensorBase)

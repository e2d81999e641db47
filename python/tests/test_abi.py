"""The package asks the library instead of repeating it: ctypes struct layouts checked against
tb_abi_layout, the dtype table, device and status names, the DLPack copied flag, and layout
permutations all come from the C ABI."""
import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

import tensorbridge as tb
from tensorbridge import _abi, _devices, _dlpack, _dtypes, _lib


def test_every_ctypes_struct_matches_the_library():
    _abi.check_all()
    header = (Path(__file__).resolve().parents[2] / "include" / "tensorbridge.h").read_text()
    declared = set(re.findall(r"^typedef struct (Tb\w+) \{", header, re.MULTILINE))
    assert declared, "no struct found in the header"
    assert set(_abi.STRUCTS) == declared, "every struct of the header is declared and checked"


def _variant(fields):
    return type("WrongTensorInfo", (ctypes.Structure,), {"_fields_": fields})


@pytest.mark.parametrize("change,fragment", [
    (lambda fields: [(n, ctypes.c_int64 if n == "rank" else t) for n, t in fields], r"TbTensorInfo\.rank is at offset"),
    (lambda fields: fields[:1] + fields[2:3] + fields[1:2] + fields[3:], r"TbTensorInfo\.dtype is at offset"),
    (lambda fields: fields[:-1], r"sizeof\(TbTensorInfo\) is"),
    (lambda fields: fields + [("bogus", ctypes.c_int32)], r"does not describe TbTensorInfo\.bogus"),
])
def test_abi_check_rejects_a_wrong_declaration(change, fragment):
    wrong = _variant(change(list(_lib.TensorInfo._fields_)))
    with pytest.raises(ImportError, match=fragment):
        _abi.check_struct("TbTensorInfo", wrong)


def test_dtype_table_is_the_librarys():
    assert len(_dtypes._TABLE) == _lib.lib.tb_dtype_count()
    for entry in _dtypes._TABLE:
        t = tb.empty((2,), entry.name)
        if entry.typestr is None:  # float8/6/4: NumPy has no typestr; ml_dtypes' type, or the name
            assert entry.name.startswith(("float8_", "float6_", "float4_")) and str(t.dtype) == entry.name
        elif entry.name != "bfloat16":
            assert t.dtype == np.dtype(entry.typestr)
    assert {"bool", "uint8", "float16", "bfloat16", "complex128", "float8_e4m3fn", "float8_e5m2",
            "float4_e2m1fn", "float4_e2m1fn_x2"} <= {
        e.name for e in _dtypes._TABLE}


def test_device_and_status_names_are_the_librarys():
    assert set(_devices._NAMES.values()) == {"cpu", "cuda", "cuda_host", "cuda_managed"}
    assert str(tb.as_tensor(np.zeros(2)).device) == "cpu"
    assert tb.InvalidArgumentError.status == "TB_ERROR_INVALID_ARGUMENT"
    assert tb.ReadOnlyError.__doc__ == "TB_ERROR_READ_ONLY"
    assert tb.TensorBridgeError.status == "TB_ERROR_INTERNAL"


def _flags(capsule):
    pointer = _dlpack._get_pointer(capsule, _dlpack.VERSIONED)
    return ctypes.cast(pointer, ctypes.POINTER(_lib.DLManagedTensorVersioned)).contents.flags


def test_dlpack_copied_flag_comes_from_the_library_export():
    t = tb.as_tensor(np.arange(6, dtype=np.float32))
    copied = t.__dlpack__(max_version=(1, 0), copy=True)
    shared = t.__dlpack__(max_version=(1, 0))
    assert _flags(copied) & _lib.DLPACK_FLAG_IS_COPIED
    assert not _flags(shared) & _lib.DLPACK_FLAG_IS_COPIED
    assert tb.from_dlpack(copied).data_ptr != t.data_ptr
    assert tb.from_dlpack(shared).data_ptr == t.data_ptr


def test_reformat_shape_uses_the_librarys_permutation():
    a = np.zeros((2, 3, 4, 5), np.uint8)
    assert tb.reformat(tb.as_tensor(a, "NHWC"), "NCHW").shape == (2, 5, 3, 4)
    with pytest.raises(ValueError, match="has no layout"):
        tb.reformat(tb.as_tensor(a), "NCHW")


def test_cuda_device_count_or_error_names_why_cuda_is_unavailable():
    count, error = tb.cuda_device_count_or_error()
    assert tb.cuda_device_count() == count
    if error is not None:
        assert count == 0
        assert isinstance(error, tb.TensorBridgeError) and str(error), "the library's message"


@pytest.mark.parametrize("gpu_present,outcome", [(True, "fail"), (False, "skip")])
def test_gpu_modules_fail_instead_of_skipping_when_a_gpu_is_present(monkeypatch, gpu_present, outcome):
    import gpu_required

    broken = tb.CudaUnavailableError("CUDA unavailable: cuInit failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH")
    monkeypatch.setattr(gpu_required, "cuda_device_count_or_error", lambda: (0, broken))
    monkeypatch.setattr(gpu_required, "nvidia_gpu_present", lambda: gpu_present)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"):
        gpu_required.skip_module_unless_gpu()

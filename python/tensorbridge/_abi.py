"""The load-time check that every ctypes struct declared in ``_lib`` matches the library as it was
compiled: each field's offset and size, and each struct's ``sizeof``, against ``tb_abi_layout``.
A mismatch (a header changed, a declaration typed wrong) raises ImportError naming the struct and
the field, instead of letting ctypes read and write the wrong bytes."""
import ctypes

from ._lib import (
    Allocator,
    ExchangeAPI,
    FrameFormat,
    IpcTensor,
    ExchangeAPIHeader,
    ArrayInterface,
    DataType,
    Device,
    DLManagedTensor,
    DLManagedTensorVersioned,
    DLPackVersion,
    DLTensor,
    Layout,
    TensorBridgeError,
    TensorInfo,
    lib,
)

STRUCTS = {
    "TbDataType": DataType,
    "TbDevice": Device,
    "TbLayout": Layout,
    "TbTensorInfo": TensorInfo,
    "TbArrayInterface": ArrayInterface,
    "TbDLTensor": DLTensor,
    "TbDLManagedTensor": DLManagedTensor,
    "TbDLPackVersion": DLPackVersion,
    "TbDLManagedTensorVersioned": DLManagedTensorVersioned,
    "TbAllocator": Allocator,
    "TbDLPackExchangeAPIHeader": ExchangeAPIHeader,
    "TbDLPackExchangeAPI": ExchangeAPI,
    "TbFrameFormat": FrameFormat,
    "TbIpcTensor": IpcTensor,
}


def _library_layout(struct_name, field):
    """(offset, size) of `field` of `struct_name` (or of the struct itself for None) in the library."""
    offset, size = ctypes.c_size_t(), ctypes.c_size_t()
    where = struct_name if field is None else f"{struct_name}.{field}"
    try:
        lib.tb_abi_layout(struct_name.encode(), None if field is None else field.encode(),
                          ctypes.byref(offset), ctypes.byref(size))
    except TensorBridgeError as error:
        raise ImportError(f"tensorbridge: the library does not describe {where}: {error}") from None
    return offset.value, size.value


def check_struct(struct_name, declaration):
    """Raises ImportError unless the ctypes `declaration` has the library's layout of `struct_name`."""
    for field, _ in declaration._fields_:
        expected = _library_layout(struct_name, field)
        descriptor = getattr(declaration, field)
        declared = (descriptor.offset, descriptor.size)
        if declared != expected:
            raise ImportError(
                f"tensorbridge: {struct_name}.{field} is at offset {expected[0]} with size {expected[1]} in "
                f"the library but at offset {declared[0]} with size {declared[1]} in {declaration.__name__}")
    _, size = _library_layout(struct_name, None)
    if ctypes.sizeof(declaration) != size:
        raise ImportError(f"tensorbridge: sizeof({struct_name}) is {size} in the library but "
                          f"{ctypes.sizeof(declaration)} in {declaration.__name__} (a field is missing)")


def check_all():
    for struct_name, declaration in STRUCTS.items():
        check_struct(struct_name, declaration)


check_all()

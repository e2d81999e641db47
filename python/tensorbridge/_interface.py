"""The CUDA Array Interface and NumPy's array interface, both ways, through TbArrayInterface.

Import happens in two phases. The first takes everything from the producer's dict into plain
Python values — every lookup, ``len()``, iteration and conversion, anything that can run the
producer's code — checking each against its C field. Only then is the calling thread's reusable
descriptor filled and handed to the library, with none of the producer's code in between. A call
that re-enters ``import_interface`` while the descriptor is in use (from a finalizer or a signal
handler) gets a fresh descriptor instead.
"""
import ctypes
import threading
from collections.abc import Mapping

from ._lib import CLEANUP, MAX_RANK, TYPESTR_CAPACITY, ArrayInterface, raise_for, unchecked
from ._values import ENCODED, INT64_TUPLES, INT32, UINT64, ascii_bytes, int64_tuple, integer

from_cuda_array_interface = unchecked("tb_tensor_from_cuda_array_interface", convert_arguments=False)
from_array_interface = unchecked("tb_tensor_from_array_interface", convert_arguments=False)
_NO_CLEANUP = CLEANUP()
_U64_MAX, _I32_MIN, _I32_MAX = UINT64.high, INT32.low, INT32.high

CUDA_ARRAY_INTERFACE, ARRAY_INTERFACE = "__cuda_array_interface__", "__array_interface__"


_scratch = threading.local()  # per thread: [descriptor, its pointer, output slot, its pointer, busy]


def _new_slot():
    description, out = ArrayInterface(), ctypes.c_void_p()
    return [description, ctypes.byref(description), out, ctypes.byref(out), False]


def import_interface(function, interface, kind, layout):
    """A new tensor handle over the memory an interface dict describes. ``function`` is one of the
    two imports, ``kind`` the dict's attribute name, ``layout`` encoded bytes or None. The caller
    keeps the producer alive. (One function, two phases: this is the hot path of ``as_tensor``.)"""
    # Phase 1: read the dict into checked plain values. The producer's code may run here.
    if type(interface) is not dict and not isinstance(interface, Mapping):
        raise TypeError(f"{kind} must be a dict, not {type(interface).__name__}")
    try:
        data, shape, typestr = interface["data"], interface["shape"], interface["typestr"]
    except KeyError as missing:
        raise ValueError(f"{kind} has no {missing} entry") from None
    get = interface.get
    version = get("version", 0)
    if not (type(version) is int and _I32_MIN <= version <= _I32_MAX):
        version = integer(version, f"{kind}['version']", INT32)
    if type(data) is tuple and len(data) == 2:
        pointer, readonly = data
    elif isinstance(data, int):
        pointer, readonly = data, False
    else:
        raise TypeError(f"{kind}['data'] must be a (pointer, read_only) tuple, not {data!r}")
    if pointer is None:
        pointer = 0
    elif not (type(pointer) is int and 0 <= pointer <= _U64_MAX):
        pointer = integer(pointer, f"{kind}['data'][0]", UINT64)
    readonly = bool(readonly)
    try:
        typestr = ENCODED[typestr]  # a typestr seen before: its checked encoding
    except (KeyError, TypeError):
        typestr = ascii_bytes(typestr, f"{kind}['typestr']")
    if len(typestr) >= TYPESTR_CAPACITY:
        raise ValueError(f"{kind}['typestr'] {typestr!r} is too long")
    try:
        shape = INT64_TUPLES[shape]  # a shape seen before: the checked tuple
    except (KeyError, TypeError):
        shape = int64_tuple(shape, f"{kind}['shape']")
    rank = len(shape)
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} exceeds the maximum rank {MAX_RANK}")
    strides = get("strides")
    if strides is not None:
        try:
            strides = INT64_TUPLES[strides]
        except (KeyError, TypeError):
            strides = int64_tuple(strides, f"{kind}['strides']")
        if len(strides) != rank:
            raise ValueError(f"{len(strides)} strides for {rank} dimensions")
    stream = get("stream") if kind is CUDA_ARRAY_INTERFACE else None
    if stream is not None and not (type(stream) is int and 0 <= stream <= _U64_MAX):
        stream = integer(stream, f"{kind}['stream']", UINT64)
    has_mask = get("mask") is not None

    # Phase 2: fill this thread's descriptor and import. No producer code runs from here on.
    slot = getattr(_scratch, "slot", None)
    if slot is None:
        slot = _scratch.slot = _new_slot()
    elif slot[4]:  # re-entered (a finalizer or signal handler) while the descriptor is in use
        slot = _new_slot()
    description, description_pointer, out, out_pointer, _ = slot
    slot[4] = True
    try:
        description.version = version
        description.data = pointer
        description.readonly = readonly
        description.typestr = typestr
        description.rank = rank
        description.shape[:rank] = shape
        description.has_strides = strides is not None
        if strides is not None:
            description.strides[:rank] = strides
        description.has_stream = stream is not None
        description.stream = stream or 0
        description.has_mask = has_mask
        status = function(description_pointer, layout, _NO_CLEANUP, None, out_pointer)
        if status:
            raise_for(status)
        return out.value
    finally:
        slot[4] = False


def interface_dict(description, cuda):
    """The ``__cuda_array_interface__`` (``cuda``) or ``__array_interface__`` dict of an export."""
    rank = description.rank
    typestr = description.typestr.decode()
    result = {
        "version": 3,
        "data": (description.data or 0, bool(description.readonly)),
        "typestr": typestr,
        "shape": tuple(description.shape[:rank]),
        "strides": tuple(description.strides[:rank]) if description.has_strides else None,
    }
    if cuda:
        if description.has_stream:
            result["stream"] = description.stream
    else:
        result["descr"] = [("", typestr)]
    return result

"""Types of the optional compiled fast path (_native.c)."""
from typing import Any, Callable, Optional, TypeVar

_T = TypeVar("_T", bound="TensorBase")

API_VERSION: int

class TensorBase:
    _handle: int
    _cached_info: Any
    _owner: Any
    @classmethod
    def _adopt(cls: type[_T], handle: Optional[int], owner: Any = ...) -> _T: ...

def init(functions: dict[str, int], tensor_type: type, raise_for: Callable[[int], None],
         api_by_type: dict[type, int]) -> None: ...
def import_owned(api: int, obj: Any, layout: Optional[bytes]) -> Any: ...
def import_interface(cuda: bool, interface: Any, layout: Optional[bytes], owner: Any) -> Any: ...
def into(which: int, dst: Any, src: Any, stream: Optional[int]) -> Any: ...
def reformat_new(src: Any, layout: Optional[bytes], stream: Optional[int]) -> Any: ...

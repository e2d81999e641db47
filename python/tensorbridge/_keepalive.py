"""The keep-alive registry. A Tensor over a Python producer's memory holds the producer (so do
its views). The one way the library's references can outlive every Python object is a DLPack
export: it is made from an alias whose native cleanup callback releases a registry entry holding
the producer."""
import itertools

from ._lib import CLEANUP

_KEEP: dict[int, object] = {}  # token -> producer
_TOKENS = itertools.count(1)


@CLEANUP
def release(context, _data):
    """The native cleanup callback: drops the entry whose token is ``context``."""
    _KEEP.pop(context, None)


def keep(obj):
    """Holds ``obj`` until ``release`` runs with the returned token (or ``forget`` is called)."""
    token = next(_TOKENS)
    _KEEP[token] = obj
    return token


def forget(token):
    _KEEP.pop(token, None)


def count():
    """Number of producers held (a diagnostic for leak checks)."""
    return len(_KEEP)

"""Reusable scratch buffers for the CPU K-nearest engines (``_knn``, ``_knn_fine``).

Why. The engines run a long sequence of numpy ufuncs with ``out=`` on chunks of a few thousand
pixels; allocating those temporaries per chunk would cost page faults (large arrays are fresh
``mmap`` s) and evict the cache. A ``Pool`` holds named buffers of one chunk length; ``pool``
keeps a few pools alive across chunks and calls (one per owner and length).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

# Pools kept at once (owners x distinct chunk lengths); all are dropped when exceeded.
_LIMIT = 16


class Pool:
    """Named buffers for chunks of ``n`` elements (``n`` is part of the pool's key, shapes are
    the caller's: usually ``(rows, n)``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._bufs: dict[tuple[str, tuple[int, ...], np.dtype], np.ndarray] = {}
        self._consts: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: DTypeLike = np.float64) -> np.ndarray:
        """Uninitialised buffer ``name``: the same array on every call with the same arguments
        (a caller must not use one name for two live temporaries)."""
        key = (name, shape, np.dtype(dtype))
        buf = self._bufs.get(key)
        if buf is None:
            buf = self._bufs[key] = np.empty(shape, dtype=dtype)
        return buf

    def const(self, name: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        """A constant array (``make()`` on first use, then kept; never written by callers).
        The name must determine the contents (pools are shared by tables and K)."""
        found = self._consts.get(name)
        if found is None:
            found = self._consts[name] = make()
        return found


_POOLS: dict[tuple[str, int], Pool] = {}


def pool(owner: str, n: int) -> Pool:
    """The pool of ``owner`` (a module's tag: distinct owners never share buffers) for chunks
    of ``n`` elements."""
    key = (owner, n)
    found = _POOLS.get(key)
    if found is None:
        if len(_POOLS) >= _LIMIT:
            _POOLS.clear()
        found = _POOLS[key] = Pool(n)
    return found

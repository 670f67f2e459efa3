"""One way to spread per-image work (cropping, verifying) over CPU cores."""

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Items handed to a worker at a time: large enough that pickling overhead stays small, small enough
# that a few hundred images already use every core.
CHUNK_SIZE = 32


def default_workers() -> int:
    """All cores: the work is image decoding, which does not share state."""
    return os.cpu_count() or 1


def parallel_map(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[function(item) for item in items]``, in a process pool when there is enough work for one.

    Inputs too small to fill two chunks run inline: starting processes would cost more than it saves.
    ``function`` must be a module-level function (it is pickled).
    """
    if workers <= 1 or len(items) < 2 * CHUNK_SIZE:
        return [function(item) for item in items]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items, chunksize=CHUNK_SIZE))

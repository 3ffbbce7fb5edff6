"""Matrix products over units whose bits do not depend on how many units are computed at once.

BLAS picks its kernel, and with it the order in which a dot product is
summed, by the shape of the product (OpenBLAS 0.3 sums a product of fewer
than 100^3 multiply-adds with another kernel than a larger one). A unit's
column of ``a @ x`` would then change in its last bits with the width of the
block of units it is computed in. Here every product over units runs
:data:`CHUNK` columns at a time, the last chunk padded with zeros, so that
every column goes through a product of one shape whatever the block: the
statistics of a block of units equal those of the whole matrix bit for bit.
"""

from __future__ import annotations

import numpy as np

#: columns (units) per matrix product
CHUNK = 512


def times_columns(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` for a [..., m, k] (batch dimensions broadcast) and x [k, units], CHUNK columns of
    x at a time: [..., m, units] float64."""
    x = np.asarray(x, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    units = x.shape[1]
    out = np.empty(a.shape[:-1] + (units,))
    buffer = np.zeros((x.shape[0], CHUNK))
    for start in range(0, units, CHUNK):
        stop = min(start + CHUNK, units)
        buffer[:, : stop - start] = x[:, start:stop]
        if stop - start < CHUNK:
            buffer[:, stop - start:] = 0.0
        out[..., start:stop] = (a @ buffer)[..., : stop - start]
    return out

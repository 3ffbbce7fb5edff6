"""A job's thread pools held to the threads its rule was given (``compute.threads``, else 1).

Without this, every numpy, scipy and scikit-learn job starts as many BLAS
and OpenMP threads as the machine has cores, whatever Snakemake scheduled:
on a loaded 2-core machine two OpenBLAS threads made an SVD 19x and an
eigendecomposition 55x slower than one (bench/README.md). The pools already
loaded are limited with threadpoolctl; the environment variables cover the
libraries a job loads later (OpenBLAS and OpenMP read them when they start);
torch, where the job has imported it, gets ``torch.set_num_threads``.
"""

from __future__ import annotations

import os
import sys

#: read by BLAS and OpenMP runtimes when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def pin_threads(threads: int) -> int:
    """Limit this process's BLAS and OpenMP pools (and torch's, if imported) to ``threads``; returns it."""
    from threadpoolctl import threadpool_limits

    threads = max(1, int(threads))
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    return threads

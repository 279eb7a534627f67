"""Shared settings of the clustering tests."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small eigenproblems run far faster single-threaded on a shared 2-core machine."""
    with threadpool_limits(limits=1):
        yield

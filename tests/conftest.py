"""Test-session settings shared by every tier."""

import os

import pytest
from threadpoolctl import threadpool_limits

from sim.verilator import CACHE_ENV

# The solves in tests are small; with two BLAS threads they slow down 10-100x whenever another
# process (a parallel test worker, a simulator) holds the other core.
_BLAS_LIMIT = threadpool_limits(limits=1)


@pytest.fixture(scope="session", autouse=True)
def _verilator_cache(tmp_path_factory):
    """Verilator models compiled in a test session go to a cache of the session's own, so
    every run compiles (and so tests) each model once, unless DEBUT_SIM_CACHE names a cache."""
    if os.environ.get(CACHE_ENV):
        yield
        return
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("verilator-cache"))
    try:
        yield
    finally:
        os.environ.pop(CACHE_ENV, None)

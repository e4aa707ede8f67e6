"""Test-session settings shared by every tier."""

from threadpoolctl import threadpool_limits

# The solves in tests are small; with two BLAS threads they slow down 10-100x whenever another
# process (a parallel test worker, a simulator) holds the other core.
_BLAS_LIMIT = threadpool_limits(limits=1)

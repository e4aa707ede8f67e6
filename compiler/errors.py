"""The project's exception hierarchy.

Every mistake a user can make (a bad model file, an invalid chain, an option out of range, a
missing tool) raises a subclass of :class:`CompilerError`. The CLI catches only these, prints
their message on one line and exits non-zero; any other exception is a bug and keeps its traceback.
"""


class CompilerError(Exception):
    """Base of every error caused by the user's input or environment."""


class ChainError(CompilerError, ValueError):
    """A DeBut chain breaks a structural rule (shapes, block counts, chaining)."""


class ChainSearchError(CompilerError):
    """No chain meets the requested budget or shape."""


class ModelFormatError(CompilerError):
    """A model file is missing, unreadable, of the wrong format or version, or inconsistent."""


class UnsupportedModelError(CompilerError):
    """The model contains modules the compiler cannot handle."""


class OptionError(CompilerError):
    """A command-line option has an invalid value."""


class DatasetError(CompilerError):
    """A data set reference is unknown or its data cannot be read."""


class IRVerificationError(CompilerError):
    """The IR breaks an invariant after a pass; the message names the pass."""


class FitError(CompilerError):
    """The design does not fit the multiplier budget, the target II or the board."""


class SimulationMismatch(CompilerError):
    """The simulated hardware differs from the golden model."""


class TimingError(CompilerError):
    """The placed and routed design misses its clock."""

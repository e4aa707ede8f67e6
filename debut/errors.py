"""The project's exception hierarchy, one subclass per kind of user mistake or environment fault.

Every layer raises its own kinds; the CLI catches :class:`CompilerError` only, prints its message
on one line and exits with status 2. Any other exception is a bug and keeps its traceback.

::

    CompilerError
    ├── OptionError            a command-line option or API argument out of range (CLI layer)
    ├── ChainError             a DeBut chain breaks a structural rule (core)
    ├── ChainSearchError       no chain meets the requested budget or shape (compiler.nn)
    ├── ModelFormatError       a model file is unreadable or inconsistent (front end)
    ├── UnsupportedModelError  a model holds modules the compiler cannot handle (front end)
    ├── DatasetError           a data set reference or data file is unusable (front end)
    ├── QuantizationError      a network cannot be quantised as asked (IR and passes)
    ├── IRVerificationError    a pass broke an IR invariant (IR and passes)
    ├── FitError               a design does not fit its budget, target II or board (lowering)
    ├── ArtifactError          a build folder is missing, incomplete or of an older schema
    ├── SimulationError        an HDL simulation could not run (sim)
    │   └── SimulatorMissingError
    ├── SimulationMismatch     simulated hardware differs from the golden model (verification)
    ├── ToolError              an FPGA tool is missing or failed (boards)
    ├── TimingError            the routed design misses its clock (boards)
    ├── BoardError             a board cannot do what was asked: a clock, a baud rate (boards)
    └── LinkError              the host link to a board failed (boards.link; its protocol
                               module adds ProtocolError and DeviceError)
"""

__all__ = [
    "ArtifactError",
    "BoardError",
    "ChainError",
    "ChainSearchError",
    "CompilerError",
    "DatasetError",
    "FitError",
    "IRVerificationError",
    "LinkError",
    "ModelFormatError",
    "OptionError",
    "QuantizationError",
    "SimulationError",
    "SimulationMismatch",
    "SimulatorMissingError",
    "TimingError",
    "ToolError",
    "UnsupportedModelError",
]


class CompilerError(Exception):
    """Base of every error caused by the user's input or environment."""


class OptionError(CompilerError):
    """A command-line option (or the same argument of the Python API) has an invalid value."""


class ChainError(CompilerError, ValueError):
    """A DeBut chain breaks a structural rule (shapes, block counts, chaining)."""


class ChainSearchError(CompilerError):
    """No chain meets the requested budget or shape."""


class ModelFormatError(CompilerError):
    """A model file is missing, unreadable, of the wrong format or version, or inconsistent."""


class UnsupportedModelError(CompilerError):
    """The model contains modules the compiler cannot handle."""


class DatasetError(CompilerError):
    """A data set reference is unknown or its data cannot be read."""


class QuantizationError(CompilerError):
    """A network cannot be quantised as asked, or is used before it is quantised."""


class IRVerificationError(CompilerError):
    """The IR breaks an invariant after a pass; the message names the pass."""


class FitError(CompilerError):
    """The design does not fit the multiplier budget, the target II or the board."""


class ArtifactError(CompilerError):
    """A build folder lacks what a command needs, or was written by an older schema."""


class SimulationError(CompilerError):
    """A design cannot be simulated (no core, vectors that do not fit it), or the simulator
    stopped without results."""


class SimulatorMissingError(SimulationError):
    """The requested HDL simulator is not installed."""


class SimulationMismatch(CompilerError):
    """The simulated hardware differs from the golden model."""


class ToolError(CompilerError):
    """An FPGA tool is missing or failed."""


class TimingError(CompilerError):
    """The placed and routed design misses its clock."""


class BoardError(CompilerError):
    """A board cannot do what was asked (a clock its PLL cannot make, a baud rate)."""


class LinkError(CompilerError):
    """The board did not answer as the protocol requires, or could not be reached."""

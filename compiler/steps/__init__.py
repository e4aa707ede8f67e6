"""The build steps, one function per step over one :class:`~compiler.steps.state.BuildState`,
grouped by what they work on: the model (``front``), the core (``core``) and the board
(``board``). :mod:`compiler.pipeline` orders them."""

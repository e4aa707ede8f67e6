"""IR passes: plain functions ``Graph -> Graph``, one per file, run in order by
:mod:`compiler.pipeline`."""

import signal
import sys

from compiler.cli import main


def _terminate(signum, frame):
    # a terminated build (a CI timeout, kill) stops its tools and cleans up as Ctrl-C does
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _terminate)
sys.exit(main())

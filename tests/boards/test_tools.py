"""The tool runner (boards.tools.run_logged): output logged as it comes, and a progress heartbeat
while a tool is silent (the YoWASP tools' output reaches a pipe in bursts)."""

import itertools
import sys

from boards.tools import run_logged


def test_lines_are_logged_and_silence_is_reported(tmp_path):
    script = "import time; print('first', flush=True); time.sleep(0.6); print('second')"
    lines, quiet = [], []
    status, text = run_logged(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        log_name="tool.log",
        on_line=lines.append,
        on_quiet=quiet.append,
        quiet_s=0.15,
    )
    assert status == 0
    assert lines == ["first", "second"] and text == "first\nsecond\n"
    assert (tmp_path / "tool.log").read_text() == text
    # silent for 0.6 s (and while Python starts) with a 0.15 s period: heartbeats at least
    # 0.15 s after the start, in order, at most one per period
    assert len(quiet) >= 2
    assert quiet == sorted(quiet) and quiet[0] >= 0.15
    assert all(later - earlier >= 0.14 for earlier, later in itertools.pairwise(quiet))


def test_a_chatty_tool_gets_no_heartbeat(tmp_path):
    script = "import time\nfor k in range(6):\n    print(k, flush=True); time.sleep(0.05)"
    quiet = []
    status, _ = run_logged(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        log_name="tool.log",
        on_quiet=quiet.append,
        quiet_s=3.0,  # far longer than the start-up and any gap between its lines
    )
    assert status == 0 and quiet == []


def test_exit_status_is_returned(tmp_path):
    status, text = run_logged(
        [sys.executable, "-c", "import sys; print('bad'); sys.exit(3)"],
        cwd=tmp_path,
        log_name="tool.log",
    )
    assert status == 3 and text == "bad\n"

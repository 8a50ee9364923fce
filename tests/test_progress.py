"""Progress lines of the long tools: done/total, elapsed, time left; plain lines off a terminal."""

import io

from tools.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_plain_lines_with_done_total_elapsed_and_time_left():
    out, clock = io.StringIO(), Clock()
    progress = Progress(4, stream=out, clock=clock)
    progress.starting("a")  # not a terminal: no live line
    clock.now = 30
    progress.finished("killed a")
    clock.now = 60
    progress.finished("killed b")
    assert out.getvalue().splitlines() == [
        "[1/4] 0:30 elapsed, about 1:30 left  killed a",
        "[2/4] 1:00 elapsed, about 1:00 left  killed b",
    ]


def test_a_terminal_also_gets_a_live_line_naming_the_running_step():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out, clock = Terminal(), Clock()
    progress = Progress(2, stream=out, clock=clock)
    progress.starting("fault_x")
    assert "running fault_x" in out.getvalue() and "\n" not in out.getvalue()
    clock.now = 5
    progress.finished("killed fault_x")
    assert out.getvalue().endswith("[1/2] 0:05 elapsed, about 0:05 left  killed fault_x\n")

"""The Host agent's confirm-access prompts (agents/host/prompt.py ``Prompts``) with a stand-in
prompt program (a real process that says a word, or waits): the answer reaches the agent, and a
``CONFIRM_CANCEL`` (``Prompts.cancel``) ends the open prompt's process and keeps its answer from
ever being sent, even when it comes before the process has started. The real Tk window is
driven under Xvfb in tests/integration/test_confirm_access_x11_e2e.py."""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from pathlib import Path

from agents.host.prompt import ALLOW, UNANSWERED, Prompts


def stand_in(tmp_path: Path, word: str, wait: float = 0.0) -> list[str]:
    """A prompt program that writes its pid to ``started``, waits ``wait`` s, then prints
    ``word`` (it gets --technician and --timeout like the real one)."""
    script = (f"import os, pathlib, sys, time\n"
              f"assert sys.argv[1:3] == ['--technician', 'Tina Tech (tina@example.com)']\n"
              f"pathlib.Path({str(tmp_path / 'started')!r}).write_text(str(os.getpid()))\n"
              f"time.sleep({wait})\n"
              f"print({word!r}, flush=True)\n")
    return [sys.executable, "-c", script]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that ended but was not reaped yet is a zombie: not running any more.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def worker_running(request: int) -> bool:
    return any(t.name == f"confirm-{request}" for t in threading.enumerate())


def test_the_prompts_answer_reaches_the_agent(tmp_path):
    prompts, replies = Prompts(stand_in(tmp_path, ALLOW)), queue.Queue()
    prompts.start(7, "Tina Tech (tina@example.com)", 30, None, replies.put)
    assert replies.get(timeout=15) == ALLOW


def test_a_prompt_that_prints_nothing_useful_is_unanswered(tmp_path):
    prompts, replies = Prompts(stand_in(tmp_path, "maybe")), queue.Queue()
    prompts.start(8, "Tina Tech (tina@example.com)", 30, None, replies.put)
    assert replies.get(timeout=15) == UNANSWERED


def test_cancel_ends_the_open_prompt_and_its_answer_is_never_sent(tmp_path):
    prompts, replies = Prompts(stand_in(tmp_path, ALLOW, wait=60)), queue.Queue()
    prompts.start(9, "Tina Tech (tina@example.com)", 30, None, replies.put)
    started = tmp_path / "started"
    assert wait_until(started.exists), "the prompt process did not start"
    pid = int(started.read_text())
    assert alive(pid)

    assert prompts.cancel(9) is True
    assert wait_until(lambda: not alive(pid)), "the cancelled prompt is still running"
    assert wait_until(lambda: not worker_running(9))
    assert replies.empty()
    assert prompts.cancel(9) is False  # settled: a second cancel finds nothing


def test_a_cancel_read_right_after_the_request_wins_even_before_the_prompt_starts(tmp_path):
    prompts, replies = Prompts(stand_in(tmp_path, ALLOW, wait=60)), queue.Queue()
    prompts.start(10, "Tina Tech (tina@example.com)", 30, None, replies.put)
    assert prompts.cancel(10) is True  # the request is known as soon as start() returns
    assert wait_until(lambda: not worker_running(10)), "the cancelled request's worker goes on"
    started = tmp_path / "started"
    if started.exists():  # it had started by then: it was ended
        assert not alive(int(started.read_text()))
    assert replies.empty()


def test_a_cancel_for_a_request_the_agent_does_not_know_is_ignored(tmp_path):
    assert Prompts(stand_in(tmp_path, ALLOW)).cancel(12345) is False


def test_closing_the_connection_ends_every_prompt_without_answers(tmp_path):
    prompts, replies = Prompts(stand_in(tmp_path, ALLOW, wait=60)), queue.Queue()
    prompts.start(11, "Tina Tech (tina@example.com)", 30, None, replies.put)
    started = tmp_path / "started"
    assert wait_until(started.exists)
    prompts.close()
    assert wait_until(lambda: not alive(int(started.read_text())))
    prompts.start(12, "Tina Tech (tina@example.com)", 30, None, replies.put)  # after the close
    assert wait_until(lambda: not worker_running(11) and not worker_running(12))
    assert replies.empty()

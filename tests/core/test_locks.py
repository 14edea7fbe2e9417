"""File locks: exclusive across processes, re-entrant in a thread, and gone when released."""

import multiprocessing
import os
import time
from pathlib import Path

from fanet.core.locks import file_lock, lock_path_for


def _hold(path: str, seconds: float, log: str) -> None:
    with file_lock(path):
        with open(log, "a") as stream:
            stream.write(f"start {os.getpid()} {time.time()}\n")
        time.sleep(seconds)
        with open(log, "a") as stream:
            stream.write(f"end {os.getpid()} {time.time()}\n")


def test_processes_take_turns_and_leave_no_lock_file(tmp_path):
    stem, log = str(tmp_path / "set"), str(tmp_path / "log.txt")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hold, args=(stem, 0.3, log)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    events = [line.split() for line in Path(log).read_text().splitlines()]
    assert [kind for kind, _, _ in events] == ["start", "end"] * 4  # never two inside
    assert all(a[1] == b[1] for a, b in zip(events[::2], events[1::2]))
    assert sorted(os.listdir(tmp_path)) == ["log.txt"]


def test_a_thread_may_take_its_lock_again(tmp_path):
    stem = str(tmp_path / "set")
    with file_lock(stem):
        with file_lock(stem):
            assert os.path.exists(lock_path_for(stem))
        assert os.path.exists(lock_path_for(stem))  # still held by the outer block
    assert not os.path.exists(lock_path_for(stem))

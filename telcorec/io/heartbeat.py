"""Whether an attempt is still alive: one small heartbeat file per running attempt.

A Delta version per heartbeat would grow the `runs` log by thousands of commits a day, so the
beat is a JSON file `<warehouse>/heartbeats/<attempt_id>.json`, replaced atomically (write a
temporary file, then `os.replace`) by a daemon thread every `runs.heartbeat_seconds`. It names
the host, the process id and the process's start time (so a reused pid is not taken for the
attempt), the stages done so far and the time of the beat. The attempt removes it when it
records its end.

An attempt without an end is dead (`abandoned`) when its last beat is older than the timeout,
or at once when its host is this machine and its process is gone. A beat file lives on the
warehouse's file system, so attempts on other hosts are judged by the age of their beat alone.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

DIRECTORY = "heartbeats"  # beside the warehouse's tables


@dataclass(frozen=True)
class Beat:
    attempt_id: str
    host: str
    pid: int
    process_start: str | None  # /proc/<pid>/stat start time; None where there is no /proc
    beat_at: float             # seconds since the epoch (UTC)
    done: tuple[str, ...] = ()  # stages finished when it beat


def this_host() -> str:
    return socket.gethostname()


def process_start(pid: int) -> str | None:
    """The start time of process `pid` in clock ticks since boot (Linux), None elsewhere or
    when there is no such process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else fields[19]  # a zombie has ended: no start to match


def process_alive(pid: int, started: str | None) -> bool:
    """Whether process `pid` of this host runs and is the one that started at `started`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    now = process_start(pid)
    if Path("/proc").is_dir() and now is None:  # a zombie, or gone since kill()
        return False
    return started is None or now is None or now == started


def dead_reason(beat: Beat | None, started_at: float, now: float, timeout: float, host: str,
                alive: Callable[[int, str | None], bool] = process_alive) -> str | None:
    """Why an attempt that recorded no end is dead, or None while it may still be running.
    `started_at` is when its `running` row says it started (epoch seconds)."""
    if beat is None:
        if now - started_at <= timeout:  # its beat is written before its row: a gap is a race
            return None
        return "no heartbeat file"
    age = now - beat.beat_at
    if age > timeout:
        return f"last heartbeat {age:,.0f} s ago (timeout {timeout:,.0f} s)"
    if beat.host == host and not alive(beat.pid, beat.process_start):
        return "its process is gone"
    return None


def path(directory: Path, attempt_id: str) -> Path:
    return directory / f"{attempt_id}.json"


def write(directory: Path, beat: Beat) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{beat.attempt_id}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(asdict(beat)))
    os.replace(tmp, path(directory, beat.attempt_id))  # a reader sees the old or the new beat


def read_all(directory: Path) -> dict[str, Beat]:
    """Every beat under `directory` by attempt id (a file being replaced is read whole or not
    at all; an unreadable one is skipped)."""
    beats = {}
    if not directory.is_dir():
        return beats
    for file in directory.glob("*.json"):
        try:
            data = json.loads(file.read_text())
            beat = Beat(**{**data, "done": tuple(data.get("done", ()))})
        except (OSError, ValueError, TypeError):
            continue
        beats[beat.attempt_id] = beat
    return beats


def remove(directory: Path, attempt_id: str) -> None:
    path(directory, attempt_id).unlink(missing_ok=True)


@dataclass
class Heartbeat:
    """The beating of one attempt: `start` writes the first beat before it returns, then a
    daemon thread (it never holds the process up at exit) rewrites it every `interval` s."""
    directory: Path
    attempt_id: str
    interval: float
    done: Callable[[], list[str]] = list
    host: str = field(default_factory=this_host)
    pid: int = field(default_factory=os.getpid)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _warned: bool = False

    def beat(self) -> Beat:
        return Beat(self.attempt_id, self.host, self.pid, process_start(self.pid), time.time(),
                    tuple(self.done()))

    def _beat_quietly(self) -> None:
        try:
            write(self.directory, self.beat())
        except (OSError, RuntimeError) as exc:  # RuntimeError: `done` read mid-update
            if not self._warned:
                log.warning("heartbeat of attempt %s not written (%s); if this lasts over "
                            "runs.heartbeat_timeout_seconds the attempt shows as abandoned: "
                            "check that %s is writable", self.attempt_id, exc, self.directory)
                self._warned = True

    def start(self) -> None:
        write(self.directory, self.beat())  # raises: an attempt nobody can see must not start

        def loop() -> None:
            while not self._stop.wait(self.interval):
                self._beat_quietly()

        self._thread = threading.Thread(target=loop, name=f"heartbeat-{self.attempt_id}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the beat (the attempt has recorded its end)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        remove(self.directory, self.attempt_id)

"""The process rule the launcher and the jobs share: a child dies with its parent.

A job is a chain of processes (launcher -> spark-submit's JVM -> the Python driver). Linux's
PR_SET_PDEATHSIG makes the kernel SIGKILL a process when its parent goes, so `kill -9` of the
command a user started ends the whole chain instead of leaving a job running unseen; its
heartbeat then stops and `runs` shows the attempt abandoned. Elsewhere (macOS) it is a no-op."""
from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """SIGKILL this process when its parent dies (kept across exec); False where unsupported."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0
    except (OSError, AttributeError):
        return False

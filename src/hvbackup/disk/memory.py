"""Keep glibc from returning freed multi-MiB buffers to the kernel after every read.

By default glibc serves a large allocation with mmap and, once its threshold has adapted, trims
the heap top whenever more than twice that is free. A reader that builds 4 MiB results from a few
pieces then pays a page fault per 4 KiB on every read: on this 2-core VM that costs 20x
(0.6 GB/s instead of 12 GB/s, measured with bench/disk_read.py). Fixed thresholds stop it; the
cost is that up to 256 MiB of freed memory stays with the process for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 256 * 1024 * 1024
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for this setting on 64-bit

_done = False
_lock = threading.Lock()


def keep_large_buffers() -> bool:
    """Set fixed malloc thresholds once per process (glibc only); True if they are in force."""
    global _done
    with _lock:
        if _done:
            return True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        _done = bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        return _done

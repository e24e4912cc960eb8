"""glibc's malloc, set for `worker embedded`: a long-running threaded server that decodes images.

With glibc's defaults the engine's RSS climbs with every new image although what it keeps alive
stays small (tracemalloc: about 14 MB of Python objects and arrays after 300 analyses, against
168 MB of growth in RSS). Two defaults keep freed memory resident:

- the mmap threshold is dynamic: it starts at 128 KiB, and each time a block that large is freed
  glibc raises it to that block's size (up to 32 MiB), so from then on image-sized buffers
  (decoded pixels, dlib's image pyramid) come from the heap, where the holes they leave behind
  stay resident;
- every thread may get an arena of its own (up to 8 per core), and werkzeug serves each request
  on a new thread, so those holes are spread over many heaps.

:func:`bound_malloc` fixes the threshold at 128 KiB (every block from 128 KiB up is a mapping of
its own, returned to the kernel when freed) and allows 2 arenas, through ``mallopt(3)`` at
start-up: the ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_ARENA_MAX`` variables would need to be set
before the process starts. Measured in one process (300 distinct photos in 4 threads, growth of
RSS after the models loaded, 2026-11-27): defaults +168 MB; 2 arenas +85 MB; fixed threshold
+50 MB; ``malloc_trim(0)`` after every analysis +58 MB; both settings +41 MB. Through the real
server: docs/local-engine.md (Memory).

A setting the environment already gives (``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``) is
left as it is. Nothing is done on another C library (macOS, musl).
"""

from __future__ import annotations

import ctypes
import os
import platform

# mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 2
_SETTINGS = (
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
)


def bound_malloc() -> list[str]:
    """Apply the settings the environment does not give; the names of those applied (none
    when the C library is not glibc)."""
    if platform.libc_ver()[0] != "glibc":
        return []
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return [
        variable
        for variable, parameter, value in _SETTINGS
        if variable not in os.environ and mallopt(parameter, value) == 1
    ]

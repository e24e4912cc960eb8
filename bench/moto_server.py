"""moto's server for the benchmarks, with :mod:`worker.local.moto_speedups` applied (``--stock``:
without them, to compare). Same arguments as ``python -m moto.server``::

    python -m bench.moto_server -H 127.0.0.1 -p 5000 [--stock]
"""

from __future__ import annotations

import logging
import sys

from moto.server import main as moto_main

from worker.local import moto_speedups


def main(argv: list[str]) -> None:
    # werkzeug logs a line per request (INFO): keep its warnings and errors, as `worker embedded`.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if "--stock" in argv:
        argv = [arg for arg in argv if arg != "--stock"]
    else:
        moto_speedups.apply()
        moto_speedups.signing_key()  # made now, not during the first run measured
    moto_main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])

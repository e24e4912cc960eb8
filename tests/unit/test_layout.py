"""The layout's promises that import-linter cannot see: what `worker --help` loads."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_command_line_loads_no_local_stack() -> None:
    """The production image has no moto, dlib or worker.local: no verb may need them to start."""
    code = (
        "import sys, contextlib, io\n"
        "from worker.cli import build_parser\n"
        "build_parser()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'moto', 'dlib', 'numpy'}"
        " or m.startswith('worker.local'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""

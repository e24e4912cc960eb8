"""Imported by Python at start-up when this directory is on PYTHONPATH (see tests/integration/calls.py).

Only worker subprocesses started by the integration tests get it, and only they set the variable.
"""

import os

if os.environ.get("FACE_MATCH_CALL_LOG"):
    from tests.integration.calls import install

    install()

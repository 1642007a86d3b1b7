"""The case browser makes a Grad-CAM in a background worker and polls for it from a fragment
that reruns every second; AppTest runs no timers, so a test reruns the page itself."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

PENDING = "a worker process is loading the fold model"


def settle_gradcam(at: AppTest, timeout: float = 300) -> AppTest:
    """Rerun until the page no longer waits for a Grad-CAM worker (made, or failed with a reason)."""
    deadline = time.monotonic() + timeout
    while any(PENDING in c.value for c in at.caption):
        assert time.monotonic() < deadline, "the Grad-CAM worker did not finish"
        time.sleep(0.25)
        at.run()
    return at

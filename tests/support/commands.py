"""Commands run by the tests (Python 3.6 compatible: no ``capture_output``/``text``)."""

import subprocess
from typing import Any, List


def captured(command: List[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``command`` run to its end, its stdout and stderr kept as text; never raises on a
    non-zero exit (the tests check ``returncode``)."""
    return subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        universal_newlines=True,
        check=False,
        **kwargs,
    )

"""A full disk on demand: a small tmpfs mounted over a folder in a private user and mount
namespace (``unshare``), for one command (Python 3.6 compatible)."""

import shlex
import shutil
import subprocess
from typing import Dict, List, Optional, Tuple

from support.commands import captured


def small_disk_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = captured(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "mount -t tmpfs -o size=1m none /mnt"],
    )  # fmt: skip
    return probe.returncode == 0


def run_on_small_disk(
    folder: str,
    megabytes: float,
    command: List[str],
    env: Optional[Dict[str, str]] = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``command`` with a tmpfs of ``megabytes`` over ``folder``; its stdout ends with
    ``exit=<code>`` and then the names left in ``folder``, one per line."""
    script = "mount -t tmpfs -o size={}k none {} && {}; echo exit=$?; ls -A {}".format(
        int(megabytes * 1024),
        shlex.quote(folder),
        " ".join(shlex.quote(part) for part in command),
        shlex.quote(folder),
    )
    return captured(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        env=env,
        timeout=timeout,
    )


def exit_code_and_names(result: subprocess.CompletedProcess) -> Tuple[int, List[str]]:
    """(the command's exit code, the names left in the folder) of ``run_on_small_disk``."""
    code, _, names = result.stdout.split("exit=")[-1].partition("\n")
    return int(code), sorted(names.split())

"""What every console script shares: logging flags, value parsers, error mapping.

Python 3.6 compatible: the device-side commands run on a Jetson Nano (JetPack 4.6).
"""

import argparse
import contextlib
import logging
import math
import re
import signal
import sys
import threading
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from fanet.core.cpus import usable_cpus
from fanet.core.errors import FanetError
from fanet.core.signals import imports_uninterrupted

MAX_SIDE = 8192
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

DEVICE_HELP = "cpu or cuda (onnxruntime, torch); CPU, GPU, NPU or AUTO (openvino); default: best"

_RESOLUTION = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_resolution(text: str) -> Tuple[int, int]:
    """``"512x1024"`` -> (512, 1024); both sides in 1..8192."""
    match = _RESOLUTION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(
            "resolution must look like HEIGHTxWIDTH, e.g. 512x1024, got {!r}".format(text)
        )
    height, width = int(match.group(1)), int(match.group(2))
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise argparse.ArgumentTypeError(
            "resolution sides must be between 1 and {}, got {}x{}".format(MAX_SIDE, height, width)
        )
    return height, width


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a whole number, got {!r}".format(text)) from None


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError("expected a number >= 1, got {}".format(value))
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0, got {}".format(value))
    return value


def frame_window(text: str) -> int:
    """argparse type: a temporal attention window, a whole number of frames >= 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(
            "the temporal window must be a whole number of frames >= 1, got {}".format(value)
        )
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a learning rate, a power)."""
    return _finite(text, allow_zero=False)


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (a weight decay, a loss weight)."""
    return _finite(text, allow_zero=True)


def positive_seconds(text: str) -> float:
    """argparse type: a finite number of seconds > 0."""
    return _finite(text, allow_zero=False, unit="seconds")


def non_negative_seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0."""
    return _finite(text, allow_zero=True, unit="seconds")


def _finite(text: str, allow_zero: bool, unit: str = "a number") -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected {}, got {!r}".format(unit, text)) from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise argparse.ArgumentTypeError(
            "expected a finite {} {} 0, got {}".format(
                "number of seconds" if unit == "seconds" else "number",
                ">=" if allow_zero else ">",
                text,
            )
        )
    return value


def warn_if_oversubscribed(threads: Optional[int], log: logging.Logger) -> None:
    """A warning when ``--threads`` asks for more than 4 threads per CPU of this machine."""
    cpus = usable_cpus()
    if threads is not None and threads > 4 * cpus:
        log.warning(
            "--threads %d is more than 4 per CPU (this machine has %d): the threads will "
            "wait for each other; use at most %d",
            threads,
            cpus,
            cpus,
        )


def new_parser(prog: str, description: str, examples: Sequence[str]) -> argparse.ArgumentParser:
    """An argument parser whose --help ends with usage examples, with -v/-q flags."""
    epilog = "examples:\n" + "\n".join("  " + line for line in examples)
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    return parser


def configure_logging(verbose: int, quiet: int) -> None:
    """Logs go to stderr; INFO by default, DEBUG with -v, WARNING with -q."""
    level = logging.INFO + 10 * (quiet - verbose)
    logging.basicConfig(
        level=max(logging.DEBUG, min(level, logging.CRITICAL)),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``), raised like Ctrl-C so the same cleanup runs."""


_TERMINATIONS = []  # type: List[int]


def _raise_terminated(signum: int, frame: object) -> None:
    _TERMINATIONS.append(signum)
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM raises ``Terminated`` (main thread only)."""
    del _TERMINATIONS[:]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_command(
    prog: str,
    build_parser: Callable[[], argparse.ArgumentParser],
    body: Callable[[argparse.Namespace], int],
    argv: Optional[List[str]],
) -> int:
    """Build the parser, parse ``argv``, run ``body``; library errors become one line on
    stderr and exit 1, Ctrl-C exits 130 and SIGTERM 143, after the same cleanup (a command
    that stops early on its own, such as the benchmark, reports what it has and returns
    130). The parser is built inside, so a signal while its imports load is handled too,
    once the module importing is complete (a native library cut halfway through its
    initialisation can crash the interpreter at exit); ``prog`` names the command in
    those messages."""
    try:
        with _sigterm_as_interrupt(), imports_uninterrupted():
            parser = build_parser()
            args = parser.parse_args(argv)
            configure_logging(args.verbose, args.quiet)
            code = body(args)
    except FanetError as exc:
        print("{}: error: {}".format(prog, exc), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        how = "terminated" if _TERMINATIONS else "interrupted"
        print("{}: {}".format(prog, how), file=sys.stderr)
        code = EXIT_INTERRUPTED
    return EXIT_TERMINATED if code == EXIT_INTERRUPTED and _TERMINATIONS else code

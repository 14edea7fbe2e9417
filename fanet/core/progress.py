"""Progress bars with an ETA on stderr: tqdm where it is installed (Python 3.6 compatible).

A bar is shown while ``log`` shows INFO messages, so ``-q`` hides it with the log; where
it is not shown (or tqdm is missing) a silent stand-in takes the same calls.
"""

import logging
from typing import Any, Iterable, Iterator, Optional


class _Silent:
    def update(self, count: int = 1) -> None:
        pass

    def set_postfix(self, **values: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(
    total: Optional[int],
    unit: str,
    label: str,
    log: logging.Logger,
    done: int = 0,
    shown: bool = True,
) -> Any:
    """A bar of ``total`` ``unit``s (``done`` already), with ``update``, ``set_postfix``
    and ``close``."""
    if not shown or log.getEffectiveLevel() > logging.INFO:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, initial=done, unit=unit, desc=label)


def with_progress(
    items: Iterable[Any], total: Optional[int], unit: str, label: str, log: logging.Logger
) -> Iterator[Any]:
    """``items``, one step of a bar each."""
    bar = progress_bar(total, unit, label, log)
    try:
        for item in items:
            yield item
            bar.update(1)
    finally:
        bar.close()

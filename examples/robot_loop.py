"""A robot's perception loop: camera -> FANet labels -> drivable area (road and sidewalk).

    python examples/robot_loop.py 0 --model fanet18_512x1024_fp16.engine   # camera 0
    python examples/robot_loop.py drive.mp4 --model fanet18_512x1024.onnx --frames 100

Prints, per frame, the fraction of pixels a wheeled robot may drive on; the mask itself
is what a planner would take. Live cameras use ``latest_only``: the loop always works on
the newest frame, so its decisions are at most one frame old.
"""

import argparse
import sys

import numpy as np

from fanet.core.labels import LABEL_BY_NAME
from fanet.media.sources import open_frames
from fanet.runtime import Segmenter
from fanet.runtime.stream import StreamStats

DRIVABLE = [LABEL_BY_NAME[name].train_id for name in ("road", "sidewalk")]


def drivable_mask(labels: np.ndarray) -> np.ndarray:
    """H x W bool: pixels of a drivable class."""
    return np.isin(labels, DRIVABLE)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="camera index, video file or stream URL")
    parser.add_argument("--model", required=True, help=".engine, .onnx or checkpoint")
    parser.add_argument("--frames", type=int, help="stop after N frames")
    args = parser.parse_args(argv)

    source = open_frames(args.source)
    stats = StreamStats()
    with Segmenter.from_file(args.model) as segmenter:
        for count, (_, labels) in enumerate(
            segmenter.stream(source, latest_only=source.live, stats=stats), 1
        ):
            mask = drivable_mask(labels)
            print(f"frame {count}: drivable {mask.mean():.1%}")
            if args.frames and count >= args.frames:
                break
    latency = stats.latency_ms()
    print(
        f"{stats.frames} frames at {stats.fps():.1f} FPS, {stats.dropped} stale dropped, "
        f"capture to labels {latency.get('median', 0):.0f} ms (max {latency.get('max', 0):.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

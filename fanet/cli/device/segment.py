"""fanet-segment: segment images, folders, videos, cameras, streams and ROS 2 bags
(Python 3.6; bags need Python >= 3.7).

The runtime is imported inside the functions ``run_command`` calls, so a signal while it
loads is handled too. Progress: a bar with ETA for files (tqdm), live FPS and per-stage
latency for cameras and streams, and a summary at the end.
"""

import argparse
import logging
import time
from typing import Any, List, Optional

from fanet.cli.common import (
    DEVICE_HELP,
    frame_window,
    new_parser,
    non_negative_int,
    positive_int,
    run_command,
)
from fanet.core.errors import ConfigError

PROG = "fanet-segment"
logger = logging.getLogger("fanet.cli.device.segment")
REPORT_EVERY_S = 2.0


def build_parser() -> argparse.ArgumentParser:
    from fanet.runtime.registry import BACKEND_NAMES
    from fanet.runtime.trt.versions import PRECISIONS

    parser = new_parser(
        PROG,
        "Segment an image, a folder or glob of images, a video file, a camera (its index), "
        "an RTSP/HTTP stream or an image topic of a ROS 2 bag (.mcap) with FANet, and write "
        "label PNGs (train IDs or Cityscapes label IDs), colour PNGs, overlays, an overlay "
        "video, a ROS 2 bag of the results, or show a window.",
        [
            "fanet-segment street.png --overlay                     # newest export here",
            "fanet-segment 'val/*.png' --onnx fanet18.onnx --label-ids -o results/",
            "fanet-segment drive.mp4 --engine fanet18_fp16.engine --video drive_seg.mp4",
            "fanet-segment 0 --show --latest-only                   # camera 0, live",
            "fanet-segment rtsp://10.0.0.5/stream --video out.mp4 --limit 3000",
            "fanet-segment drive.mp4 --onnx fanet18_512x1024_t2.onnx --temporal 2 --video o.mp4",
            "fanet-segment run.mcap --topic /camera/image_raw --bag-out seg.mcap --bag-copy",
        ],
    )
    parser.add_argument(
        "source", help="image, folder, glob, video, camera index, URL or ROS 2 bag (.mcap)"
    )
    model = parser.add_argument_group("model (default: the newest FP32 export in this folder)")
    which = model.add_mutually_exclusive_group()
    which.add_argument("--onnx", help="exported ONNX (its _fp16/_int8 siblings are used)")
    which.add_argument("--engine", help="a built TensorRT engine")
    which.add_argument("--weights", help="a PyTorch checkpoint (runs on PyTorch)")
    model.add_argument(
        "--backend", default="auto", choices=BACKEND_NAMES, help="default: the best available"
    )
    model.add_argument(
        "--precision", default="fp32", choices=PRECISIONS, help="graph or engine precision"
    )
    model.add_argument("--device", help=DEVICE_HELP)
    out = parser.add_argument_group("outputs (any combination)")
    out.add_argument("-o", "--output-dir", default=".", help="folder for PNGs (default .)")
    out.add_argument("--labels", action="store_true", help="<name>_trainIds.png (0-18)")
    out.add_argument(
        "--label-ids", action="store_true", help="<name>_labelIds.png (benchmark server)"
    )
    out.add_argument("--color", action="store_true", help="<name>_color.png")
    out.add_argument("--overlay", action="store_true", help="<name>_overlay.png")
    out.add_argument("--video", metavar="FILE", help="write the overlays as a video (.mp4, .avi)")
    out.add_argument("--show", action="store_true", help="show a window (q or Esc stops)")
    out.add_argument(
        "--force", action="store_true", help="replace output files even where they are read-only"
    )
    bag = parser.add_argument_group("ROS 2 bags (rosbag2's MCAP storage)")
    bag.add_argument(
        "--topic", help="the image topic to read (default: the bag's only image topic)"
    )
    bag.add_argument(
        "--bag-out",
        metavar="FILE",
        help="write the results as a bag (.mcap): topics /fanet/<output>, each message with "
        "its camera message's times and header",
    )
    bag.add_argument(
        "--bag-outputs",
        type=_bag_outputs,
        default=["labels"],
        metavar="LIST",
        help="outputs written to --bag-out, comma-separated: labels (mono8 train IDs), "
        "label_ids, color (rgb8), overlay (bgr8); default labels",
    )
    bag.add_argument(
        "--bag-copy", action="store_true", help="copy the source bag's topics into --bag-out"
    )
    live = parser.add_argument_group("streams")
    live.add_argument(
        "--latest-only",
        action="store_true",
        help="always segment the newest frame, dropping stale ones (cameras)",
    )
    live.add_argument("--limit", type=positive_int, help="stop after N frames")
    live.add_argument(
        "--reconnects",
        type=non_negative_int,
        default=5,
        help="stream reconnect attempts (default 5)",
    )
    video = parser.add_argument_group("temporal attention (paper Sec. III-D)")
    video.add_argument(
        "--temporal",
        type=frame_window,
        metavar="T",
        help="attend over the last T frames, the state kept between frames and reset at a "
        "cut (new frame size, reconnected stream); a temporal export needs its own T",
    )
    video.add_argument(
        "--temporal-reduce",
        choices=("mean", "sum"),
        default="mean",
        help="for --weights: mean (default) or sum over the frames",
    )
    return parser


def _bag_outputs(text: str) -> List[str]:
    """argparse type: ``labels,color`` -> ["labels", "color"], each one of the outputs."""
    from fanet.media.ros_images import OUTPUTS

    chosen = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in OUTPUTS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            "choose from {}, got {!r}".format(", ".join(OUTPUTS), text)
        )
    return list(dict.fromkeys(chosen))


def _source(args: argparse.Namespace) -> Any:
    """The frame source: a bag's image topic, or what ``open_frames`` opens."""
    from fanet.media.bags import is_bag, open_bag
    from fanet.media.sources import open_frames

    if is_bag(args.source):
        return open_bag(args.source, args.topic)
    if args.topic or args.bag_out or args.bag_copy:
        raise ConfigError("--topic, --bag-out and --bag-copy read a ROS 2 bag (.mcap)")
    return open_frames(args.source, reconnects=args.reconnects)


def _model(args: argparse.Namespace) -> str:
    """The model file asked for, else the FP32 graph of the export here that
    ``ArtefactSet.find`` picks (the Segmenter runs its sibling of ``--precision``)."""
    from fanet.core.artefact_set import ArtefactSet

    if args.engine or args.weights or args.onnx:
        return args.engine or args.weights or args.onnx
    found = ArtefactSet.find(".", args.temporal)
    if found is None:
        window = " exported with --temporal {}".format(args.temporal) if args.temporal else ""
        raise ConfigError(
            "no model: pass --onnx, --engine or --weights, or run in a folder holding an "
            "export{}".format(window)
        )
    return found.graph("fp32")


def _outputs(args: argparse.Namespace, fps: Optional[float]) -> Any:
    from fanet.core.files import check_writable_folder
    from fanet.media.writers import OutputRequest, open_window

    wanted = [args.labels, args.label_ids, args.color, args.overlay, args.video, args.show]
    if not any(wanted) and not args.bag_out:
        raise ConfigError(
            "nothing to write: choose --labels, --label-ids, --color, --overlay, --video, "
            "--bag-out or --show"
        )
    if args.labels or args.label_ids or args.color or args.overlay:
        check_writable_folder(args.output_dir)
    if args.show:
        open_window()
    return OutputRequest(
        folder=args.output_dir,
        labels=args.labels,
        label_ids=args.label_ids,
        color=args.color,
        overlay=args.overlay,
        video=args.video,
        show=args.show,
        fps=fps or 30.0,
        force=args.force,
    )


def _main(args: argparse.Namespace) -> int:
    from fanet.media.sources import SourceError
    from fanet.runtime.segmenter import Segmenter
    from fanet.runtime.stream import StreamStats
    from fanet.runtime.temporal import check_window, require_window

    if args.temporal is not None:
        require_window(args.temporal)
    source = _source(args)
    writers = _Writers(args, source)  # their targets checked before any work
    model, precision = _model(args), args.precision
    options = {}
    if args.weights and args.temporal:  # a checkpoint attends to any number of frames
        options = {"temporal": args.temporal, "temporal_reduce": args.temporal_reduce}
    with Segmenter.from_file(
        model, args.backend, args.device, precision=precision, **options
    ) as segmenter:
        logger.info("model: %s", segmenter.model)
        window = check_window(segmenter.sidecar.temporal, args.temporal, model, implicit=False)
        stats = StreamStats()  # from the first frame read, not from the model's loading
        frames = _limited(source, args.limit)
        completed = interrupted = False
        try:
            with _progress(source) as progress:
                for frame, labels in segmenter.stream(
                    frames,
                    latest_only=args.latest_only,
                    pipelined=not source.live,
                    stats=stats,
                    temporal=window,
                ):
                    began = time.perf_counter()
                    writers.write(frame, labels)
                    stats.add("write", time.perf_counter() - began)
                    progress.update(stats)
                    if writers.stopped:
                        break
            completed = True
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what was written so far
            interrupted = True
            raise
        finally:
            writers.close(keep=stats.frames > 0 and (completed or interrupted))
    if not stats.frames:
        raise SourceError(
            "nothing segmented: {} had no frame that could be read ({} unreadable skipped)".format(
                args.source, source.skipped
            )
        )
    _summary(source, stats, window)
    _warn_if_behind(source, stats, args.latest_only)
    return 0


class _Writers:
    """The files ``FrameWriters`` writes, and the bag of ``--bag-out``."""

    def __init__(self, args: argparse.Namespace, source: Any) -> None:
        from fanet.media.bags import BagWriter
        from fanet.media.writers import FrameWriters

        self.files = FrameWriters(_outputs(args, source.fps))
        self.bag = None
        if args.bag_out:
            copied = args.source if args.bag_copy else None
            self.bag = BagWriter(args.bag_out, args.bag_outputs, copied, args.force)

    @property
    def stopped(self) -> bool:
        return self.files.stopped

    def write(self, frame: Any, labels: Any) -> None:
        self.files.write(frame.name, frame.image, labels)
        if self.bag is not None:
            self.bag.write(frame, labels)

    def close(self, keep: bool) -> None:
        try:
            self.files.close(keep)
        finally:
            if self.bag is not None:
                self.bag.close(keep)


def _limited(source: Any, limit: Optional[int]) -> Any:
    """The source's frames, up to ``limit``."""
    for count, frame in enumerate(source):
        if limit is not None and count >= limit:
            return
        yield frame


class _progress:
    """A tqdm bar for files; a log line every few seconds for live sources."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.bar: Any = None
        self.last_report = time.perf_counter()

    def __enter__(self) -> "_progress":
        if not self.source.live:
            from fanet.core.progress import progress_bar

            self.bar = progress_bar(self.source.count, "frame", PROG, logger)
        return self

    def update(self, stats: Any) -> None:
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.perf_counter()
        if now - self.last_report >= REPORT_EVERY_S:
            self.last_report = now
            logger.info("%.1f FPS  %s  latency %s", stats.fps(), _stages(stats), _latency(stats))

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _stages(stats: Any) -> str:
    return "  ".join("{} {:.1f} ms".format(stage, ms) for stage, ms in stats.milliseconds().items())


def _latency(stats: Any) -> str:
    """Capture-to-labels milliseconds, as ``StreamStats.latency_ms`` reports them."""
    latency = stats.latency_ms()
    if not latency:
        return "-"
    return "{median:.0f} ms (p99 {p99:.0f}, max {max:.0f})".format(**latency)


def _summary(source: Any, stats: Any, window: int) -> None:
    if source.kind == "images":  # files: no capture, no stream to drop or reconnect
        logger.info(
            "%d images at %.1f FPS (%s); %d unreadable skipped",
            stats.frames,
            stats.fps(),
            _stages(stats),
            source.skipped,
        )
        return
    temporal = "; {}-frame attention, its state reset at {} cuts".format(window, stats.cuts)
    logger.info(
        "%d frames at %.1f FPS (%s); capture to labels %s; %d unreadable skipped, "
        "%d lost, %d dropped as stale, %d size changes, %d reconnects%s",
        stats.frames,
        stats.fps(),
        _stages(stats),
        _latency(stats),
        source.skipped,
        source.lost,
        stats.dropped,
        source.size_changes,
        source.reconnects,
        temporal if window > 1 else "",
    )


def _warn_if_behind(source: Any, stats: Any, latest_only: bool) -> None:
    """A live source faster than the model, read without --latest-only: its frames wait in
    the reader's buffer, longer and longer, before the capture-to-labels clock starts."""
    if source.live and not latest_only and source.fps and stats.fps() < 0.9 * source.fps:
        logger.warning(
            "%s sends %.0f FPS and %.1f FPS were segmented: frames waited in the stream's "
            "buffer (not counted in the latency above); --latest-only keeps up by dropping "
            "stale frames",
            source.spec,
            source.fps,
            stats.fps(),
        )


def main(argv: Optional[List[str]] = None) -> int:
    return run_command(PROG, build_parser, _main, argv)


if __name__ == "__main__":
    raise SystemExit(main())

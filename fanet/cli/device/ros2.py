"""fanet-ros2: the ROS 2 segmentation node (Python 3.6 compatible).

Its settings are ROS parameters (``--ros-args -p model:=fanet18.engine``); the arguments
after ``--ros-args`` (up to ``--``) go to ROS, the others to this command. The model is
loaded before the node spins, so a missing or bad one is one line and exit 1. SIGINT and
SIGTERM stop the node after the frame in flight, with a summary and exit 0.
"""

import argparse
import logging
import sys
from typing import Any, Dict, List, Optional, Tuple

from fanet.cli.common import new_parser, run_command
from fanet.core.errors import ConfigError

PROG = "fanet-ros2"
NODE_NAME = "fanet"
SPIN_TIMEOUT_S = 0.2  # how often the main thread comes back to Python (for Ctrl-C)
logger = logging.getLogger("fanet.cli.device.ros2")


def build_parser() -> argparse.ArgumentParser:
    from fanet.ros2.settings import PARAMETERS

    parameters = "\n".join(
        "  {:<20} {:<14} {}".format(name, _shown(default), meaning)
        for name, default, meaning in PARAMETERS
    )
    parser = new_parser(
        PROG,
        "Run FANet as a ROS 2 node: sensor_msgs/Image (bgr8, rgb8, mono8) or CompressedImage "
        "(jpeg, png) in; ~/labels (mono8 train IDs), ~/label_ids, ~/color (rgb8) and "
        "~/overlay (bgr8) out, each with the camera message's header; frames dropped, never "
        "queued, while the model is busy; ~/reset (std_srvs/Trigger) restarts a temporal "
        "model; FPS, per-stage ms, latency and drops on /diagnostics.\n\n"
        "parameters (--ros-args -p NAME:=VALUE):\n" + parameters,
        [
            "fanet-ros2 --ros-args -p model:=fanet18_512x1024_fp16.engine "
            "-p input_topic:=/camera/image_raw",
            "fanet-ros2 --ros-args -p model:=fanet18_512x1024.onnx -p precision:=int8 "
            "-p color:=true -r __node:=fanet_front",
            "fanet-ros2 --ros-args -p input_topic:=/camera/image_raw/compressed "
            "-p overlay:=true        # the export in this folder",
            "fanet-ros2 --ros-args --params-file fanet.yaml",
            "ros2 launch examples/ros2/fanet.launch.py model:=fanet18_512x1024_fp16.engine",
        ],
    )
    return parser


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    return repr(default) if default == "" else str(default)


def split_ros_args(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(this command's arguments, ROS's): ROS's run from ``--ros-args`` to ``--`` or the
    end, as many times as given."""
    own: List[str] = []
    ros: List[str] = []
    inside = False
    for argument in argv:
        if argument == "--ros-args":
            inside = True
            ros.append(argument)
        elif inside and argument == "--":
            inside = False
        else:
            (ros if inside else own).append(argument)
    return own, ros


def _main(args: argparse.Namespace, ros_args: List[str]) -> int:
    from fanet.ros2.node import ros_modules

    ros = ros_modules()
    context = ros.rclpy.context.Context()
    _init(ros.rclpy, [PROG] + ros_args, context)
    try:
        node = ros.rclpy.create_node(NODE_NAME, context=context)
        try:
            return _serve(ros, node, context)
        finally:
            node.destroy_node()
    finally:
        if context.ok():
            context.shutdown()


def _init(rclpy: Any, argv: List[str], context: Any) -> None:
    """``rclpy.init`` leaving SIGINT and SIGTERM to this command where rclpy allows (9.x;
    older ones shut the context down themselves, which ends the spin just as well)."""
    try:
        from rclpy.signals import SignalHandlerOptions

        options = {"signal_handler_options": SignalHandlerOptions.NO}
    except ImportError:
        options = {}
    try:
        rclpy.init(args=argv, context=context, **options)
    except Exception as exc:  # rcl's own error for arguments it cannot parse
        raise ConfigError("ROS arguments {}: {}".format(" ".join(argv[1:]), exc)) from None


def _serve(ros: Any, node: Any, context: Any) -> int:
    from fanet.ros2.node import SegmentationNode, declare_settings
    from fanet.runtime.registry import CHECKPOINT_SUFFIXES
    from fanet.runtime.segmenter import Segmenter
    from fanet.runtime.temporal import check_window

    settings = declare_settings(node)
    model = settings.model or _export_here(settings.temporal or None)
    options: Dict[str, Any] = {}
    if model.lower().endswith(CHECKPOINT_SUFFIXES) and settings.temporal:
        options["temporal"] = settings.temporal  # a checkpoint attends to any number
    device = settings.device or None
    with Segmenter.from_file(
        model, settings.backend, device, precision=settings.precision, **options
    ) as segmenter:
        window = check_window(segmenter.sidecar.temporal, settings.temporal or None, model)
        running = SegmentationNode(node, segmenter, settings, window if window > 1 else None)
        executor = ros.rclpy.executors.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        try:
            while context.ok():
                executor.spin_once(timeout_sec=SPIN_TIMEOUT_S)
        except KeyboardInterrupt:  # SIGINT, or SIGTERM (``Terminated``)
            pass
        except Exception as exc:  # rclpy's ExternalShutdownException (older rclpy)
            if context.ok():
                raise
            logger.debug("spin ended: %s", exc)
        finally:
            running.close()
            executor.shutdown()
        _summary(running)
    return 0


def _export_here(temporal: Optional[int]) -> str:
    from fanet.core.artefact_set import ArtefactSet

    found = ArtefactSet.find(".", temporal)
    if found is None:
        raise ConfigError(
            "no model: set it with --ros-args -p model:=FILE (an engine, ONNX or checkpoint), "
            "or run in a folder holding an export"
        )
    return found.graph("fp32")


def _summary(running: Any) -> None:
    metrics = running.metrics
    latency = metrics.capture_to_publish.milliseconds()
    logger.info(
        "%d frames of %d received (%d missed before the node); %d dropped as stale, "
        "%d unreadable skipped, %d failed; capture to publish %s",
        metrics.stats.frames,
        metrics.received,
        metrics.missed,
        running.inbox.dropped,
        metrics.skipped,
        metrics.errors,
        "{median:.0f} ms (p99 {p99:.0f}, max {max:.0f})".format(**latency) if latency else "-",
    )


def main(argv: Optional[List[str]] = None) -> int:
    own, ros_args = split_ros_args(sys.argv[1:] if argv is None else argv)
    return run_command(PROG, build_parser, lambda args: _main(args, ros_args), own)


if __name__ == "__main__":
    raise SystemExit(main())

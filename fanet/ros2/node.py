"""The segmentation node: camera images in, labels out, on any backend (Python 3.6
compatible; rclpy is imported when a node is made).

    node = rclpy.create_node("fanet")
    settings = declare_settings(node)               # the parameters, checked
    with Segmenter.from_file(settings.model) as segmenter:
        SegmentationNode(node, segmenter, settings)
        rclpy.spin(node)

The subscription (sensor-data QoS by default) hands each message to ``NewestOnly``; one
inference thread segments the newest, so a model slower than the camera drops frames
(counted) instead of queueing them. Each output (``~/labels``, ``~/label_ids``,
``~/color``, ``~/overlay``) is a ``sensor_msgs/msg/Image`` at the camera image's size with
the camera message's header, stamp and frame_id unchanged. A temporal model's state is
reset when the frame size changes, when a stamp goes back (a bag played in a loop) and on
the ``~/reset`` service (``std_srvs/srv/Trigger``). Every ``diagnostics_period`` seconds
the node reports on ``/diagnostics`` (``diagnostics.report``). A message that cannot be
read is skipped and logged once per reason; a frame whose inference fails is counted and
logged, and the node goes on.
"""

import threading
import time
from typing import Any, Dict, Iterator, NamedTuple, Optional, Set

from fanet.core.errors import ConfigError, FanetError
from fanet.media import ros_images
from fanet.media.sources import Frame, Recorded
from fanet.ros2.diagnostics import ERROR, OK, WARN, NodeMetrics, report
from fanet.ros2.inbox import NewestOnly
from fanet.ros2.settings import PARAMETERS, NodeSettings, settings_from

OUTPUT_DEPTH = 5  # output topics: reliable, keep last 5 (any subscriber matches)
DIAGNOSTICS_DEPTH = 10


class _Ros(NamedTuple):
    """The ROS 2 modules the node uses."""

    rclpy: Any
    qos: Any  # rclpy.qos
    Image: Any
    CompressedImage: Any
    Trigger: Any
    DiagnosticArray: Any
    DiagnosticStatus: Any
    KeyValue: Any


def ros_modules() -> _Ros:
    """rclpy and the message packages, or ``ConfigError`` naming what to install."""
    try:
        import rclpy
        import rclpy.context
        import rclpy.executors
        import rclpy.qos
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from sensor_msgs.msg import CompressedImage, Image
        from std_srvs.srv import Trigger
    except ImportError as exc:
        raise ConfigError(
            "the ROS 2 node needs rclpy, sensor_msgs, std_srvs and diagnostic_msgs ({}): "
            "source your ROS 2 setup.bash, or pip install 'fanet[ros2]'".format(exc)
        ) from None
    return _Ros(
        rclpy,
        rclpy.qos,
        Image,
        CompressedImage,
        Trigger,
        DiagnosticArray,
        DiagnosticStatus,
        KeyValue,
    )


def declare_settings(node: Any) -> NodeSettings:
    """Declare the node's parameters (``settings.PARAMETERS``) on ``node`` and return their
    values, checked; ``ConfigError`` in one line for a bad one."""
    values = {}
    for name, default, _meaning in PARAMETERS:
        try:
            values[name] = node.declare_parameter(name, default).value
        except Exception as exc:  # rclpy's InvalidParameterTypeException and kin
            raise ConfigError("parameter {}: {}".format(name, exc)) from None
    return settings_from(values)


class SegmentationNode:
    """Segments ``settings.input_topic`` on ``node`` with ``segmenter`` (see the module
    docstring); ``close()`` stops the inference thread. The caller spins ``node``."""

    def __init__(
        self, node: Any, segmenter: Any, settings: NodeSettings, window: Optional[int] = None
    ) -> None:
        """``window``: frames of temporal attention (None: the model's own)."""
        self.ros = ros_modules()
        self.node = node
        self.segmenter = segmenter
        self.settings = settings
        self.window = window
        self.metrics = NodeMetrics()
        self.inbox = NewestOnly()
        self._cuts = 0  # resets asked for (service) or found (a stamp going back)
        self._logged: Set[str] = set()
        self._closed = threading.Event()
        ros = self.ros
        self._outputs = {
            name: node.create_publisher(ros.Image, "~/" + name, OUTPUT_DEPTH)
            for name in settings.outputs
        }
        self._diagnostics = node.create_publisher(
            ros.DiagnosticArray, "/diagnostics", DIAGNOSTICS_DEPTH
        )
        self._reset_service = node.create_service(ros.Trigger, "~/reset", self._reset)
        self._timer = node.create_timer(settings.diagnostics_period, self._report)
        self._worker = threading.Thread(target=self._work, name="fanet-ros2", daemon=True)
        self._worker.start()
        message_type = ros.CompressedImage if settings.compressed else ros.Image
        self._last_sequence: Dict[str, int] = {}
        received = self._received_with_info if _gives_message_info() else self._received
        self._subscription = node.create_subscription(
            message_type, settings.input_topic, received, self._input_qos()
        )
        node.get_logger().info(
            "segmenting {} ({}) with {} on {}, {}; publishing {}".format(
                self._subscription.topic_name,
                "CompressedImage" if settings.compressed else "Image",
                segmenter.model or "the model",
                segmenter.backend.name,
                settings.precision,
                ", ".join(publisher.topic_name for publisher in self._outputs.values()),
            )
        )

    def _input_qos(self) -> Any:
        if self.settings.qos == "sensor_data":
            return self.ros.qos.qos_profile_sensor_data
        return self.ros.qos.QoSProfile(depth=1)

    def close(self) -> None:
        """Stop taking frames and wait for the inference thread (a frame in flight is
        finished and published)."""
        self._closed.set()
        self.inbox.close()
        self._worker.join()

    def _received(self, message: Any) -> None:
        self.metrics.received += 1
        self.inbox.put((message, time.perf_counter()))

    def _received_with_info(self, message: Any, info: Any) -> None:
        """A message, and the camera's messages that never reached this callback (rclpy >=
        9: a gap in the publisher's sequence numbers)."""
        number = info.get("publication_sequence_number")
        if number:
            publisher = str(info.get("publisher_gid"))
            last = self._last_sequence.get(publisher)
            if last is not None and number > last + 1:
                self.metrics.missed += number - last - 1
            self._last_sequence[publisher] = number
        self._received(message)

    def _reset(self, request: Any, response: Any) -> Any:
        self._cuts += 1
        response.success = True
        response.message = "the temporal state starts again with the next frame"
        if self.segmenter.sidecar.temporal <= 1 and not self.window:
            response.message = "not a temporal model: nothing to reset"
        return response

    def _work(self) -> None:
        """Segment frames until closed; a frame that fails is counted and logged, and the
        next one starts a new stream."""
        while not self._closed.is_set():
            try:
                for frame, labels in self.segmenter.stream(
                    self._frames(), stats=self.metrics.stats, temporal=self.window
                ):
                    self._publish(frame, labels)
                return
            except Exception as exc:  # the node goes on: counted, and said once per kind
                self.metrics.errors += 1
                reason = (
                    str(exc)
                    if isinstance(exc, FanetError)
                    else "{}: {}".format(type(exc).__name__, exc)
                )
                self._log_once("a frame failed: {}".format(reason), error=True)

    def _frames(self) -> Iterator[Frame]:
        """The newest message, decoded, each time the model is ready for one."""
        previous_stamp = None
        while True:
            taken = self.inbox.take()
            if taken is None:
                return  # closed
            message, received = taken
            began = time.perf_counter()
            try:
                image = ros_images.decode(message, self.settings.compressed)
                header = ros_images.header_of(message)
            except ros_images.UnreadableImage as exc:
                self.metrics.skipped += 1
                self._log_once("{}: {}: skipped".format(self.settings.input_topic, exc))
                continue
            if previous_stamp is not None and header.stamp_ns < previous_stamp:
                self._cuts += 1  # a bag played again from its start
            previous_stamp = header.stamp_ns
            self.metrics.stats.add("decode", time.perf_counter() - began)
            recorded = Recorded(self.settings.input_topic, 0, 0, header)
            yield Frame("", image, received, self._cuts, recorded)

    def _publish(self, frame: Frame, labels: Any) -> None:
        began = time.perf_counter()
        assert frame.recorded is not None
        header = frame.recorded.header
        for output, pixels, encoding in ros_images.rendered(
            list(self._outputs), frame.image, labels
        ):
            message = _filled(self.ros.Image(), ros_images.image_fields(header, pixels, encoding))
            self._outputs[output].publish(message)
        self.metrics.stats.add("publish", time.perf_counter() - began)
        if header.stamp_ns > 0:
            now = self.node.get_clock().now().nanoseconds
            self.metrics.capture_to_publish.add((now - header.stamp_ns) / 1e9)

    def _report(self) -> None:
        ros = self.ros
        about = [
            ("model", self.segmenter.model),
            ("backend", self.segmenter.backend.name),
            ("precision", self.settings.precision),
            ("input topic", self._subscription.topic_name),
        ]
        status = report(self.metrics, self.inbox.dropped, about)
        levels = {
            OK: ros.DiagnosticStatus.OK,
            WARN: ros.DiagnosticStatus.WARN,
            ERROR: ros.DiagnosticStatus.ERROR,
        }
        message = ros.DiagnosticArray()
        message.header.stamp = self.node.get_clock().now().to_msg()
        message.status = [
            ros.DiagnosticStatus(
                level=levels[status.level],
                name="fanet: {}".format(self.node.get_fully_qualified_name()),
                message=status.message,
                hardware_id=self.segmenter.model,
                values=[ros.KeyValue(key=key, value=value) for key, value in status.values],
            )
        ]
        self._diagnostics.publish(message)

    def _log_once(self, text: str, error: bool = False) -> None:
        if text in self._logged:
            return
        self._logged.add(text)
        logger = self.node.get_logger()
        (logger.error if error else logger.warning)(text + " (logged once)")


def _gives_message_info() -> bool:
    """Whether subscription callbacks can take the message's info (rclpy >= 9)."""
    import rclpy.subscription

    return hasattr(rclpy.subscription, "MessageInfo")


def _filled(message: Any, fields: Dict[str, Any]) -> Any:
    """``message`` with ``fields`` set, nested ones (dicts) in place."""
    for name, value in fields.items():
        if isinstance(value, dict):
            _filled(getattr(message, name), value)
        else:
            setattr(message, name, value)
    return message

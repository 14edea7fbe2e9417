"""ROS 2 recordings in and out: rosbag2's MCAP files (Python 3.6 syntax; reading and writing
need ``mcap`` and ``mcap-ros2-support``, Python >= 3.7: the ``bags`` extra).

``open_bag(path, topic)`` is a ``FrameSource`` of one image topic (``sensor_msgs/msg/Image``
or ``CompressedImage``), read in log-time order. Each ``Frame`` carries where it was
recorded (``Recorded``: topic, log and publish times, header), and its ``sequence`` grows
where the topic's time jumps (a header stamp that goes back, or forward by more than
``JUMP_S``), so a temporal model starts again there. Messages that cannot be read are
skipped, each kind of fault logged once; a bag cut short is read up to the cut, and said.

``BagWriter`` writes the chosen outputs (``ros_images.OUTPUTS``) as topics under
``/fanet/`` (the node's own names), each message with its source message's log and
publish times and header, so the result replays with ``ros2 bag play`` and lines up with
the camera in Foxglove; ``copy_from`` copies every topic of the source bag along. The file
is written under a temporary name and renamed into place when it is complete.
"""

import collections
import logging
import os
import struct
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Set, Tuple, Type

import numpy as np

from fanet.core.errors import ConfigError
from fanet.core.files import check_replaceable, publish, temporary_beside, write_failure
from fanet.media import ros_images
from fanet.media.sources import Frame, FrameSource, Recorded, SourceError

logger = logging.getLogger(__name__)

BAG_SUFFIX = ".mcap"
MCAP_MAGIC = b"\x89MCAP0\r\n"
JUMP_S = 1.0  # a topic's stamps moving forward by more than this: a cut
OUTPUT_NAMESPACE = "/fanet/"  # output topics: /fanet/labels, /fanet/color, ...
IMAGE_DEFINITION = """std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data

================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id

================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec
"""  # sensor_msgs/msg/Image as rosbag2 records its definition (ros2msg)


def is_bag(spec: str) -> bool:
    """Whether ``spec`` names a ROS 2 MCAP bag (by its name)."""
    return spec.lower().endswith(BAG_SUFFIX)


def output_topic(output: str) -> str:
    """The topic an output is written to: ``/fanet/labels`` for ``labels``."""
    return OUTPUT_NAMESPACE + output


def _mcap() -> Any:
    """The ``mcap_ros2.decoder.DecoderFactory`` class, or one line on what to install."""
    try:
        from mcap_ros2.decoder import DecoderFactory
    except ImportError:
        raise ConfigError(
            "ROS 2 bags need mcap and mcap-ros2-support (Python >= 3.7): pip install 'fanet[bags]'"
        ) from None
    return DecoderFactory


def _read_errors() -> Tuple[Type[BaseException], ...]:
    """What mcap raises on a file that is cut short or not MCAP."""
    from mcap.exceptions import McapError

    return (McapError, struct.error, ValueError, EOFError)


class _Topic(NamedTuple):
    name: str
    type: str
    messages: int


class _Message(NamedTuple):
    topic: str
    type: str
    schema: Any  # mcap.records.Schema
    record: Any  # mcap.records.Message: log_time, publish_time, sequence
    decoded: Any  # the ROS message, its fields as attributes


class _Bag:
    """An MCAP file read for its ROS 2 messages: in log-time order through its index, or,
    for a file cut short (no summary), in file order up to the cut, said once."""

    def __init__(self, path: str) -> None:
        if not os.path.isfile(path):
            raise SourceError("no such bag: {}".format(path))
        self.path = path
        self._decoders = _mcap()()
        from mcap.reader import make_reader

        try:
            with open(path, "rb") as stream:
                self._summary = make_reader(stream).get_summary()
        except _read_errors():
            self._summary = None
        if self._summary is None:
            with open(path, "rb") as stream:
                if stream.read(len(MCAP_MAGIC)) != MCAP_MAGIC:
                    raise SourceError("{} is not an MCAP file".format(path))
            logger.warning(
                "%s has no index (a recording cut short?): read in file order up to the cut", path
            )

    @property
    def indexed(self) -> bool:
        """Whether the bag has its summary: it was closed properly."""
        return self._summary is not None

    def topics(self) -> List[_Topic]:
        """The bag's topics, their types and message counts."""
        if self._summary is None:
            scanned = collections.Counter(
                (found.topic, found.type) for found in self.messages(decode=False)
            )
            return [_Topic(name, kind, count) for (name, kind), count in sorted(scanned.items())]
        summary = self._summary
        counts = summary.statistics.channel_message_counts if summary.statistics else {}
        return [
            _Topic(channel.topic, summary.schemas[channel.schema_id].name, counts.get(key, 0))
            for key, channel in sorted(summary.channels.items())
            if channel.schema_id in summary.schemas
        ]

    def messages(self, topic: Optional[str] = None, decode: bool = True) -> Iterator[_Message]:
        """The messages of ``topic`` (all without), each decoded when ``decode``."""
        from mcap.reader import make_reader
        from mcap.records import Channel, Message, Schema
        from mcap.stream_reader import StreamReader

        read = 0
        try:
            with open(self.path, "rb") as stream:
                if self._summary is not None:
                    topics = None if topic is None else [topic]
                    for schema, channel, record in make_reader(stream).iter_messages(topics):
                        read += 1
                        yield self._message(schema, channel, record, decode)
                    return
                schemas: Dict[int, Any] = {}
                channels: Dict[int, Any] = {}
                for found in StreamReader(stream).records:
                    if isinstance(found, Schema):
                        schemas[found.id] = found
                    elif isinstance(found, Channel):
                        channels[found.id] = found
                    elif isinstance(found, Message) and found.channel_id in channels:
                        channel = channels[found.channel_id]
                        if topic is None or channel.topic == topic:
                            read += 1
                            yield self._message(
                                schemas.get(channel.schema_id), channel, found, decode
                            )
        except _read_errors() as exc:
            if not decode:
                return  # a scan for the topics: the reading pass says it
            logger.warning(
                "%s ends early, after %d messages%s (%s): a recording cut short?",
                self.path, read, " of " + topic if topic else "", str(exc) or type(exc).__name__,
            )  # fmt: skip

    def _message(self, schema: Any, channel: Any, record: Any, decode: bool) -> _Message:
        kind = schema.name if schema is not None else ""
        decoded = None
        if decode:
            decoder = self._decoders.decoder_for(channel.message_encoding, schema)
            if decoder is None:
                raise SourceError("{}: cannot decode {} ({} messages)".format(
                    self.path, channel.topic, channel.message_encoding))  # fmt: skip
            decoded = decoder(record.data)
        return _Message(channel.topic, kind, schema, record, decoded)


def open_bag(path: str, topic: Optional[str] = None) -> FrameSource:
    """The frames of ``topic`` in the bag at ``path``: the bag's one image topic when not
    named. ``SourceError`` lists the image topics when the one asked for is not there."""
    bag = _Bag(path)
    images = [found for found in bag.topics() if found.type in ros_images.IMAGE_TYPES]
    chosen = [found for found in images if topic is None or found.name == topic]
    if len(chosen) != 1:
        listing = ", ".join("{} ({}, {} messages)".format(*found) for found in images)
        if not images:
            cut = "" if bag.indexed else " before it is cut short"
            raise SourceError("{} has no image topic ({} or {}){}".format(
                path, *ros_images.IMAGE_TYPES, cut))  # fmt: skip
        if topic is None:
            raise SourceError("{} has several image topics: choose one with --topic: {}".format(
                path, listing))  # fmt: skip
        raise SourceError("{} has no image topic {}; its image topics: {}".format(
            path, topic, listing))  # fmt: skip
    source = FrameSource("bag", path, chosen[0].messages or None, lambda: _frames(source, bag))
    source.topic = chosen[0].name
    return source


def _frames(source: FrameSource, bag: _Bag) -> Iterator[Frame]:
    unreadable: Set[str] = set()
    previous_stamp = None
    sequence = index = 0
    for message in bag.messages(source.topic):
        try:
            image = ros_images.decode(message.decoded, message.type == ros_images.COMPRESSED_TYPE)
            header = ros_images.header_of(message.decoded)
        except ros_images.UnreadableImage as exc:
            _skip(source, unreadable, "{}: {}".format(message.topic, exc))
            continue
        if previous_stamp is not None and _jumped(previous_stamp, header.stamp_ns):
            sequence += 1
            logger.info("%s: time jumps at message %d: a cut", message.topic, index)
        previous_stamp = header.stamp_ns
        record = message.record
        recorded = Recorded(message.topic, record.log_time, record.publish_time, header)
        yield Frame("frame_{:06d}".format(index), image, time.perf_counter(), sequence, recorded)
        index += 1


def _jumped(previous_ns: int, stamp_ns: int) -> bool:
    return stamp_ns < previous_ns or stamp_ns - previous_ns > JUMP_S * ros_images.NANOSECONDS


def _skip(source: FrameSource, logged: Set[str], reason: str) -> None:
    """Count a message that cannot be read; log each reason once."""
    source.skipped += 1
    if reason not in logged:
        logged.add(reason)
        logger.warning("%s: skipped (further messages like it are skipped silently)", reason)


class BagWriter:
    """Writes ``outputs`` of each segmented frame to an MCAP bag at ``path`` (see the module
    docstring); ``close(keep)`` finishes it, renamed into place when ``keep``."""

    def __init__(
        self,
        path: str,
        outputs: List[str],
        copy_from: Optional[str] = None,
        force: bool = False,
    ) -> None:
        _mcap()
        from mcap_ros2.writer import Writer

        if not is_bag(path):
            raise ConfigError("--bag-out {}: name it .mcap (rosbag2's MCAP storage)".format(path))
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ConfigError("--bag-out folder {} does not exist".format(os.path.dirname(path)))
        if copy_from and os.path.abspath(copy_from) == os.path.abspath(path):
            raise ConfigError("--bag-out {} is the bag being read".format(path))
        check_replaceable(path, force)
        self.path = path
        self.outputs = outputs
        self.copy_from = copy_from
        self.force = force
        self.messages = 0
        self._temporary = temporary_beside(path, BAG_SUFFIX)
        self._stream = open(self._temporary, "wb")  # noqa: SIM115 (closed by close())
        self._writer = Writer(self._stream)
        self._image_schema = self._writer.register_msgdef(ros_images.IMAGE_TYPE, IMAGE_DEFINITION)

    def write(self, frame: Frame, labels: np.ndarray) -> None:
        """The outputs of ``frame`` (from ``open_bag``) with its times and header."""
        recorded = frame.recorded
        if recorded is None:
            raise ConfigError("--bag-out needs a ROS 2 bag as the source")
        for output, pixels, encoding in ros_images.rendered(self.outputs, frame.image, labels):
            self._writer.write_message(
                output_topic(output),
                self._image_schema,
                ros_images.image_fields(recorded.header, pixels, encoding),
                log_time=recorded.log_time_ns,
                publish_time=recorded.publish_time_ns,
                sequence=self.messages,
            )
            self.messages += 1

    def close(self, keep: bool = True) -> None:
        """Copy the source bag's topics (``copy_from``), finish the file and rename it into
        place when ``keep``; else remove it."""
        try:
            if keep:
                if self.copy_from:
                    self._copy(self.copy_from)
                self._writer.finish()
                self._stream.close()
                check_replaceable(self.path, self.force)
                publish(self._temporary, self.path)
        except OSError as exc:
            raise write_failure(exc, self.path) from None
        finally:
            self._stream.close()
            if os.path.exists(self._temporary):
                os.remove(self._temporary)

    def _copy(self, source: str) -> None:
        """Every message of ``source``, re-encoded with its own schema and times."""
        schemas: Dict[int, Any] = {}
        for message in _Bag(source).messages():
            if message.schema is None:
                continue  # a channel without a schema: nothing to encode it with
            if message.schema.id not in schemas:
                schemas[message.schema.id] = self._writer.register_msgdef(
                    message.schema.name, message.schema.data.decode()
                )
            self._writer.write_message(
                message.topic,
                schemas[message.schema.id],
                message.decoded,
                log_time=message.record.log_time,
                publish_time=message.record.publish_time,
                sequence=message.record.sequence,
            )

"""Segmenter: uint8 image in, Cityscapes train-ID map out, on any backend (Python 3.6).

    seg = Segmenter.from_file("fanet18_512x1024_fp16.engine")   # or .onnx / .pth
    labels = seg(image_bgr)                  # H x W uint8 train IDs at the image's size
    cv2.imshow("fanet", seg.overlay(image_bgr, labels))

Resizing policy: a graph with a fixed input size gets the image resized bilinearly to
that size; a dynamic graph gets the image at its own size. Logits (1/8 resolution) are
upsampled bilinearly with align_corners=True to the image size, as the authors' code
does, then argmax'd. Label outputs (``--output labels``) are resized nearest-neighbour.
"""

import logging
import os
import threading
from typing import Any, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from fanet.core.labels import blend, colorize
from fanet.core.postprocess import upsampled_argmax
from fanet.core.preprocess import as_color_image, preprocess
from fanet.core.sidecar import Sidecar
from fanet.runtime.backend import Backend, BackendError, TensorSpec
from fanet.runtime.stream import StreamStats, stream
from fanet.runtime.temporal import TemporalSession

logger = logging.getLogger(__name__)


class Segmenter:
    """Segments images with a backend described by a sidecar.

    The image goes to the input the sidecar names and the labels come from the output it
    names; a graph's other inputs (state, such as temporal attention's) are passed with
    ``extra`` and its other outputs are returned by ``run``.

    A temporal model (``fanet-export --temporal T``) segments frames in turn: with
    ``stream`` or a ``temporal_session``, which keep its attention state between frames.

    Thread safety: threads may share one Segmenter. Pre- and post-processing run in the
    calling thread; inference runs one call at a time under a lock inside (TensorRT
    execution contexts are not reentrant). For parallel inference, use one Segmenter
    per thread. A temporal session holds the Segmenter's state: one at a time.
    """

    def __init__(
        self, backend: Backend, sidecar: Sidecar, rgb: bool = False, model: str = ""
    ) -> None:
        self.backend = backend
        self.model = model  # the file it runs (from_file), for logs and reports
        self.sidecar = sidecar
        self.rgb = rgb
        self._input = _named(backend.input_specs, sidecar.input_name, "input")
        output = _named(backend.output_specs, sidecar.output_tensor, "output")
        _check_against_graph(sidecar, self._input, output)
        self.input_size = sidecar.input_size or _fixed_size(self._input)  # lone ONNX: graph's
        self._output = output.name
        self.inference_lock = threading.Lock()
        self.session_lock = threading.Lock()
        self.extra_inputs = [s for s in backend.input_specs if s.name != self._input.name]

    @classmethod
    def from_file(
        cls,
        path: Any,
        backend: str = "auto",
        device: Optional[str] = None,
        rgb: bool = False,
        **options: Any,
    ) -> "Segmenter":
        """A Segmenter for an ``.engine``, ``.onnx`` or ``.pth``/``.pt``/``.pkl`` file
        (a ``str`` or ``os.PathLike``) or a torch module; ``options`` are ``precision``
        and the backend's own. For an ONNX, ``precision`` picks the sibling graph of an
        export as ``--precision`` does (a missing one is an error). The backend is closed
        again if the Segmenter cannot be made."""
        from fanet.runtime.registry import is_path, open_model, sidecar_for

        model, opened = open_model(path, backend=backend, device=device, **options)
        name = os.fspath(model) if is_path(model) else type(model).__name__
        try:
            return cls(opened, sidecar_for(model, opened), rgb=rgb, model=name)
        except BaseException:
            opened.close()
            raise

    def feed(self, image: np.ndarray) -> np.ndarray:
        """The preprocessed 1 x 3 x h x w input tensor for ``image``."""
        batch = preprocess(
            image,
            size=self.input_size,
            rgb=self.rgb,
            mean=self.sidecar.mean,
            std=self.sidecar.std,
        )
        return batch.astype(self._input.dtype, copy=False)

    def inputs(
        self, image: np.ndarray, extra: Optional[Dict[str, np.ndarray]] = None
    ) -> Dict[str, np.ndarray]:
        """The backend's inputs for ``image``, with the graph's other inputs from ``extra``."""
        feed = dict(extra or {})
        carried = {tensor.input for tensor in self.backend.bound_state}
        missing = [s.name for s in self.extra_inputs if s.name not in set(feed) | carried]
        if missing and self.sidecar.temporal > 1:
            raise BackendError(
                "the model is temporal ({} frames) and reads its state {} from the frame "
                "before: segment frames with stream() or temporal_session(), or pass the "
                "state as extra".format(self.sidecar.temporal, ", ".join(missing))
            )
        if missing:
            raise BackendError(
                "the model also needs input(s) {}; pass them as extra".format(", ".join(missing))
            )
        feed[self._input.name] = self.feed(image)
        return feed

    def run(
        self, image: np.ndarray, extra: Optional[Dict[str, np.ndarray]] = None
    ) -> Dict[str, np.ndarray]:
        """Every output of the model for one image, by name (state outputs included)."""
        return self.infer(self.inputs(image, extra))

    def infer(self, feed: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Every output for prepared ``inputs``, one call at a time across threads."""
        with self.inference_lock:
            return self.backend.infer(feed)

    def stream(
        self,
        frames: Iterable[np.ndarray],
        latest_only: bool = False,
        pipelined: bool = False,
        stats: Optional[StreamStats] = None,
        temporal: Optional[int] = None,
    ) -> Iterator[Tuple[Any, np.ndarray]]:
        """Yield ``(frame, labels)`` for any iterable of frames. ``latest_only``: always
        the newest frame, stale ones dropped and counted in ``stats.dropped`` (live
        cameras); ``pipelined``: preprocess frame t+1 while frame t is inferred;
        ``temporal``: the frames the model's attention spans (None: the model's own),
        its state kept between frames and reset at a cut (a new frame size, a stream
        reconnected)."""
        return stream(self, frames, latest_only, pipelined, stats, temporal)

    def temporal_session(self, window: Optional[int] = None) -> TemporalSession:
        """Frames in turn with the model's attention state kept between them
        (``fanet.runtime.temporal``); ``window`` is checked against the model's."""
        return TemporalSession(self, window)

    def logits(self, image: np.ndarray) -> np.ndarray:
        """Raw model output for one image: classes x h/8 x w/8 float32 logits."""
        return np.asarray(self.run(image)[self._output][0], dtype=np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H x W uint8 train IDs at the size of ``image`` (H x W x 3 uint8, BGR unless rgb)."""
        image = as_color_image(image)
        return self.labels(self.run(image), image.shape[:2])

    def labels(self, outputs: Dict[str, np.ndarray], size: Any) -> np.ndarray:
        """Train IDs at ``size`` (H, W) from the model's outputs (logits or labels)."""
        return labels_at(outputs[self._output], size)

    @staticmethod
    def colorize(labels: np.ndarray) -> np.ndarray:
        """Cityscapes colours of a train-ID map, H x W x 3 uint8 in BGR (OpenCV) order."""
        return colorize(labels)

    def overlay(self, image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """``image`` blended with the colourised ``labels`` (same channel order as image)."""
        colours = colorize(labels)
        return blend(as_color_image(image), colours[:, :, ::-1] if self.rgb else colours, alpha)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Segmenter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def labels_at(output: np.ndarray, size: Any) -> np.ndarray:
    """Train IDs at ``size`` (H, W) from a batch-1 logits or labels output."""
    height, width = size
    output = output[0]
    if output.ndim == 2:  # labels from the graph
        import cv2

        labels = output.astype(np.uint8)
        if labels.shape == (height, width):
            return labels
        return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
    logits = np.asarray(output, dtype=np.float32)
    if not np.isfinite(logits).all():
        raise NonFiniteOutputError(
            "the model's logits hold NaN or Inf ({} of {} values): its labels would be "
            "meaningless (a broken export, or an FP16 overflow: try the FP32 graph)".format(
                int(np.size(logits) - np.isfinite(logits).sum()), np.size(logits)
            )
        )
    return upsampled_argmax(logits, (height, width))


class NonFiniteOutputError(BackendError):
    """A model gave logits that are not finite numbers."""


def _check_against_graph(sidecar: Sidecar, image: TensorSpec, output: TensorSpec) -> None:
    """Raise ``BackendError`` where the sidecar describes another graph than the model."""
    fixed = _fixed_size(image)
    if sidecar.input_size and fixed and tuple(sidecar.input_size) != fixed:
        raise BackendError(
            "the sidecar says input size {}x{}, the model's {!r} input is {}x{}".format(
                sidecar.input_size[0], sidecar.input_size[1], image.name, fixed[0], fixed[1]
            )
        )
    kind = "logits" if np.dtype(output.dtype).kind == "f" else "labels"
    if kind != sidecar.output:
        raise BackendError(
            "the sidecar says the output is {}, the model's {!r} output holds {} ({})".format(
                sidecar.output, output.name, kind, np.dtype(output.dtype).name
            )
        )
    classes = output.shape[1] if kind == "logits" and len(output.shape) == 4 else None
    if classes is not None and classes != sidecar.num_classes:
        raise BackendError(
            "the sidecar says {} classes, the model's {!r} output has {}".format(
                sidecar.num_classes, output.name, classes
            )
        )


def _named(specs: Any, name: str, kind: str) -> TensorSpec:
    """The spec called ``name``; ``BackendError`` listing the model's names otherwise."""
    for spec in specs:
        if spec.name == name:
            return spec
    raise BackendError(
        "the sidecar names {} {!r}, the model has {}".format(
            kind, name, ", ".join(repr(s.name) for s in specs)
        )
    )


def _fixed_size(spec: TensorSpec) -> Optional[Tuple[int, int]]:
    """(H, W) of a 1 x 3 x H x W input with fixed sides, else None (dynamic)."""
    height, width = (tuple(spec.shape) + (None, None, None, None))[2:4]
    return (height, width) if height and width and len(spec.shape) == 4 else None

"""ONNX Runtime on the CPU for the export's checks (host side): a graph run on frames in
turn, a temporal graph's state carried from each frame to the next (zeros first)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from fanet.core.sidecar import INPUT_NAME, StateTensor


def open_session(model: str | bytes, fake_quant: bool = False):
    """A quiet CPU session on a path or a serialized graph (FP16 graphs: ONNX Runtime
    warns of CPU kernels it lacks); ``fake_quant``: each Q/DQ pair computed as written
    (round, saturate, scale in float), not fused into integer kernels."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    if fake_quant:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def image_feed(session, batch: np.ndarray) -> np.ndarray:
    """``batch`` in the element type ``session``'s image input takes."""
    image_type = next(i.type for i in session.get_inputs() if i.name == INPUT_NAME)
    return batch.astype(np.float16) if "float16" in image_type else batch


def carried_feeds(
    path: str, batches: Iterable[np.ndarray], state: Sequence[StateTensor] = ()
) -> Iterator[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]:
    """(inputs, outputs) of ``path`` for each batch in turn; the state inputs of a frame are
    the state outputs of the frame before."""
    session = open_session(path)
    names = [output.name for output in session.get_outputs()]
    values: dict[str, np.ndarray] = {}
    for batch in batches:
        if not values:  # zeros, one state per image of the batch
            shapes = {t.input: (len(batch),) + tuple(t.shape[1:]) for t in state}
            values = {t.input: np.full(shapes[t.input], t.initial, np.float32) for t in state}
        feed = {INPUT_NAME: image_feed(session, batch)}
        feed.update(values)
        outputs = dict(zip(names, session.run(None, feed)))
        values = {t.input: outputs[t.output] for t in state}
        yield feed, outputs


def run_frames(
    path: str, batches: Iterable[np.ndarray], state: Sequence[StateTensor] = ()
) -> list[dict[str, np.ndarray]]:
    """Every output of ``path`` for each batch in turn, the state carried."""
    return [outputs for _, outputs in carried_feeds(path, batches, state)]

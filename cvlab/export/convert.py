"""Model conversions: a Predictor's torch module -> ONNX (onnxruntime) and TensorFlow Lite (litert-torch).

Both take raw pixels, as Azure's exports do; only the layout and colour order differ, and each file says so:
- ONNX classification: input `data` [N,3,S,S] RGB 0-255 (declared in metadata_props), output `model_output`;
- ONNX detection ("S1" shape): `image_tensor` [1,3,320,320] RGB 0-255 -> `detected_boxes`,
  `detected_classes`, `detected_scores`, decoding and NMS inside the graph;
- TFLite classification: NHWC float32 BGR 0-255 in (what Azure's container feeds), probabilities out;
- TFLite detection (Azure's S1 TFLite): NHWC float32 RGB 0-255 in, the three detected_* outputs of one
  image (no batch dim).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import threading
from pathlib import Path

import numpy as np
import torch

ONNX_OPSET = 17
# torch's exporters keep global state (torch.onnx's GLOBALS, torch.export's tracing): one conversion at a time.
_CONVERT_LOCK = threading.Lock()


class _NHWC(torch.nn.Module):
    """Wraps an NCHW-RGB module so it takes NHWC, the TensorFlow Lite layout: BGR like Azure's classifiers, or
    RGB like Azure's S1 detector."""

    def __init__(self, module: torch.nn.Module, bgr: bool = True):
        super().__init__()
        self.module = module
        self.bgr = bgr

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        return self.module(x.flip(1) if self.bgr else x)


S1_OUTPUTS = ("detected_boxes", "detected_classes", "detected_scores")


def onnx_metadata(kind: str, labels: list[str]) -> dict[str, str]:
    """The metadata_props Microsoft's ONNX samples read to pick colour order and pixel range."""
    return {
        "Image.BitmapPixelFormat": "Rgb8",
        "Image.ColorSpaceGamma": "SRGB",
        "Image.NominalPixelRange": "NominalRange_0_255",
        "CustomVision.Postprocess.Method": "ObjectDetection.S1" if kind == "ObjectDetection" else "ClassificationMultiClass",
        "cvlab.Labels": "\n".join(labels),
    }


def to_onnx(module: torch.nn.Module, kind: str, size: int, labels: list[str], path: Path) -> Path:
    """Export with the TorchScript exporter (opset 17), name tensors as Azure does, check with onnx.checker."""
    import onnx

    module = module.eval()
    sample = torch.rand(1, 3, size, size) * 255
    if kind == "ObjectDetection":
        inputs, outputs = ["image_tensor"], ["detected_boxes", "detected_classes", "detected_scores"]
        dynamic = None
    else:
        inputs, outputs = ["data"], ["model_output"]
        dynamic = {"data": {0: "batch"}, "model_output": {0: "batch"}}
    with _CONVERT_LOCK, _quiet(), torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(module, (sample,), str(path), input_names=inputs, output_names=outputs,
                          opset_version=ONNX_OPSET, dynamic_axes=dynamic, dynamo=False)
    model = onnx.load(str(path))
    for key, value in onnx_metadata(kind, labels).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def to_tflite(module: torch.nn.Module, size: int, path: Path, quantization: str | None = None) -> Path:
    """litert-torch conversion of the NHWC wrapper (a StaticShapeDetector: RGB in and Azure's S1 output names,
    else BGR in); `quantization` in (None, "fp16", "int8")."""
    with _quiet():  # importing it starts TensorFlow, which prints absl and oneDNN notices
        import litert_torch

    detector = isinstance(module, StaticShapeDetector)
    wrapped = _NHWC(module.eval(), bgr=not detector).eval()
    sample = (torch.rand(1, size, size, 3) * 255,)
    float_path = path if quantization is None else path.with_suffix(".float.tflite")
    with _CONVERT_LOCK, _quiet():
        litert_torch.convert(wrapped, sample).export(str(float_path))
    if detector:
        _name_outputs(float_path, S1_OUTPUTS)
    if quantization is None:
        return path
    from ai_edge_quantizer import qtyping, quantizer, recipe

    with _quiet():
        result = _quantize_tflite(float_path, quantization, quantizer, recipe, qtyping)
    if path.exists():
        path.unlink()
    result.export_model(str(path))
    float_path.unlink(missing_ok=True)
    return path


def _name_outputs(path: Path, names) -> None:
    """Give the .tflite outputs Azure's tensor names (Microsoft's samples read the outputs by name)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    graph = model.subgraphs[0]
    for index, name in zip(graph.outputs, names):
        graph.tensors[index].name = name.encode()
    for signature in model.signatureDefs or []:
        for output, name in zip(signature.outputs, names):
            output.name = name.encode()
    flatbuffer_utils.write_model(model, str(path))


def _quantize_tflite(float_path, quantization, quantizer, recipe, qtyping):
    if quantization == "fp16":
        q = quantizer.Quantizer(str(float_path))
        q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED,
                                 num_bits=16, algorithm_key="float_casting")
        result = q.quantize()
    elif quantization == "int8":
        # Weight-only int8 on the convolutions keeps float I/O (drop-in for the same predict code); the small
        # linear head stays float: its weights span a wide range that one int8 scale per row cannot hold.
        q = quantizer.Quantizer(str(float_path))
        for op in (qtyping.TFLOperationName.CONV_2D, qtyping.TFLOperationName.DEPTHWISE_CONV_2D):
            q.add_weight_only_config(regex=".*", operation_name=op, num_bits=8)
        result = q.quantize()
    else:
        raise ValueError(f"unknown TFLite quantization {quantization!r}")
    return result


class OnnxRunner:
    """Runs an exported model.onnx on preprocessed NCHW RGB 0-255 batches.

    No spin-waiting: by default onnxruntime's pool threads busy-wait for work, during a run and for a while
    after it. On 2 cores that steals a core from whatever the process does next (decoding, storing, answering
    HTTP) and from other processes (the figures: benchmarks/serve.md)."""

    def __init__(self, path: Path, threads: int = 2):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.outputs, {self.input: np.ascontiguousarray(batch, dtype=np.float32)})


class TFLiteRunner:
    """Runs an exported model.tflite on NCHW RGB 0-255 batches, one image at a time: a classifier takes NHWC BGR;
    an S1 detector (outputs named detected_*) takes NHWC RGB and answers for one image without a batch dim."""

    def __init__(self, path: Path, threads: int = 2):
        with _quiet():  # importing TensorFlow Lite and creating the XNNPACK delegate print notices from C++
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        by_name = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.s1 = set(by_name) == set(S1_OUTPUTS)
        self.outputs = [by_name[n] for n in S1_OUTPUTS] if self.s1 else list(by_name.values())

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        results = []
        for image in batch:
            nhwc = image.transpose(1, 2, 0)[None]
            self.interpreter.set_tensor(self.input, np.ascontiguousarray(nhwc if self.s1 else nhwc[..., ::-1],
                                                                         dtype=np.float32))
            self.interpreter.invoke()
            results.append([self.interpreter.get_tensor(i)[None] if self.s1 else self.interpreter.get_tensor(i).copy()
                            for i in self.outputs])
        return [np.concatenate([r[k] for r in results]) for k in range(len(self.outputs))]


_LOGS = threading.local()  # what the converters printed, collected per thread while an export is built
CONVERSION_LOG = "conversion.log"  # in the export's folder, for whoever wants the converters' own words


@contextlib.contextmanager
def collected_logs():
    """Collect what every conversion in this block printed (see `_quiet`); yields the list of texts."""
    _LOGS.items = []
    try:
        yield _LOGS.items
    finally:
        del _LOGS.items


def _libc_flush() -> None:
    """Flush C stdio buffers, so native lines land where the file descriptors point now."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (not Linux/macOS): Python's own flush is all there is
        pass


@contextlib.contextmanager
def _quiet():
    """The converters print pages of progress, absl / oneDNN / XNNPACK notices from C++, deprecation warnings and
    temporary paths. All of it is captured (file descriptors 1 and 2 too, since native code bypasses
    sys.stderr) and kept for `collected_logs`, so notebooks and test logs stay readable."""
    import sys
    import tempfile
    import warnings

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    buffer = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    _libc_flush()
    with tempfile.TemporaryFile() as native, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(native.fileno(), 1)
            os.dup2(native.fileno(), 2)
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield
        finally:
            _libc_flush()
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
            native.seek(0)
            text = native.read().decode("utf-8", "replace") + buffer.getvalue() + "".join(
                f"{w.category.__name__}: {w.message}\n" for w in caught)
            if getattr(_LOGS, "items", None) is not None and text.strip():
                _LOGS.items.append(text)


def log_summary(text: str) -> str:
    """One line for a person: how much the converters printed, and of what kind."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    warnings_ = sum(1 for ln in lines if "Warning" in ln or ln.startswith("W"))
    progress = sum(1 for ln in lines if ">" in ln and "Convert" in ln)
    return (f"{len(lines)} converter log lines ({progress} progress, {warnings_} warnings, "
            f"{len(lines) - progress - warnings_} notices), kept in {CONVERSION_LOG}") if lines else \
        "the converters printed nothing"


class StaticShapeDetector(torch.nn.Module):
    """A detector's eval path with fixed shapes, for converters that cannot trace data-dependent NMS (TFLite).

    Same decoding as `Detector.postprocess`, then exact greedy class-wise NMS over the `candidates` best scores
    as a fixed loop (box i suppresses later boxes of its class when it is itself kept). Greedy NMS decides each
    box from higher-scored boxes only, so the kept boxes are exactly the dynamic path's kept boxes among its top
    `candidates`: every detection that matters after a probability threshold is identical. Empty slots have
    score 0 (the Predictor and the container drop them). One image, no batch dim in the outputs (Azure's S1 TFLite)."""

    def __init__(self, detector, candidates: int = 100):
        super().__init__()
        self.detector = detector.eval()
        self.candidates = candidates

    def forward(self, x):
        d = self.detector
        out = d.head_outputs(d.trunk_features(x))
        boxes = d.box_coder.decode(out["bbox_regression"], d.anchors).clamp(0, d.size) / d.size  # [1, A, 4]
        scores = torch.sqrt(torch.sigmoid(out["cls_logits"]) * torch.sigmoid(out["bbox_ctrness"])).flatten(1)
        top_scores, top_idx = scores.topk(self.candidates, dim=1)                                # [1, K]
        top_boxes = torch.gather(boxes, 1, (top_idx // d.num_classes).unsqueeze(-1).expand(-1, -1, 4))
        top_classes = top_idx % d.num_classes
        b, s, c = top_boxes[0], top_scores[0], top_classes[0]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        lt = torch.maximum(b[:, None, :2], b[None, :, :2])
        rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
        inter = (rb - lt).clamp(min=0).prod(-1)
        iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1e-12)
        later = torch.triu(torch.ones_like(iou), diagonal=1)
        suppress = (iou > d.nms_thresh).float() * (c[:, None] == c[None, :]).float() * later
        keep = (s > d.score_thresh).float()
        for i in range(self.candidates):
            keep = keep * (1.0 - suppress[i] * keep[i])
        return b, c, s * keep

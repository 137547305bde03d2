"""Runs the exported TensorFlow Lite model the way a Custom Vision container does.

Pre-processing (told truthfully in metadata_properties.json): EXIF orientation applied, RGB, stretched to the
model's input size with bilinear resampling, then fed as NHWC float32 0-255 in the model's colour order
(Image.BitmapPixelFormat: Bgr8 for classifiers, Rgb8 for the S1 detector). The model holds the rest.
"""
import datetime
import io
import json
import os

import numpy as np
from PIL import Image, ImageOps

try:  # the maintained TFLite runtime; tflite-runtime 2.13 has no wheel for Python 3.11
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - fallbacks for other images
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


class Model:
    def __init__(self, model_path=os.path.join(HERE, "model.tflite")):
        self.manifest = json.loads(_read("cvexport.manifest"))
        self.metadata = json.loads(_read("metadata_properties.json"))
        self.labels = [line.strip() for line in _read("labels.txt").splitlines() if line.strip()]
        self.tags = json.loads(self.metadata.get("cvlab.Tags", "[]")) or [
            {"id": "", "name": n, "type": "Regular"} for n in self.labels]
        self.is_detection = self.manifest["DomainType"] == "ObjectDetection"
        self.interpreter = Interpreter(model_path=model_path, num_threads=int(os.environ.get("MODEL_THREADS", "2")))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        self.height, self.width = int(self.input["shape"][1]), int(self.input["shape"][2])
        self.bgr = self.metadata.get("Image.BitmapPixelFormat", "Bgr8") == "Bgr8"

    def preprocess(self, image):
        image = ImageOps.exif_transpose(image).convert("RGB")
        image = image.resize((self.width, self.height), Image.BILINEAR)
        array = np.asarray(image, dtype=np.float32)[np.newaxis]  # 0-255
        return np.ascontiguousarray(array[..., ::-1] if self.bgr else array)

    def run(self, image):
        self.interpreter.set_tensor(self.input["index"], self.preprocess(image))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(d["index"]) for name, d in self.outputs.items()}

    def predict(self, image):
        outputs = self.run(image)
        predictions = []
        if self.is_detection:
            # Azure's S1 outputs, one image each (a batch dim, if any, is dropped)
            boxes, classes, scores = (outputs[n].reshape(-1, 4) if n == "detected_boxes" else outputs[n].reshape(-1)
                                      for n in ("detected_boxes", "detected_classes", "detected_scores"))
            for (x1, y1, x2, y2), c, p in zip(boxes, classes, scores):
                if p <= 0:  # an empty slot of the fixed-size output
                    continue
                tag = self.tags[int(c)]
                predictions.append({
                    "probability": round(float(p), 8), "tagId": tag["id"], "tagName": tag["name"],
                    "boundingBox": {"left": float(x1), "top": float(y1),
                                    "width": float(x2 - x1), "height": float(y2 - y1)},
                    "tagType": tag["type"]})
        else:
            probabilities = next(iter(outputs.values()))[0]
            for tag, p in zip(self.tags, probabilities):
                predictions.append({"probability": round(float(p), 8), "tagId": tag["id"],
                                    "tagName": tag["name"], "boundingBox": None, "tagType": tag["type"]})
        predictions.sort(key=lambda d: -d["probability"])
        return {
            "id": "", "project": self.manifest.get("ProjectId", ""), "iteration": self.manifest.get("IterationId", ""),
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "predictions": predictions,
        }


_model = None


def initialize():
    global _model
    _model = Model()


def predict_image(image):
    if _model is None:
        initialize()
    return _model.predict(image)


def predict_bytes(data):
    return predict_image(Image.open(io.BytesIO(data)))

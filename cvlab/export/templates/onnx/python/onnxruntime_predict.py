"""Run the exported model.onnx on one image: python onnxruntime_predict.py model.onnx labels.txt image.jpg

Reads the pixel format and range from the model's metadata, as Microsoft's samples for exported models do.
"""
import sys

import numpy as np
import onnx
import onnxruntime
from PIL import Image, ImageOps


def main(model_path, labels_path, image_path, threshold=0.01):
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    meta = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    inp = session.get_inputs()[0]
    height, width = inp.shape[2], inp.shape[3]
    labels = [line.strip() for line in open(labels_path, encoding="utf-8") if line.strip()]
    image = ImageOps.exif_transpose(Image.open(image_path)).convert("RGB").resize((width, height), Image.BILINEAR)
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1)[np.newaxis]
    if meta.get("Image.BitmapPixelFormat") == "Bgr8":
        x = x[:, ::-1]
    if meta.get("Image.NominalPixelRange") != "NominalRange_0_255":
        x = x / 255.0
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {inp.name: np.ascontiguousarray(x)})))
    if "detected_boxes" in outputs:
        for box, c, p in zip(outputs["detected_boxes"][0], outputs["detected_classes"][0], outputs["detected_scores"][0]):
            if p > threshold:
                print(f"{labels[int(c)]}: {p:.2%} box x1,y1,x2,y2 = {np.round(box, 4).tolist()}")
    else:
        for i in np.argsort(-outputs["model_output"][0]):
            print(f"{labels[i]}: {outputs['model_output'][0][i]:.2%}")


if __name__ == "__main__":
    main(*sys.argv[1:4])

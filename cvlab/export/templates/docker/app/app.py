"""The container's HTTP server: the routes of a Custom Vision Docker export, answering like the Prediction API.

Runs the model locally: no Azure keys are needed or read. Start with `python app.py` (port 80, or $PORT).
"""
import io
import os
import urllib.request

from flask import Flask, jsonify, request
from PIL import Image, UnidentifiedImageError

import predict

MAX_BYTES = 4 * 1024 * 1024  # the Prediction API's 4 MB limit
app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_BYTES + 64 * 1024  # room for multipart framing


def error(code, message, status):
    return jsonify({"code": code, "message": message}), status


@app.errorhandler(413)
def too_large(_):
    return error("BadRequestImageSizeBytes", "The image is larger than 4 MB; send a smaller image.", 413)


@app.errorhandler(404)
def not_found(_):
    return error("NotFound", "Unknown route: POST an image to /image or a JSON {\"url\": ...} to /url.", 404)


@app.errorhandler(405)
def bad_method(_):
    return error("BadRequest", "Use POST to predict (GET / only says that the server is up).", 405)


@app.route("/", methods=["GET"])
def index():
    return "CustomVision.ai model host harness"


def _predict(data):
    if len(data) > MAX_BYTES:
        return error("BadRequestImageSizeBytes", "The image is larger than 4 MB; send a smaller image.", 400)
    if not data:
        return error("BadRequestImageStream", "No image data: send multipart 'imageData' or a raw body.", 400)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        return error("BadRequestImageFormat", "The image could not be decoded; send a JPEG, PNG, BMP or GIF.", 400)
    return jsonify(predict.predict_image(image))


IMAGE_ROUTES = ["/image", "/<project>/image", "/<project>/image/nostore",
                "/<project>/classify/iterations/<name>/image", "/<project>/classify/iterations/<name>/image/nostore",
                "/<project>/detect/iterations/<name>/image", "/<project>/detect/iterations/<name>/image/nostore"]
URL_ROUTES = [r.replace("/image", "/url") for r in IMAGE_ROUTES]


def predict_image_route(**_):
    upload = request.files.get("imageData")
    if upload is not None:
        data = upload.read()
    else:
        data = request.get_data()
    return _predict(data)


def predict_url_route(**_):
    body = request.get_json(silent=True) or {}
    url = body.get("url") or body.get("Url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        return error("BadRequestImageUrl", "Send JSON {\"url\": \"http(s)://...\"} pointing at an image.", 400)
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("URL_TIMEOUT", "10"))) as response:
            data = response.read(MAX_BYTES + 1)
    except Exception as exc:  # noqa: BLE001 - any fetch failure is the caller's URL problem
        return error("BadRequestImageUrl", f"Could not download the image: {exc}", 400)
    return _predict(data)


for rule in IMAGE_ROUTES:
    app.add_url_rule(rule, view_func=predict_image_route, methods=["POST"], endpoint="image:" + rule)
for rule in URL_ROUTES:
    app.add_url_rule(rule, view_func=predict_url_route, methods=["POST"], endpoint="url:" + rule)


if __name__ == "__main__":
    predict.initialize()
    app.run(host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "80")), threaded=True)

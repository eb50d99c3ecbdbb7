"""Face components of a parsing map: centres, windows kept inside the image, blocks placed at a centre."""

import pytest
import torch

from unmask.data.components import BY_NAME, centres, corner, crop, feature_centre, one_hot, paste, window
from unmask.errors import ConfigError


def _map_with(label: int, rows: slice, cols: slice, size: int = 64) -> torch.Tensor:
    lab = torch.zeros(1, size, size, dtype=torch.long)
    lab[0, rows, cols] = label
    return lab


def test_the_centre_is_the_centre_of_the_labels_bounding_box():
    lab = _map_with(4, slice(28, 33), slice(36, 45))      # rows 28..32, cols 36..44
    assert centres(lab, BY_NAME["left_eye"]).tolist() == [[30, 40]]
    lab = _map_with(8, slice(44, 51), slice(26, 39))      # the inner mouth alone counts as the mouth
    assert centres(lab, BY_NAME["mouth"]).tolist() == [[47, 32]]


def test_a_missing_component_falls_back_to_its_place_on_the_mean_face_scaled_to_the_side():
    lab = torch.zeros(2, 128, 128, dtype=torch.long)
    assert centres(lab, BY_NAME["right_eye"]).tolist() == [[60, 48], [60, 48]]   # (30, 24) at 64 px


def test_windows_scale_with_the_side_and_reject_a_side_that_is_not_a_multiple_of_64():
    assert window(BY_NAME["left_eye"], 64) == (8, 12)
    assert window(BY_NAME["mouth"], 256) == (80, 144)        # Gu et al.'s 80 x 144 at 256 px
    assert window(BY_NAME["skin"], 64) == (64, 64)
    from unmask.data.components import check_size
    with pytest.raises(ConfigError, match="train.image_size: .*multiple of 64.*got 96"):
        check_size(96)


def test_a_crop_is_the_window_at_the_centre_and_is_shifted_inside_at_the_border():
    img = torch.arange(64 * 64, dtype=torch.float32).view(1, 1, 64, 64)
    inside = crop(img, torch.tensor([[30, 40]]), (8, 12))
    assert inside[0, 0, 0, 0] == img[0, 0, 26, 34] and inside.shape == (1, 1, 8, 12)
    at_edge = crop(img, torch.tensor([[1, 62]]), (8, 12))     # would start at row -3, end at col 68
    assert at_edge.shape == (1, 1, 8, 12)
    assert at_edge[0, 0, 0, 0] == img[0, 0, 0, 52] and at_edge[0, 0, -1, -1] == img[0, 0, 7, 63]


def test_a_block_placed_at_a_known_centre_lands_there_and_is_clamped_at_the_border():
    canvas = torch.zeros(2, 1, 16, 16)
    block = torch.ones(2, 1, 5, 9)
    out = paste(canvas, block, torch.tensor([[8, 8], [0, 15]]))
    assert out[0, 0].nonzero().min(0).values.tolist() == [6, 4]        # rows 6..10, cols 4..12
    assert out[0, 0].nonzero().max(0).values.tolist() == [10, 12]
    assert out[1, 0].nonzero().min(0).values.tolist() == [0, 7]        # shifted inside: rows 0..4, cols 7..15
    assert out[1, 0].nonzero().max(0).values.tolist() == [4, 15]
    assert out.sum() == 2 * 45 and canvas.sum() == 0                  # the canvas itself is untouched


def test_pasting_keeps_the_gradient_of_the_block_and_the_canvas_outside_it():
    canvas = torch.full((1, 1, 8, 8), 2.0)
    block = torch.ones(1, 1, 2, 3, requires_grad=True)
    out = paste(canvas, block, torch.tensor([[4, 4]]))
    assert out[0, 0, 0, 0] == 2 and out[0, 0, 3, 3] == 1
    out.sum().backward()
    assert block.grad.eq(1).all()


def test_an_image_centre_maps_to_the_feature_map_by_rounding():
    assert feature_centre(torch.tensor([[30, 40], [29, 2]]), 4).tolist() == [[8, 10], [7, 1]]   # int(c/4 + .5)
    assert corner(torch.tensor([[8, 10]]), (2, 3), (16, 16)).tolist() == [[7, 9]]


def test_one_hot_has_one_channel_per_label():
    lab = torch.tensor([[[0, 10], [4, 5]]])
    oh = one_hot(lab)
    assert oh.shape == (1, 11, 2, 2) and oh.sum(1).eq(1).all() and oh[0, 10, 0, 1] == 1

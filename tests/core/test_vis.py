"""Pictures: the occlusion heatmap lands on the right pixels of the original frame."""

import numpy as np

from utrack.data.transforms import letterbox_params
from utrack.tracking.base import TrackResult
from utrack.vis.draw import draw_tracks, heatmap_to_image, id_color, overlay_heatmap


def test_heatmap_maps_back_through_the_letterbox():
    # a 400x200 frame letterboxed into 128x128: scale 0.32, 32 px of grey above and below
    record, new_w, new_h = letterbox_params(400, 200, 128, 128)
    assert (new_w, new_h) == (128, 64) and record.pad_y == 32
    heat = np.zeros((32, 32), dtype=np.float32)  # output stride 4
    heat[8:16, 0:16] = 1.0  # input rows 32..64, columns 0..64: the top-left quarter of the image
    image_heat = heatmap_to_image(heat, record, (200, 400, 3), down_ratio=4)
    assert image_heat.shape == (200, 400)
    assert image_heat[20, 50] > 0.9 and image_heat[150, 300] < 0.1
    assert image_heat[20, 350] < 0.1  # right half stays cold


def test_overlay_changes_only_hot_pixels_and_tracks_are_drawn():
    image = np.full((100, 200, 3), 90, dtype=np.uint8)
    heat = np.zeros((100, 200), dtype=np.float32)
    heat[:50, :100] = 1.0
    out = overlay_heatmap(image, heat)
    assert np.abs(out[10, 10].astype(int) - 90).max() > 20
    assert np.array_equal(out[80, 150], image[80, 150])
    drawn = draw_tracks(image, [TrackResult(7, np.array([20.0, 20.0, 60.0, 80.0]), 0.9),
                                TrackResult(8, np.array([120.0, 20.0, 160.0, 80.0]), 0.9, True)])
    assert tuple(drawn[50, 20]) == id_color(7)  # solid left edge of track 7
    assert id_color(7) != id_color(8)

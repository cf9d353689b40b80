# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Images of the embedded shapes data, for the ONNX benchmark and the deploy
tests (the product takes images as inputs)."""
from typing import List, Sequence

import numpy as np

from mmdet_yolor.datasets.shapes import render_image


def generated_images(sizes: Sequence[int], seed: int = 0) -> List[np.ndarray]:
    """One shapes image per size.

    Returns:
        list[np.ndarray]: (S, S, 3) uint8 images in BGR order (as
        ``cv2.imread`` and mmcv's loading transforms give them).
    """
    images = []
    for index, size in enumerate(sizes):
        rng = np.random.default_rng([seed, index])
        image = render_image(rng, image_size=size)[0]
        images.append(np.ascontiguousarray(image[..., ::-1]))
    return images

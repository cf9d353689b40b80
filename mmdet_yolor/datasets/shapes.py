# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Synthetic shapes: a small COCO-format detection and instance segmentation
dataset, generated deterministically on the CPU in seconds.

It is the embedded default dataset of the with/without-YOLOR ablation, which
must run on a small CPU machine without downloads. Each image shows 1 to
``max_objects`` shapes (:data:`CLASSES`) on a smooth random background with
noise and clutter (thin lines, curves and streaks that are not shapes). The
class is given only by the outline: the colour and the fill texture (solid,
stripes, checker, noise) are random, and polygons are rotated and mildly
stretched. Sizes are log-uniform from ``min_size`` to ``max_size`` pixels, so
every FPN level sees objects. Shapes may overlap, but a shape is only placed
where every earlier shape keeps at least ``1 - max_occlusion`` of its area.

Annotations describe the visible region: each instance's mask is its pixels
not covered by later shapes, stored as compressed RLE, with the bbox and area
of that mask. The layout is the COCO one mmdet's ``CocoDataset`` reads::

    <out_dir>/annotations/instances_train.json
    <out_dir>/annotations/instances_val.json
    <out_dir>/train/000000.png ...
    <out_dir>/val/000000.png ...
    <out_dir>/meta.json          # parameters and format version

Every image has its own random generator, seeded by ``(seed, split, index)``,
so the files are byte-identical for the same parameters.

Example:
    >>> from mmdet_yolor.datasets import ensure_dataset, metainfo
    >>> data_root = ensure_dataset('data/shapes', num_train=400, num_val=100)

Command line::

    python -m mmdet_yolor.datasets --out-dir data/shapes \
        --num-train 400 --num-val 100 --image-size 320 --seed 0
"""
import argparse
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util

CLASSES = ('circle', 'square', 'triangle', 'star', 'ring', 'cross')
PALETTE = [(220, 20, 60), (0, 130, 230), (60, 180, 75), (255, 160, 0),
           (145, 30, 180), (0, 190, 190)]

# Bump when the rendering or the file format changes, so that
# ``ensure_dataset`` regenerates data written by an older generator.
FORMAT_VERSION = 1

SPLITS = ('train', 'val')

# Candidate positions tried per shape before it is skipped.
_MAX_TRIES = 10
# Polygon coordinates are passed to cv2 as fixed point with this many
# fractional bits, so small shapes keep sub-pixel accuracy.
_SHIFT = 4
# Minimum RGB distance between a shape's colour and what lies under it.
_MIN_CONTRAST = 90.0


def _regular_polygon(num_vertices: int,
                     radius: float = 1.0,
                     phase: float = 0.0) -> np.ndarray:
    """Vertices (N, 2) as (x, y) of a regular polygon centred at 0."""
    angles = phase + 2 * np.pi * np.arange(num_vertices) / num_vertices
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star_polygon(num_points: int = 5, inner: float = 0.45) -> np.ndarray:
    """Vertices (2 * num_points, 2) of a star, alternating outer and inner
    radii. The inner radius is fatter than a pentagram (0.38) so that small
    stars keep visible points."""
    vertices = _regular_polygon(2 * num_points, phase=-np.pi / 2)
    vertices[1::2] *= inner
    return vertices


def _cross_polygon(half_width: float = 0.3) -> np.ndarray:
    """Vertices (12, 2) of a plus sign with arms of ``2 * half_width``."""
    w = half_width
    quarter = np.array([[w, -1.0], [w, -w], [1.0, -w]])
    # Each following quarter is the previous one turned by 90 degrees.
    quarters = [quarter]
    for _ in range(3):
        quarters.append(quarters[-1] @ np.array([[0.0, 1.0], [-1.0, 0.0]]))
    return np.concatenate(quarters)


# Each class is a list of (polygon, fill) drawn in order: fill 1 paints the
# shape and fill 0 cuts a hole. Circles are 64-gons (< 0.15 px error at the
# largest size), so that all classes share one polygon code path.
_UNIT_SHAPES: Dict[str, List[Tuple[np.ndarray, int]]] = {
    'circle': [(_regular_polygon(64), 1)],
    'square': [(_regular_polygon(4, phase=np.pi / 4), 1)],
    'triangle': [(_regular_polygon(3, phase=-np.pi / 2), 1)],
    'star': [(_star_polygon(), 1)],
    'ring': [(_regular_polygon(64), 1), (_regular_polygon(64, 0.55), 0)],
    'cross': [(_cross_polygon(), 1)],
}
assert tuple(_UNIT_SHAPES) == CLASSES


def metainfo() -> dict:
    """Return the ``metainfo`` of the dataset for mmdet configs.

    Returns:
        dict: ``classes`` (tuple of str) and ``palette`` (list of RGB tuples,
        one per class, used by the visualiser only).
    """
    return dict(classes=CLASSES, palette=list(PALETTE))


def dataset_params(num_train: int = 400,
                   num_val: int = 100,
                   image_size: int = 320,
                   seed: int = 0,
                   min_size: float = 12.0,
                   max_size: Optional[float] = None,
                   max_objects: int = 6,
                   max_occlusion: float = 0.3,
                   min_area: int = 40) -> dict:
    """Validate the generator parameters and fill in their defaults.

    Args:
        num_train (int): Number of training images. Defaults to 400.
        num_val (int): Number of validation images. Defaults to 100.
        image_size (int): Side of the square images in pixels.
            Defaults to 320.
        seed (int): Seed of the whole dataset; train and val images use
            different streams derived from it. Defaults to 0.
        min_size (float): Smallest shape extent (the larger side of its
            unoccluded bbox) in pixels. Defaults to 12.
        max_size (float, optional): Largest shape extent in pixels.
            Defaults to ``0.6 * image_size``.
        max_objects (int): Shapes drawn per image are uniform in
            ``[1, max_objects]`` (fewer if some cannot be placed).
            Defaults to 6.
        max_occlusion (float): Largest fraction of a shape's area that later
            shapes may cover. Defaults to 0.3.
        min_area (int): Instances with a smaller visible area in pixels are
            not annotated. Defaults to 40.

    Returns:
        dict: The parameters with plain int/float values, as stored in
        ``meta.json``.
    """
    if max_size is None:
        max_size = 0.6 * image_size
    params = dict(
        num_train=int(num_train),
        num_val=int(num_val),
        image_size=int(image_size),
        seed=int(seed),
        min_size=float(min_size),
        max_size=float(max_size),
        max_objects=int(max_objects),
        max_occlusion=float(max_occlusion),
        min_area=int(min_area))
    if params['num_train'] < 0 or params['num_val'] < 0:
        raise ValueError('num_train and num_val must be >= 0')
    if not 0 < params['min_size'] <= params['max_size'] <= image_size:
        raise ValueError('need 0 < min_size <= max_size <= image_size, got '
                         f'{min_size}, {max_size}, {image_size}')
    if params['max_objects'] < 1:
        raise ValueError('max_objects must be >= 1')
    if not 0 <= params['max_occlusion'] < 1:
        raise ValueError('max_occlusion must be in [0, 1)')
    return params


def _shape_mask(label: int, centre: np.ndarray, extent: float, angle: float,
                aspect: float, image_size: int) -> np.ndarray:
    """Rasterise one unoccluded shape.

    Args:
        label (int): Class index into :data:`CLASSES`.
        centre (np.ndarray): (2,) centre (x, y) in pixels.
        extent (float): Larger side of the shape's bbox in pixels.
        angle (float): Rotation in radians.
        aspect (float): Width / height stretch applied before the rotation.
        image_size (int): Side of the square image.

    Returns:
        np.ndarray: (image_size, image_size) bool mask, clipped to the image.
    """
    cos, sin = np.cos(angle), np.sin(angle)
    transform = np.diag([np.sqrt(aspect), 1 / np.sqrt(aspect)]) @ np.array(
        [[cos, sin], [-sin, cos]])
    polygons = [(unit @ transform, fill)
                for unit, fill in _UNIT_SHAPES[CLASSES[label]]]
    # The first polygon is the outline: scale it to the requested extent.
    scale = extent / np.ptp(polygons[0][0], axis=0).max()
    canvas = np.zeros((image_size, image_size), dtype=np.uint8)
    for polygon, fill in polygons:
        points = (polygon * scale + centre) * (1 << _SHIFT)
        cv2.fillPoly(
            canvas, [np.round(points).astype(np.int32)],
            fill,
            lineType=cv2.LINE_8,
            shift=_SHIFT)
    return canvas.astype(bool)


def _background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """Smooth random background with clutter that is not a shape class.

    Returns:
        np.ndarray: (image_size, image_size, 3) uint8 RGB image.
    """
    # A gradient between four related corner colours plus random blotches,
    # built on a coarse grid and upsampled (much cheaper than per pixel).
    base = rng.uniform(40, 215, size=3)
    corners = np.clip(base + rng.uniform(-60, 60, size=(2, 2, 3)), 0, 255)
    t = np.linspace(0, 1, 6)[:, None]
    grid = np.stack([(1 - t) * corners[0, 0] + t * corners[0, 1],
                     (1 - t) * corners[1, 0] + t * corners[1, 1]])
    grid = (1 - t[:, None]) * grid[0] + t[:, None] * grid[1]
    grid += rng.normal(0, 15, size=grid.shape)
    # Cubic to an intermediate size for smoothness, then linear (a direct
    # cubic upsampling to full size is ~15x slower).
    image = cv2.resize(
        grid.astype(np.float32), (40, 40), interpolation=cv2.INTER_CUBIC)
    image = cv2.resize(
        image, (image_size, image_size), interpolation=cv2.INTER_LINEAR)
    image = np.clip(image, 0, 255).astype(np.uint8)

    # Clutter: straight lines, open random-walk curves and thin streaks
    # (ellipses with aspect >= 3, which no class resembles).
    for _ in range(rng.integers(2, 7)):
        p0, p1 = map(tuple, rng.integers(0, image_size, size=(2, 2)).tolist())
        cv2.line(image, p0, p1,
                 rng.uniform(0, 255, size=3).tolist(), int(rng.integers(1, 3)),
                 cv2.LINE_AA)
    for _ in range(rng.integers(1, 5)):
        num_points = int(rng.integers(3, 7))
        steps = rng.normal(0, image_size / 16, size=(num_points, 2))
        points = rng.uniform(0, image_size, size=2) + np.cumsum(steps, axis=0)
        cv2.polylines(image, [points.astype(np.int32)], False,
                      rng.uniform(0, 255, size=3).tolist(),
                      int(rng.integers(1, 3)), cv2.LINE_AA)
    for _ in range(rng.integers(0, 7)):
        length = rng.uniform(3, 8)
        width = rng.uniform(0.5, length / 3)
        centre = rng.uniform(0, image_size, size=2)
        box = (tuple(centre), (2 * length, 2 * width),
               float(rng.uniform(0, 180)))
        cv2.ellipse(image, box,
                    rng.uniform(0, 255, size=3).tolist(), -1, cv2.LINE_AA)
    return image


def _texture(rng: np.random.Generator, colour: np.ndarray,
             window: Tuple[int, int, int, int]) -> np.ndarray:
    """Random fill of a shape: solid, stripes, checker or smooth noise.

    Args:
        rng (np.random.Generator): Random generator.
        colour (np.ndarray): (3,) main RGB colour.
        window (tuple[int]): Region (x, y, w, h) of the image to fill.

    Returns:
        np.ndarray: (h, w, 3) float32 texture.
    """
    x0, y0, w, h = window
    kind = rng.choice(4, p=[0.35, 0.25, 0.2, 0.2])
    if kind == 0:
        return np.broadcast_to(colour.astype(np.float32), (h, w, 3))
    if kind == 3:
        grid = rng.normal(0, 35, size=(max(2, h // 6), max(2, w // 6), 3))
        noise = cv2.resize(
            grid.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
        return colour.astype(np.float32) + noise
    # Stripes and checker alternate with a second colour close to the first,
    # so the shape still reads as one object.
    direction = rng.normal(size=3)
    second = colour + direction * (
        rng.uniform(40, 90) / np.linalg.norm(direction))
    theta = rng.uniform(0, np.pi)
    period = rng.uniform(4, 12)
    yy, xx = np.mgrid[y0:y0 + h, x0:x0 + w].astype(np.float32) / period
    u = np.floor(xx * np.cos(theta) + yy * np.sin(theta))
    if kind == 1:
        select = u % 2 == 1
    else:
        v = np.floor(yy * np.cos(theta) - xx * np.sin(theta))
        select = (u + v) % 2 == 1
    return np.where(select[..., None], second, colour).astype(np.float32)


def render_image(
        rng: np.random.Generator,
        image_size: int = 320,
        min_size: float = 12.0,
        max_size: Optional[float] = None,
        max_objects: int = 6,
        max_occlusion: float = 0.3,
        min_area: int = 40) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one image and the visible masks of its shapes.

    Args:
        rng (np.random.Generator): The image's random generator.
        image_size, min_size, max_size, max_objects, max_occlusion, min_area:
            See :func:`dataset_params`.

    Returns:
        tuple:
        - image (np.ndarray): (S, S, 3) uint8 RGB image, S = image_size.
        - masks (np.ndarray): (N, S, S) bool visible masks, in z-order.
        - labels (np.ndarray): (N,) int64 class indices into :data:`CLASSES`.
    """
    if max_size is None:
        max_size = 0.6 * image_size
    image = _background(rng, image_size)

    num = int(rng.integers(1, max_objects + 1))
    labels = rng.integers(len(CLASSES), size=num)
    extents = np.exp(rng.uniform(np.log(min_size), np.log(max_size), num))
    # Draw mostly large shapes first: a large shape on top of small ones
    # would hide too much of them and be rejected. The jitter still lets
    # some shapes cover smaller ones.
    order = np.argsort(-(np.log(extents) + rng.normal(0, 0.3, num)))

    # owner[y, x] is the index of the shape visible at the pixel, -1 for the
    # background: visible areas and occlusions are bincounts over it.
    owner = np.full((image_size, image_size), -1, dtype=np.int16)
    full_areas, kept_labels = [], []
    for label, extent in zip(labels[order], extents[order]):
        num_placed = len(kept_labels)
        visible_areas = np.bincount(
            owner.ravel() + 1, minlength=num_placed + 1)[1:]
        for _ in range(_MAX_TRIES):
            # At most ~15% of the extent may fall outside the image.
            margin = 0.35 * extent
            mask = _shape_mask(
                label,
                centre=rng.uniform(margin, image_size - margin, size=2),
                extent=extent,
                angle=rng.uniform(0, 2 * np.pi),
                aspect=np.exp(rng.uniform(np.log(0.8), np.log(1.25))),
                image_size=image_size)
            area = np.count_nonzero(mask)
            covered = np.bincount(
                owner[mask] + 1, minlength=num_placed + 1)[1:]
            keeps_enough = (
                visible_areas - covered >=
                (1 - max_occlusion) * np.array(full_areas))
            if area >= min_area and keeps_enough.all():
                break
        else:
            continue  # no position found: skip this shape

        x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
        region = image[y:y + h, x:x + w]
        inside = mask[y:y + h, x:x + w]
        # Pick a colour that stands out from what lies underneath.
        under = region[inside].astype(np.float32).mean(axis=0)
        candidates = rng.uniform(0, 255, size=(8, 3))
        distances = np.linalg.norm(candidates - under, axis=1)
        contrasted = np.flatnonzero(distances >= _MIN_CONTRAST)
        best = contrasted[0] if contrasted.size else distances.argmax()
        colour = candidates[best]
        texture = _texture(rng, colour, (x, y, w, h))
        region[inside] = np.clip(texture[inside], 0, 255).astype(np.uint8)

        owner[mask] = num_placed
        full_areas.append(area)
        kept_labels.append(label)

    # Mild sensor noise over everything (uniform, std 2 to 6: uniform
    # samples are 4x cheaper than normal ones).
    noise = rng.random(image.shape, dtype=np.float32) - 0.5
    image = image + noise * rng.uniform(2, 6) * np.sqrt(12, dtype=np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)

    visible_areas = np.bincount(
        owner.ravel() + 1, minlength=len(kept_labels) + 1)[1:]
    keep = np.flatnonzero(visible_areas >= min_area)
    masks = owner[None] == keep[:, None, None].astype(owner.dtype)
    return image, masks, np.array(kept_labels, np.int64)[keep]


def _annotations(masks: np.ndarray, labels: np.ndarray, image_id: int,
                 first_ann_id: int) -> List[dict]:
    """COCO annotations of one image.

    Args:
        masks (np.ndarray): (N, H, W) bool visible masks.
        labels (np.ndarray): (N,) class indices.
        image_id (int): Id of the image.
        first_ann_id (int): Id of the first annotation.

    Returns:
        list[dict]: Annotations with RLE ``segmentation`` (utf-8 ``counts``),
        ``bbox`` [x, y, w, h] of the mask, ``area`` = mask pixel count.
    """
    annotations = []
    for i, (mask, label) in enumerate(zip(masks, labels)):
        rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
        annotations.append(
            dict(
                id=first_ann_id + i,
                image_id=image_id,
                category_id=int(label) + 1,
                segmentation=dict(
                    size=[int(s) for s in rle['size']],
                    counts=rle['counts'].decode('utf-8')),
                bbox=[float(v) for v in mask_util.toBbox(rle)],
                area=int(np.count_nonzero(mask)),
                iscrowd=0))
    return annotations


def _write_json(obj: dict, path: str) -> None:
    """Dump JSON deterministically (sorted keys, fixed separators)."""
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, sort_keys=True, separators=(',', ':'))


def _generate_split(out_dir: str, split: str, num_images: int,
                    params: dict) -> int:
    """Write the images and the annotation file of one split.

    Returns:
        int: Number of instances.
    """
    os.makedirs(osp.join(out_dir, split))
    split_id = SPLITS.index(split)
    render_kwargs = {
        k: params[k]
        for k in ('image_size', 'min_size', 'max_size', 'max_objects',
                  'max_occlusion', 'min_area')
    }
    images, annotations = [], []
    for index in range(num_images):
        rng = np.random.Generator(
            np.random.PCG64([params['seed'], split_id, index]))
        image, masks, labels = render_image(rng, **render_kwargs)
        file_name = f'{index:06d}.png'
        # The sensor noise makes the images nearly incompressible: Huffman
        # coding alone is as small as deflate and twice as fast.
        cv2.imwrite(
            osp.join(out_dir, split, file_name), image[..., ::-1], [
                cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
                cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY
            ])
        images.append(
            dict(
                id=index,
                file_name=file_name,
                width=params['image_size'],
                height=params['image_size']))
        # Annotation ids start at 1: COCOeval treats a matched gt id of 0 as
        # unmatched.
        annotations += _annotations(masks, labels, index, len(annotations) + 1)
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(CLASSES)
    ]
    _write_json(
        dict(
            info=dict(
                description=f'mmdet_yolor synthetic shapes, {split} split',
                version=str(FORMAT_VERSION)),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=categories),
        osp.join(out_dir, 'annotations', f'instances_{split}.json'))
    return len(annotations)


def _read_meta(out_dir: str) -> Optional[dict]:
    """Return the parsed ``meta.json`` of ``out_dir``, or None if absent or
    unreadable."""
    try:
        with open(osp.join(out_dir, 'meta.json'), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _is_current(meta: Optional[dict], params: dict) -> bool:
    """Whether ``meta`` describes a dataset generated with ``params``."""
    # The JSON round trip makes tuples and floats compare as stored.
    return (meta is not None and meta.get('format_version') == FORMAT_VERSION
            and meta.get('params') == json.loads(json.dumps(params)))


def generate_dataset(out_dir: str, **params) -> dict:
    """Generate the dataset into ``out_dir``, replacing any previous one.

    The data is written to a temporary directory next to ``out_dir`` and
    renamed into place, so an interrupted run never leaves a partial dataset
    under ``out_dir``. An existing ``out_dir`` is only replaced if it is a
    dataset of this generator (it has a ``meta.json``) or empty.

    Args:
        out_dir (str): Root directory of the dataset.
        **params: Generator parameters, see :func:`dataset_params`.

    Returns:
        dict: The content of ``meta.json``: ``format_version``, ``params``,
        ``classes`` and per split the number of ``images`` and ``instances``.
    """
    params = dataset_params(**params)
    out_dir = osp.abspath(out_dir)
    if (osp.isdir(out_dir) and os.listdir(out_dir)
            and _read_meta(out_dir) is None):
        raise FileExistsError(
            f'{out_dir} is not empty and has no meta.json: refusing to '
            'replace a directory this generator did not write')
    parent, name = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f'.{name}.tmp-', dir=parent)
    try:
        os.makedirs(osp.join(tmp_dir, 'annotations'))
        splits = {}
        for split, num_images in zip(SPLITS,
                                     (params['num_train'], params['num_val'])):
            instances = _generate_split(tmp_dir, split, num_images, params)
            splits[split] = dict(images=num_images, instances=instances)
        meta = dict(
            format_version=FORMAT_VERSION,
            params=params,
            classes=list(CLASSES),
            splits=splits)
        _write_json(meta, osp.join(tmp_dir, 'meta.json'))
        _install(tmp_dir, out_dir)
    finally:
        if osp.isdir(tmp_dir):
            shutil.rmtree(tmp_dir)
    return meta


def _install(tmp_dir: str, out_dir: str) -> None:
    """Move the finished dataset ``tmp_dir`` to ``out_dir``."""
    if osp.isdir(out_dir):
        # Move the old dataset aside first: rename cannot replace a
        # non-empty directory.
        old_dir = tmp_dir + '-old'
        os.rename(out_dir, old_dir)
        shutil.rmtree(old_dir)
    try:
        os.rename(tmp_dir, out_dir)
    except OSError:
        # Another process (e.g. another rank running ensure_dataset) may
        # have installed the same dataset meanwhile; deterministic
        # generation makes it equivalent to ours.
        if _read_meta(out_dir) != _read_meta(tmp_dir):
            raise


def ensure_dataset(out_dir: str, **params) -> str:
    """Generate the dataset unless ``out_dir`` already holds it.

    Cheap when the data exists (it reads ``meta.json`` only), so it can run
    at every start of a training job.

    Args:
        out_dir (str): Root directory of the dataset.
        **params: Generator parameters, see :func:`dataset_params`.

    Returns:
        str: ``out_dir``, to be used as ``data_root``.
    """
    if not _is_current(_read_meta(out_dir), dataset_params(**params)):
        generate_dataset(out_dir, **params)
    return out_dir


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line of :func:`main`."""
    defaults = dataset_params()
    parser = argparse.ArgumentParser(
        prog='python -m mmdet_yolor.datasets',
        description='Generate the synthetic shapes dataset (COCO format, '
        'boxes and instance masks) used by the mmdet_yolor ablation.')
    parser.add_argument(
        '--out-dir',
        default='data/shapes',
        help='dataset root; an existing dataset there is replaced '
        '(default: %(default)s)')
    parser.add_argument(
        '--num-train',
        type=int,
        default=defaults['num_train'],
        help='number of training images (default: %(default)s)')
    parser.add_argument(
        '--num-val',
        type=int,
        default=defaults['num_val'],
        help='number of validation images (default: %(default)s)')
    parser.add_argument(
        '--image-size',
        type=int,
        default=defaults['image_size'],
        help='side of the square images in pixels (default: %(default)s)')
    parser.add_argument(
        '--seed',
        type=int,
        default=defaults['seed'],
        help='random seed; the same seed gives identical files '
        '(default: %(default)s)')
    parser.add_argument(
        '--min-size',
        type=float,
        default=defaults['min_size'],
        help='smallest shape extent in pixels (default: %(default)s)')
    parser.add_argument(
        '--max-size',
        type=float,
        default=None,
        help='largest shape extent in pixels (default: 0.6 * image size)')
    parser.add_argument(
        '--max-objects',
        type=int,
        default=defaults['max_objects'],
        help='most shapes per image (default: %(default)s)')
    parser.add_argument(
        '--max-occlusion',
        type=float,
        default=defaults['max_occlusion'],
        help='largest fraction of a shape that others may cover '
        '(default: %(default)s)')
    parser.add_argument(
        '--min-area',
        type=int,
        default=defaults['min_area'],
        help='smallest visible area in pixels of an annotated instance '
        '(default: %(default)s)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Command line entry point; returns the written ``meta.json``."""
    args = vars(parse_args(argv))
    out_dir = args.pop('out_dir')
    meta = generate_dataset(out_dir, **args)
    for split, counts in meta['splits'].items():
        print(f'{split}: {counts["images"]} images, '
              f'{counts["instances"]} instances')
    print(f'Wrote the dataset to {osp.abspath(out_dir)}')
    return meta

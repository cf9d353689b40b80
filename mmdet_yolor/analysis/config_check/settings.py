# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""How each config of the sweep is exercised: the generated images, the
training steps and a row's time limit."""
import argparse
from dataclasses import dataclass
from typing import List, Tuple


@dataclass
class SweepSettings:
    """How each config is exercised.

    Attributes:
        image_size (int): Long side of the generated images. The batch
            alternates landscape and portrait images of aspect 4:3, as in
            COCO. Defaults to 448.
        batch_size (int): Images per batch. Defaults to 2.
        steps (int): Training steps of each variant. Defaults to 2.
        objects (int): Objects in the first image; the others get fewer.
            Defaults to 8.
        seed (int): Seed of the generated inputs and of the models'
            initialisation. Defaults to 0.
        timeout (float): Seconds a row may take when run in its own process
            (:func:`~.sweep.run_sweep` with ``isolated=True``). Defaults to
            1800.
    """
    image_size: int = 448
    batch_size: int = 2
    steps: int = 2
    objects: int = 8
    seed: int = 0
    timeout: float = 1800

    def image_shapes(self) -> List[Tuple[int, int]]:
        """``(height, width)`` of each image of a batch (multiples of 8)."""
        long = self.image_size
        short = int(round(long * 0.75 / 8)) * 8
        return [(short, long) if i % 2 == 0 else (long, short)
                for i in range(self.batch_size)]

    def steps_phrase(self) -> str:
        """``2 steps`` or ``1 step``."""
        return f'{self.steps} step' + ('s' if self.steps != 1 else '')


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--image-size`` and ``--steps``, the settings the tools of the sweep
    (``zoo_sweep.py``, ``check_config.py``) share, with the defaults of
    :class:`SweepSettings`."""
    defaults = SweepSettings()
    parser.add_argument(
        '--image-size',
        type=int,
        default=defaults.image_size,
        help='long side of the generated images (default: %(default)s)')
    parser.add_argument(
        '--steps',
        type=int,
        default=defaults.steps,
        help='training steps per variant (default: %(default)s)')

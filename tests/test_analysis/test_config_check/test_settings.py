# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""How each config of the sweep is exercised: image shapes, the steps
phrase of the reports and the shared command-line arguments."""
import argparse

from mmdet_yolor.analysis.config_check.settings import (SweepSettings,
                                                        add_settings_arguments)


def test_a_batch_alternates_landscape_and_portrait_images_of_aspect_4_3():
    shapes = SweepSettings(image_size=448, batch_size=3).image_shapes()
    assert shapes == [(336, 448), (448, 336), (336, 448)]


def test_the_short_side_is_a_multiple_of_8():
    for size in (100, 192, 250):
        [(short, long)] = SweepSettings(
            image_size=size, batch_size=1).image_shapes()
        assert long == size and short % 8 == 0
        assert abs(short - 0.75 * size) <= 4


def test_the_steps_phrase_is_singular_for_one_step():
    assert SweepSettings(steps=1).steps_phrase() == '1 step'
    assert SweepSettings(steps=2).steps_phrase() == '2 steps'
    assert SweepSettings(steps=0).steps_phrase() == '0 steps'


def test_the_shared_arguments_default_to_the_settings_defaults():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    defaults = SweepSettings()
    args = parser.parse_args([])
    assert (args.image_size, args.steps) == (defaults.image_size,
                                             defaults.steps)
    args = parser.parse_args(['--image-size', '192', '--steps', '1'])
    assert (args.image_size, args.steps) == (192, 1)
    assert '(default: 448)' in parser.format_help()

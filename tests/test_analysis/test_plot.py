# Copyright (c) mmdet_yolor contributors. All rights reserved.
import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from mmdet.registry import MODELS

from mmdet_yolor import yolorize
from mmdet_yolor.analysis.plot import (ImplicitPlotError, curve_colors,
                                       curve_labels, curves_figure,
                                       format_implicit_summary,
                                       implicit_location, load_implicit_stats,
                                       mean_std, plot_curves, plot_implicits,
                                       smooth)
from mmdet_yolor.analysis.work_dirs import load_work_dirs
from mmdet_yolor.models import ImplicitA, ImplicitM, ImplicitSite
from mmdet_yolor.models.foldable import ALIGNMENT, OUTPUT
from mmdet_yolor.package_data import get_config

from crafted_work_dirs import (FASTER_RCNN, FASTER_RCNN_YOLOR, make_work_dir,
                               one_run, train_records)
from yolor_testing import shrink_backbone

FCOS = 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
SHIFTED = 'neck.implicit_alignment.0'
SET_TO_1_5 = 'bbox_head.conv_cls.implicit_m.2'


def test_smooth_is_a_trailing_moving_average():
    np.testing.assert_allclose(smooth([1, 2, 3, 4], 2), [1, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(smooth([1, 2, 3], 1), [1, 2, 3])


def test_mean_std_over_seeds_at_every_x():
    xs, means, stds = mean_std([([1, 2, 3], [1., 2., 3.]), ([1, 2], [3., 4.])])
    np.testing.assert_allclose(xs, [1, 2, 3])
    np.testing.assert_allclose(means, [2, 3, 3])
    # sample standard deviation, as the comparison table; none of one value
    np.testing.assert_allclose(stds, [np.sqrt(2), np.sqrt(2), np.nan])


@pytest.fixture
def curve_work_dirs(tmp_path):
    """Two Faster R-CNN baseline seeds, one YOLOR run of 3 epochs and an
    FCOS run without validation yet."""
    paths = [
        make_work_dir(tmp_path, 'base_1', FASTER_RCNN, one_run((.3, .5, .3))),
        make_work_dir(tmp_path, 'yolor', FASTER_RCNN_YOLOR,
                      one_run((.32, .5, .3), epochs=3)),
        make_work_dir(tmp_path, 'base_2', FASTER_RCNN, one_run((.31, .5, .3))),
        # no validation yet: only a loss curve
        make_work_dir(tmp_path, 'fcos', dict(type='FCOS'),
                      [('20240101_000000', train_records(1, 100))]),
    ]
    return load_work_dirs(paths)


def test_curves(curve_work_dirs, tmp_path):
    out = tmp_path / 'curves.png'
    labels = plot_curves(curve_work_dirs, str(out))
    seeds = 'Faster R-CNN baseline (mean ± std, 2 seeds)'
    assert labels == [seeds, 'Faster R-CNN YOLOR', seeds, 'FCOS baseline']
    assert out.read_bytes().startswith(b'\x89PNG')
    assert out.stat().st_size > 10_000


def test_curves_colour_each_variant_in_both_panels(curve_work_dirs):
    assert curve_colors(curve_work_dirs) == ['C0', 'C1', 'C0', 'C2']
    figure, _ = curves_figure(curve_work_dirs)
    loss_axes, map_axes = figure.axes
    loss_colors = {
        line.get_label(): line.get_color()
        for line in loss_axes.lines
    }
    map_colors = {
        line.get_label(): line.get_color()
        for line in map_axes.lines
    }
    # one line per variant, in one colour per variant
    assert len(loss_colors) == 3 and len(set(loss_colors.values())) == 3
    assert map_colors == {
        label: color
        for label, color in loss_colors.items() if 'FCOS' not in label
    }
    legend = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend == list(loss_colors)


def test_curves_draw_the_mean_and_std_band_of_seeds(curve_work_dirs):
    figure, labels = curves_figure(curve_work_dirs)
    _, map_axes = figure.axes
    lines = {line.get_label(): line for line in map_axes.lines}
    # mAP (%) of the two baseline seeds: epoch 1 both 10, epoch 2 30 and 31
    mean = lines[labels[0]]
    np.testing.assert_allclose(mean.get_xdata(), [1, 2])
    np.testing.assert_allclose(mean.get_ydata(), [10, 30.5])
    np.testing.assert_allclose(lines['Faster R-CNN YOLOR'].get_xdata(),
                               [1, 2, 3])
    # a band for the variant with several seeds only, in its colour
    band, = map_axes.collections
    assert band.get_facecolor()[0][:3] == pytest.approx(
        to_rgb(mean.get_color()))
    top = band.get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(30.5 + np.std([30, 31], ddof=1))


def test_curves_per_seed(curve_work_dirs, tmp_path):
    labels = plot_curves(
        curve_work_dirs, str(tmp_path / 'curves.png'), per_seed=True)
    assert labels == [
        'Faster R-CNN baseline #1', 'Faster R-CNN YOLOR',
        'Faster R-CNN baseline #2', 'FCOS baseline'
    ]
    figure, _ = curves_figure(curve_work_dirs, per_seed=True)
    _, map_axes = figure.axes
    seed_1, _, seed_2 = map_axes.lines
    assert seed_1.get_color() == seed_2.get_color()
    assert seed_1.get_marker() != seed_2.get_marker()
    assert not map_axes.collections


def test_curve_labels_name_experiments_of_a_detector(tmp_path):
    paths = [
        make_work_dir(tmp_path, name, FASTER_RCNN, one_run((.3, .5, .3)),
                      config)
        for name, config in (('a', 'faster_1x'), ('b', 'faster_2x'))
    ]
    assert curve_labels(load_work_dirs(paths)) == [
        'Faster R-CNN baseline (faster_1x)',
        'Faster R-CNN baseline (faster_2x)'
    ]


def test_implicit_location():
    alignment = ImplicitSite('neck.implicit_alignment.3', ImplicitA(4),
                             ALIGNMENT, 'neck', 3)
    assert implicit_location(alignment) == ('neck', 'neck align L3')
    refinement = ImplicitSite('roi_head.bbox_head.2.fc_cls.implicit_m.0',
                              ImplicitM(4), OUTPUT,
                              'roi_head.bbox_head.2.fc_cls', 0)
    assert implicit_location(refinement) == \
        ('roi_head.bbox_head.2.fc_cls', 'roi_head.bbox_head.2.fc_cls M L0')


@pytest.fixture(scope='module')
def yolor_checkpoints(tmp_path_factory):
    """A tiny YOLOR FCOS config, a checkpoint of its initial weights and a
    'trained' one where the implicit SHIFTED moved by +0.25 and SET_TO_1_5
    (an ImplicitM) became 1.5 everywhere."""
    root = tmp_path_factory.mktemp('yolor')
    cfg = yolorize(get_config(FCOS))
    cfg.model = shrink_backbone(cfg.model)
    config = str(root / 'fcos-yolor_tiny.py')
    cfg.dump(config)
    state = MODELS.build(cfg.model).state_dict()
    init = str(root / 'epoch_1.pth')
    torch.save({'state_dict': state}, init)
    trained_state = {key: value.clone() for key, value in state.items()}
    trained_state[f'{SHIFTED}.implicit'] += 0.25
    trained_state[f'{SET_TO_1_5}.implicit'].fill_(1.5)
    trained = str(root / 'epoch_12.pth')
    torch.save({'state_dict': trained_state}, trained)
    return config, init, trained, state


def test_implicit_drift_between_checkpoints(yolor_checkpoints, tmp_path):
    config, init, trained, _ = yolor_checkpoints
    stats = load_implicit_stats(config, trained, init_checkpoint=init)
    by_name = {item.name: item for item in stats}
    # FCOS: 5 neck levels + 3 prediction layers x (A, M) x 5 levels
    assert len(stats) == 5 + 3 * 2 * 5
    assert by_name[SHIFTED].drift == pytest.approx(0.25)
    assert by_name[SET_TO_1_5].operator == 'multiply'
    assert by_name[SET_TO_1_5].channels == 80
    assert by_name[SET_TO_1_5].mean == pytest.approx(1.5)
    assert by_name[SET_TO_1_5].std == pytest.approx(0)
    assert all(item.drift == 0 for item in stats
               if item.name not in (SHIFTED, SET_TO_1_5))

    out = tmp_path / 'implicit.png'
    plot_implicits(stats, str(out), init)
    assert out.read_bytes().startswith(b'\x89PNG')


def test_implicit_drift_from_the_neutral_element(yolor_checkpoints):
    config, _, trained, init_state = yolor_checkpoints
    stats = load_implicit_stats(config, trained)
    by_name = {item.name: item for item in stats}
    assert by_name[SET_TO_1_5].drift == pytest.approx(0.5)  # |1.5 - 1|
    shifted = init_state[f'{SHIFTED}.implicit'].double() + 0.25
    assert by_name[SHIFTED].operator == 'add'
    assert by_name[SHIFTED].drift == pytest.approx(float(shifted.abs().mean()))

    summary = format_implicit_summary(stats).splitlines()
    assert summary[0] == \
        '| implicit | operator | channels | mean | std | drift |'
    assert f'| {SET_TO_1_5} | multiply | 80 | 1.5000 | 0.0000 | 0.5000 |' \
        in summary


def test_baseline_checkpoint_is_refused(yolor_checkpoints, tmp_path):
    config, _, _, state = yolor_checkpoints
    baseline = str(tmp_path / 'baseline.pth')
    torch.save(
        {
            'state_dict': {
                key: value
                for key, value in state.items() if 'implicit' not in key
            }
        }, baseline)
    with pytest.raises(
            ImplicitPlotError, match='not a checkpoint of this YOLOR'):
        load_implicit_stats(config, baseline)


def test_baseline_config_is_refused(tmp_path):
    cfg = get_config(FCOS)
    cfg.model = shrink_backbone(cfg.model)
    config = str(tmp_path / 'fcos.py')
    cfg.dump(config)
    with pytest.raises(ImplicitPlotError, match='has no implicit layers'):
        load_implicit_stats(config, 'unused.pth')

# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Crafted mmengine work dirs for the tests of the analysis tools (compare,
plot): config dumps, scalars.json records and a checkpoint placeholder.
Imported by name: pytest puts tests/ on sys.path (tests/conftest.py)."""
import json

FASTER_RCNN = dict(type='FasterRCNN', neck=dict(type='FPN'))
FASTER_RCNN_YOLOR = dict(
    type='FasterRCNN', neck=dict(type='YOLORNeck', neck=dict(type='FPN')))


def train_records(first_step, last_step, iters_per_epoch=4):
    """Training lines of scalars.json for steps first..last."""
    return [
        dict(
            base_lr=0.01,
            lr=0.01,
            data_time=0.01,
            grad_norm=5.0,
            loss=5.0 - 0.1 * step,
            loss_cls=1.0,
            time=0.2,
            epoch=(step - 1) // iters_per_epoch + 1,
            iter=step,
            step=step) for step in range(first_step, last_step + 1)
    ]


def val_record(epoch, box, mask=None):
    """A validation line: ``box``/``mask`` are (mAP, mAP_50, mAP_75)."""
    record = {}
    for task, values in (('bbox', box), ('segm', mask)):
        if values is None:
            continue
        for suffix, value in zip(('', '_50', '_75'), values):
            record[f'coco/{task}_mAP{suffix}'] = value
        record.update({
            f'coco/{task}_mAP_s': 0.2,
            f'coco/{task}_mAP_m': 0.4,
            f'coco/{task}_mAP_l': 0.5
        })
    record.update(data_time=0.01, time=0.1, step=epoch)
    return record


def make_work_dir(root,
                  name,
                  model,
                  runs,
                  config_name='faster-rcnn_r50',
                  seed=None,
                  ann_file=None):
    """Write an mmengine-like work dir ``root/name`` and return its path.

    Args:
        model (dict): ``model`` of the config dumps.
        runs (list[tuple[str, list[dict]]]): ``(timestamp, scalars.json
            records)`` of each run.
        config_name (str): Stem of the top-level config dump.
        seed (int, optional): ``randomness.seed`` of the config.
        ann_file (str, optional): The ``ann_file`` of its validation
            ``CocoMetric``.
    """
    work_dir = root / name
    config_text = f'model = {model!r}\n'
    if seed is not None:
        config_text += f'randomness = dict(seed={seed})\n'
    if ann_file is not None:
        config_text += (f'val_evaluator = dict(type="CocoMetric", '
                        f'ann_file={str(ann_file)!r})\n')
    for timestamp, records in runs:
        vis_data = work_dir / timestamp / 'vis_data'
        vis_data.mkdir(parents=True)
        (vis_data / 'scalars.json').write_text(''.join(
            json.dumps(record) + '\n' for record in records))
        (vis_data / 'config.py').write_text(config_text)
    (work_dir / f'{config_name}.py').write_text(config_text)
    (work_dir / 'epoch_1.pth').write_bytes(b'')
    return str(work_dir)


def one_run(box, mask=None, epochs=2):
    """The runs of a work dir trained once for ``epochs`` epochs that ends
    with ``box``/``mask`` metrics."""
    records = []
    for epoch in range(1, epochs + 1):
        records += train_records(4 * epoch - 3, 4 * epoch)
        final = epoch == epochs
        records.append(
            val_record(epoch, box if final else (0.1, 0.2, 0.1),
                       mask if final else None))
    return [('20240101_000000', records)]

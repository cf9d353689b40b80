# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Fixes to defects of the OpenMMLab stack this plugin runs on.

One module per fix (:class:`~.registry.Fix`): the defect, a probe that finds
it on the running stack (from the stack's behaviour, never its version),
and the repair. A fix is applied only where its probe finds the defect, and
each is a strict superset of stock behaviour; none edits an installed
package. ``MMDET_YOLOR_DISABLE_FIXES`` (a comma-separated list of names, or
``all``) keeps the stock stack; :func:`applied_fixes` lists what this
process applied.

Applied when the plugin is imported (:data:`IMPORT_FIXES`):

- ``history_buffer_pickle`` (:mod:`.history_buffer`): mmengine's
  ``HistoryBuffer`` pickles through ``getattr``;
- ``resume`` (:mod:`.resume`): ``torch.load`` loads weights-only by default;
- ``atomic_checkpoints`` (:mod:`.atomic_checkpoints`): mmengine overwrites
  checkpoints in place;
- ``ssd_predict`` (:mod:`.ssd_predict`): ``SSDHead`` lacks the ``loss_cls``
  mmdet's prediction reads;
- ``cpu_mask_paste`` (:mod:`.cpu_mask_paste`): mmdet's CPU mask paste
  raises for a box outside the image;
- ``compile`` (:mod:`.compile_train_step`): dynamo cannot compile mmengine's
  whole ``train_step``; confirmed by the first ``compile=True`` run;
- ``multi_apply`` (:mod:`.multi_apply`): dynamo cannot trace ``map`` over
  several iterables; probed when dynamo is first imported.

Applied by the deploy code before it uses mmdeploy (:data:`DEPLOY_FIXES`):
``onnx_torchscript_exporter`` (:mod:`.onnx_exporter`) and
``onnx_cast_long`` (:mod:`.onnx_cast_long`). Applied by each multi-process
run on a machine without CUDA: ``cpu_distributed``
(:mod:`mmdet_yolor.engine.distributed`).
"""
from typing import List

from . import (atomic_checkpoints, compile_train_step, cpu_mask_paste,
               history_buffer, multi_apply, onnx_cast_long, onnx_exporter,
               resume, ssd_predict)
from .registry import (DISABLE_FIXES_ENV, Fix, applied_fixes,
                       applied_fixes_summary, apply_fixes, declare,
                       is_disabled, record_applied)

IMPORT_FIXES = (history_buffer.FIX, resume.FIX, atomic_checkpoints.FIX,
                ssd_predict.FIX, cpu_mask_paste.FIX, compile_train_step.FIX,
                multi_apply.FIX)
DEPLOY_FIXES = (onnx_exporter.FIX, onnx_cast_long.FIX)
declare(IMPORT_FIXES + DEPLOY_FIXES)


def apply_import_fixes() -> List[str]:
    """Apply the fixes of :data:`IMPORT_FIXES` the stack needs (the
    plugin's import does); return the names applied by this call."""
    return apply_fixes(IMPORT_FIXES)


def apply_deploy_fixes() -> List[str]:
    """Apply the fixes of :data:`DEPLOY_FIXES` the stack needs; the deploy
    code calls it before it uses mmdeploy."""
    return apply_fixes(DEPLOY_FIXES)


__all__ = [
    'DISABLE_FIXES_ENV', 'DEPLOY_FIXES', 'Fix', 'IMPORT_FIXES',
    'applied_fixes', 'applied_fixes_summary', 'apply_deploy_fixes',
    'apply_import_fixes', 'is_disabled', 'record_applied'
]

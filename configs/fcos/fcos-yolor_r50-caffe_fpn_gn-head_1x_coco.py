# FCOS with YOLOR: implicit feature alignment on every FPN level, implicit
# prediction refinement (one implicit pair per level) on the shared head.
# Equals `yolorize()` of the baseline config (tests/test_toggle.py).
_base_ = './fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)

model = dict(
    neck=dict(_delete_=True, type='YOLORNeck', neck=_base_.model.neck),
    bbox_head=dict(
        _delete_=True, type='YOLORHead', head=_base_.model.bbox_head))
# the implicit parameters are not weight-decayed, as in the official code
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'implicit_': dict(decay_mult=0.)}))

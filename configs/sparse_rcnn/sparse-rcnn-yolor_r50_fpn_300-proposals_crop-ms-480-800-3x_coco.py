# Sparse R-CNN with YOLOR: implicit feature alignment on every FPN level,
# implicit prediction refinement on the DIIHead of every stage. The learned
# proposals of EmbeddingRPNHead are input-independent already.
# Equals `yolorize()` of the baseline config (tests/test_toggle.py).
_base_ = './sparse-rcnn_r50_fpn_300-proposals_crop-ms-480-800-3x_coco.py'
custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)

model = dict(
    neck=dict(_delete_=True, type='YOLORNeck', neck=_base_.model.neck),
    roi_head=dict(bbox_head=[
        dict(type='YOLORHead', head=stage_head)
        for stage_head in _base_.model.roi_head.bbox_head
    ]))
# the implicit parameters are not weight-decayed, as in the official code
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'implicit_': dict(decay_mult=0.)}))

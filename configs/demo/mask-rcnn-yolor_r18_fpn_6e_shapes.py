# Mask R-CNN demo with YOLOR; equals `yolorize()` of the baseline demo
# config.
_base_ = './mask-rcnn_r18_fpn_6e_shapes.py'
custom_imports = dict(imports=['mmdet_yolor'], allow_failed_imports=False)

model = dict(
    neck=dict(_delete_=True, type='YOLORNeck', neck=_base_.model.neck),
    rpn_head=dict(_delete_=True, type='YOLORHead', head=_base_.model.rpn_head),
    roi_head=dict(
        bbox_head=dict(
            _delete_=True,
            type='YOLORHead',
            head=_base_.model.roi_head.bbox_head),
        mask_head=dict(
            _delete_=True,
            type='YOLORHead',
            head=_base_.model.roi_head.mask_head)))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys={'implicit_': dict(decay_mult=0.)}))

_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'

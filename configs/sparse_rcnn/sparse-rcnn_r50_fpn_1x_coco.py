_base_ = 'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py'

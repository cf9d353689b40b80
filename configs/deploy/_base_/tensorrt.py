# mmdeploy's TensorRT backend (TensorRT 8 and CUDA; not verified here, see
# docs/deploy.md): images from 320x320 to 1344x1344, optimised for 800x1344.
backend_config = dict(
    type='tensorrt',
    common_config=dict(fp16_mode=False, max_workspace_size=1 << 30),
    model_inputs=[
        dict(
            input_shapes=dict(
                input=dict(
                    min_shape=[1, 3, 320, 320],
                    opt_shape=[1, 3, 800, 1344],
                    max_shape=[1, 3, 1344, 1344])))
    ])

# Copyright (c) mmdet_yolor contributors. All rights reserved.
import pickle


def test_test_evaluates_and_dumps_predictions(tiny_config, run_tool, tmp_path):
    config = tiny_config()
    run_tool('train.py', config, cwd=tmp_path)
    checkpoint = str(tmp_path / 'work' / 'epoch_1.pth')
    out = tmp_path / 'preds.pkl'
    result = run_tool(
        'test.py', config, checkpoint, '--out', str(out), cwd=tmp_path)
    assert 'Epoch(test)' in result.stdout + result.stderr
    with open(out, 'rb') as f:
        predictions = pickle.load(f)
    assert len(predictions) == 4  # the val images
    assert {'img_id', 'pred_instances'} <= set(predictions[0])


def test_test_with_tta(tiny_config, run_tool, tmp_path):
    config = tiny_config()
    run_tool('train.py', config, cwd=tmp_path)
    result = run_tool(
        'test.py',
        config,
        str(tmp_path / 'work/epoch_1.pth'),
        '--tta',
        cwd=tmp_path)
    assert 'DetTTAModel' in result.stdout + result.stderr

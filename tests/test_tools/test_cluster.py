# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""The cluster path, run for real on a local Slurm
(``tools/misc/local_slurm.sh``, started for this module and stopped after):
Slurm tasks train and test as torchrun processes do, two nodes train as one
launch, a requeued batch job resumes to the weights of an uninterrupted
run, and the seed tables go out in one submission.

Every training is a seeded, deterministic tiny FCOS on gloo, so runs that
should agree agree exactly (their weights' largest difference is printed:
``pytest -s``). Where Slurm cannot be installed (no root or no apt-get) the
Slurm tests skip, saying so; ``MMDET_YOLOR_REQUIRE_SLURM=1`` (``.ci/run``)
makes that a failure.
"""
import importlib.util
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time

import pytest
import torch
from processes import REPO, free_port, run, run_tool

from mmdet_yolor.compat.resume import load_from_local

LOCAL_SLURM = osp.join(REPO, 'tools', 'misc', 'local_slurm.sh')
SEED_TABLES = osp.join(REPO, 'tools', 'slurm_seed_tables.py')
PARTITION = 'debug'
SEEDED = [
    '--cfg-options', 'randomness.seed=3', 'randomness.deterministic=True'
]
# 2 fake GPUs: the stock `--gres=gpu:N` of the slurm scripts schedules; 8
# CPUs: several one-CPU jobs run side by side on a 2-core machine
SLURM_OPTIONS = ['--gpus', '2', '--cpus', '8']


@pytest.fixture(scope='module')
def local_slurm(tmp_path_factory):
    """A running local Slurm (SLURM_CONF set for this module); stopped
    after the module if this fixture started it."""
    env = dict(os.environ)
    status = subprocess.run(['bash', LOCAL_SLURM, 'status'],
                            capture_output=True,
                            text=True,
                            env=env)
    started = subprocess.run(['bash', LOCAL_SLURM, 'start', *SLURM_OPTIONS],
                             capture_output=True,
                             text=True,
                             env=env)
    if started.returncode == 3:
        reason = f'no local Slurm: {started.stderr.strip()}'
        if os.environ.get('MMDET_YOLOR_REQUIRE_SLURM') == '1':
            pytest.fail(reason + ' (MMDET_YOLOR_REQUIRE_SLURM=1)')
        pytest.skip(reason)
    assert started.returncode == 0, started.stdout + started.stderr
    conf = subprocess.run(['bash', LOCAL_SLURM, 'env'],
                          capture_output=True,
                          text=True,
                          check=True).stdout.split('=', 1)[1].strip()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('SLURM_CONF', conf)
        yield
    if status.returncode != 0:  # it was not running before
        subprocess.run(['bash', LOCAL_SLURM, 'stop'], check=True)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny FCOS config (GN: the same batch statistics however the batch
    is split) in a module-wide folder, and a torchrun training of it with 2
    processes: the reference of the launches below."""
    from yolor_testing import tiny_fcos_config
    root = tmp_path_factory.mktemp('cluster')
    cfg = tiny_fcos_config(
        str(root / 'data'), str(root / 'work'), max_epochs=2, norm='GN')
    # untrained scores are below FCOS's 0.05: keep every box for the tests
    cfg.model.test_cfg.score_thr = 0.0
    config = str(root / 'tiny.py')
    cfg.dump(config)
    run_tool(
        'dist_train.sh',
        config,
        '2',
        *SEEDED,
        '--work-dir',
        str(root / 'torchrun'),
        cwd=root)
    return root, config


def weights(path):
    return load_from_local(str(path))['state_dict']


def max_difference(a, b):
    """The largest absolute difference between two state dicts."""
    assert a.keys() == b.keys()
    return max(
        (a[key].double() - b[key].double()).abs().max().item() for key in a)


def assert_same_weights(a_path, b_path, what):
    difference = max_difference(weights(a_path), weights(b_path))
    print(f'{what}: max abs weight difference {difference}')
    assert difference == 0, what


# slow: Slurm jobs and multi-process trainings
@pytest.mark.slow
def test_slurm_tasks_train_as_torchrun_processes(local_slurm, tiny):
    root, config = tiny
    # the stock GPU request (on the node's fake GPUs), no MASTER_ADDR:
    # mmengine reads the master from `scontrol show hostname`
    env = dict(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1')
    result = run_tool(
        'slurm_train.sh',
        PARTITION,
        'tiny',
        config,
        str(root / 'slurm'),
        *SEEDED,
        cwd=root,
        env=env)
    log = result.stdout + result.stderr
    assert '--gres=gpu:2' in log
    assert "'backend': 'gloo'" in log or "backend='gloo'" in log
    assert 'MASTER_ADDR' not in os.environ
    assert_same_weights(root / 'slurm' / 'epoch_2.pth',
                        root / 'torchrun' / 'epoch_2.pth',
                        'slurm_train.sh vs dist_train.sh, 2 tasks each')


# slow: Slurm jobs and multi-process trainings
@pytest.mark.slow
def test_two_nodes_train_as_one_launch(tiny):
    # no Slurm: two launches on this host as two nodes would, loopback
    root, config = tiny
    port = free_port()
    nodes = [
        subprocess.Popen([
            'bash',
            osp.join(REPO, 'tools', 'dist_train.sh'), config, '1', *SEEDED,
            '--work-dir',
            str(root / 'two-nodes')
        ],
                         cwd=root,
                         env=dict(
                             os.environ,
                             OMP_NUM_THREADS='1',
                             PYTHON=sys.executable,
                             NNODES='2',
                             NODE_RANK=str(rank),
                             MASTER_ADDR='127.0.0.1',
                             PORT=port),
                         stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT,
                         text=True) for rank in (0, 1)
    ]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs
    assert_same_weights(root / 'two-nodes' / 'epoch_2.pth',
                        root / 'torchrun' / 'epoch_2.pth',
                        'dist_train.sh on 2 nodes vs 1 node, 2 processes')


def logged_test_metrics(work_dir):
    """The metrics of the (only) test run in a work dir (not its
    timings)."""
    logs = [
        path for path in work_dir.glob('*/*.json')
        if path.stem == path.parent.name
    ]
    metrics, = [json.loads(path.read_text()) for path in logs]
    return {key: value for key, value in metrics.items() if '/' in key}


# slow: Slurm jobs and multi-process trainings
@pytest.mark.slow
def test_slurm_test_evaluates_as_test_py(local_slurm, tiny, run_tool):
    root, config = tiny
    checkpoint = str(root / 'torchrun' / 'epoch_2.pth')
    run_tool(
        'test.py',
        config,
        checkpoint,
        '--work-dir',
        str(root / 'test-one'),
        '--out',
        str(root / 'one.pkl'),
        cwd=root)
    # a CPU partition: no GPU request at all
    result = run_tool(
        'slurm_test.sh',
        PARTITION,
        'tiny-test',
        config,
        checkpoint,
        '--work-dir',
        str(root / 'test-slurm'),
        '--out',
        str(root / 'slurm.pkl'),
        cwd=root,
        env=dict(GPUS='2', GPUS_PER_NODE='2', CPUS_PER_TASK='1', GRES='none'))
    assert '--gres' not in result.stdout + result.stderr
    one, slurm = (
        pickle.loads((root / name).read_bytes())
        for name in ('one.pkl', 'slurm.pkl'))
    assert [p['img_id'] for p in slurm] == [p['img_id'] for p in one]
    for a, b in zip(one, slurm):
        # the same model on the same images: the same boxes
        assert len(a['pred_instances']['bboxes']) > 0
        torch.testing.assert_close(a['pred_instances']['bboxes'],
                                   b['pred_instances']['bboxes'])
        torch.testing.assert_close(a['pred_instances']['scores'],
                                   b['pred_instances']['scores'])
    metrics = logged_test_metrics(root / 'test-one')
    assert 'coco/bbox_mAP' in metrics
    assert logged_test_metrics(root / 'test-slurm') == metrics


def job_state(job):
    output = subprocess.run(['scontrol', 'show', 'job', job],
                            capture_output=True,
                            text=True).stdout
    for field in output.split():
        if field.startswith('JobState='):
            return field.split('=', 1)[1]
    return 'UNKNOWN'


def wait_for(condition, what, timeout=300):
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError(f'timed out waiting for {what}')
        time.sleep(0.5)


# slow: Slurm jobs and multi-process trainings
@pytest.mark.slow
def test_requeued_batch_job_resumes_to_the_uninterrupted_weights(
        local_slurm, tiny, run_tool):
    root = tiny[0]
    from yolor_testing import tiny_fcos_config
    cfg = tiny_fcos_config(
        str(root / 'data-long'),
        str(root / 'work-long'),
        max_epochs=3,
        num_train=16,
        flip=True)
    config = str(root / 'long.py')
    cfg.dump(config)
    run_tool(
        'train.py',
        config,
        *SEEDED,
        '--work-dir',
        str(root / 'whole'),
        cwd=root)

    work = root / 'requeued'
    output = root / 'requeued.out'
    job = run([
        'sbatch', '--parsable', f'--partition={PARTITION}', '--ntasks=1',
        '--cpus-per-task=1', f'--output={output}',
        osp.join(REPO, 'tools', 'sbatch_train.sh'), config,
        str(work), *SEEDED
    ],
              str(root),
              env=dict(MMDET_YOLOR_ROOT=REPO,
                       PYTHON=sys.executable)).stdout.strip()
    wait_for(lambda: (work / 'epoch_1.pth').is_file(), 'the first checkpoint')
    run(['scontrol', 'requeue', job], str(root))  # as preemption does
    wait_for(lambda: job_state(job) in ('COMPLETED', 'FAILED', 'CANCELLED'),
             'the requeued job to end')
    log = output.read_text()
    assert job_state(job) == 'COMPLETED', log
    assert f'job {job} start 2' in log, log  # it ran again
    resumed = [line for line in log.splitlines() if 'resumed epoch:' in line]
    assert len(resumed) == 1 and 'resumed epoch: 3' not in resumed[0], log
    assert_same_weights(work / 'epoch_3.pth', root / 'whole' / 'epoch_3.pth',
                        'requeued sbatch job vs uninterrupted train.py')


def write_yolor_config(baseline, path):
    path.write_text(f'_base_ = {baseline!r}\n'
                    "custom_imports = dict(imports=['mmdet_yolor'])\n"
                    'model = dict(\n'
                    "    neck=dict(_delete_=True, type='YOLORNeck', "
                    'neck=_base_.model.neck),\n'
                    "    bbox_head=dict(_delete_=True, type='YOLORHead', "
                    'head=_base_.model.bbox_head))\n')
    return str(path)


# slow: Slurm jobs and multi-process trainings
@pytest.mark.slow
def test_seed_tables_in_one_submission(local_slurm, tiny):
    root, config = tiny
    # two rows of tiny configs: FCOS as above, and with a BN backbone
    from yolor_testing import tiny_fcos_config
    bn = tiny_fcos_config(str(root / 'data'), str(root / 'work-bn'))
    bn.model.test_cfg.score_thr = 0.0
    bn_config = str(root / 'tiny-bn.py')
    bn.dump(bn_config)
    rows = [
        f'{baseline}:{write_yolor_config(baseline, root / name)}'
        for baseline, name in ((config, 'tiny-yolor.py'), (bn_config,
                                                           'tiny-bn-yolor.py'))
    ]
    work_dir = root / 'seed-tables'
    submitted = run([
        sys.executable, SEED_TABLES, PARTITION,
        str(work_dir), '--rows', *rows, '--seeds', '1', '--gpus', '1',
        '--gpus-per-node', '1', '--cpus-per-task', '1', '--gres', 'none', '--',
        '--cfg-options', 'train_cfg.max_epochs=1'
    ], str(root))
    final = submitted.stdout.strip().splitlines()[-1].split(
        'job ')[1].split()[0]
    wait_for(
        lambda: job_state(final) in
        ('COMPLETED', 'FAILED', 'CANCELLED', 'UNKNOWN'),
        'the results job',
        timeout=600)
    results = (work_dir / 'results.md').read_text()
    print(results)
    assert 'Measured: 4 of 4 runs' in results
    assert 'Runs without results' not in results
    # each run trained, then tested its last checkpoint
    for run_dir in work_dir.glob('*/seed0'):
        assert (run_dir / 'epoch_1.pth').is_file()
        assert list((run_dir / 'test').glob('*/*.json'))
    # the table is compare.py's over the four work dirs, with the interval
    # over images their kept predictions give; the verdicts suggest the
    # submission of more seeds
    compared = run([
        sys.executable,
        osp.join(REPO, 'tools', 'analysis', 'compare.py'),
        *map(str, sorted(work_dir.glob('*/seed0')))
    ], str(root)).stdout.strip()
    table = compared.split('\n\n')[0]
    assert table in results
    assert table.count('| **FCOS**') == 4
    assert table.count('| 95 % CI, images, seed 0 |') == 2
    assert results.count('submit the rows with --seeds 3 (this submission '
                         'trained 1) for the interval over seeds') == 2
    # the seed reported nothing for these configs
    assert '| tiny-bn | ✓ |' in results


def test_seed_tables_results_put_the_seed_numbers_beside(tmp_path):
    # no run has finished: the seed's numbers, and the runs listed missing
    spec = importlib.util.spec_from_file_location('slurm_seed_tables',
                                                  SEED_TABLES)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rows = tool.resolve_rows(['atss', 'mask-rcnn'])
    jobs = tool.plan_jobs(rows, 2, str(tmp_path))
    tool.write_manifest(str(tmp_path), rows, jobs)
    tool.main(['--results', str(tmp_path)])
    results = (tmp_path / 'results.md').read_text()
    assert 'Measured: 0 of 8 runs' in results
    assert '| atss_r50_fpn_1x_coco | ✓ | - | 39.6 | - | - |' in results
    assert '| mask-rcnn_r50_fpn_1x_coco |  | - | 38.2 | - | 34.7 |' in results
    assert results.count(' (see its slurm-*.out)') == 8
    with pytest.raises(SystemExit, match='matches several rows'):
        tool.resolve_rows(['sparse-rcnn'])


def test_seed_tables_dry_run_lists_every_run():
    result = run([
        sys.executable, SEED_TABLES, 'gpu', 'out', '--seeds', '2', '--dry-run',
        '--', '--cfg-options', 'train_cfg.max_epochs=1'
    ], REPO)
    lines = result.stdout.strip().splitlines()
    # 6 rows x (baseline, YOLOR) x 2 seeds, then the results job
    assert len(lines) == 25
    assert all('sbatch_train.sh' in line and '--requeue' in line
               and '--gres=gpu:8' in line for line in lines[:24])
    assert sum('atss-yolor_r50_fpn_1x_coco.py' in line for line in lines) == 2
    assert 'randomness.seed=1 train_cfg.max_epochs=1' in lines[1]
    assert '--dependency=afterany:' in lines[-1]

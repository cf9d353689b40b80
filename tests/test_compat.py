# Copyright (c) mmdet_yolor contributors. All rights reserved.
import copy
import copyreg
import os
import pickle
import pickletools
import stat
import subprocess
import sys
import textwrap
import types
import weakref
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.fileio import LocalBackend
from mmengine.logging import HistoryBuffer, MessageHub, MMLogger
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from torch._dynamo.utils import counters

from mmdet_yolor import compat
from mmdet_yolor.stack_api import loads_weights_only_by_default
from yolor_dev.compiling import count_compilation


def message_hub_checkpoint(path):
    hub = MessageHub('compat-test')
    for value in (1.0, 2.0, 4.0):
        hub.update_scalar('train/loss', value)
    hub.update_info('eta', np.float64(3.5))
    torch.save(
        dict(state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict()),
        path)


def test_history_buffer_pickles_without_getattr():
    buffer = HistoryBuffer([1.0, 2.0], [1, 1], max_length=5)
    # the protocol torch.save uses
    data = pickle.dumps(buffer, protocol=torch.serialization.DEFAULT_PROTOCOL)
    assert not [
        arg for op, arg, _ in pickletools.genops(data) if 'getattr' in str(arg)
    ]
    restored = pickle.loads(pickle.dumps(buffer))
    assert restored.mean() == 1.5 and restored.max_length == 5
    assert copy.deepcopy(buffer).current() == 2.0


def test_resume_checkpoint_loads_with_weights_only(tmp_path):
    path = str(tmp_path / 'ckpt.pth')
    message_hub_checkpoint(path)
    # the stock torch.load of torch >= 2.6 refuses HistoryBuffer
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    checkpoint = CheckpointLoader.load_checkpoint(path)
    buffer = checkpoint['message_hub']['log_scalars']['train/loss']
    assert buffer.mean() == pytest.approx(7 / 3)
    assert checkpoint['message_hub']['runtime_info']['eta'] == 3.5


def test_checkpoint_with_unsafe_objects_needs_explicit_trust(
        tmp_path, monkeypatch):
    path = str(tmp_path / 'foreign.pth')
    # as written without mmdet_yolor imported: HistoryBuffer pickled via
    # getattr
    reducer = copyreg.dispatch_table.pop(HistoryBuffer)
    try:
        message_hub_checkpoint(path)
    finally:
        copyreg.pickle(HistoryBuffer, reducer)
    if loads_weights_only_by_default():
        with pytest.raises(compat.CheckpointError) as error:
            CheckpointLoader.load_checkpoint(path)
        message = str(error.value)
        # the one object not allowed, why it is there, and what to do
        assert ('safe to load (builtins.getattr); a checkpoint with '
                'builtins.getattr was probably written without mmdet_yolor '
                'imported. If you trust the file, set '
                'MMDET_YOLOR_TRUST_CHECKPOINTS=1 to load it.') in message
    else:  # a torch that unpickles everything by default: as stock torch
        assert 'train/loss' in CheckpointLoader.load_checkpoint(
            path)['message_hub']['log_scalars']
    monkeypatch.setenv(compat.TRUST_CHECKPOINTS_ENV, '1')
    checkpoint = CheckpointLoader.load_checkpoint(path)
    assert 'train/loss' in checkpoint['message_hub']['log_scalars']


def test_missing_and_corrupt_checkpoints_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth does not exist'):
        compat.load_from_local(str(tmp_path / 'nope.pth'))
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(100))), good)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(good.read_bytes()[:200])
    not_a_checkpoint = tmp_path / 'notes.pth'
    not_a_checkpoint.write_text('not a checkpoint')
    for path in (truncated, not_a_checkpoint):
        with pytest.raises(compat.UnreadableCheckpointError) as error:
            compat.load_from_local(str(path))
        message = str(error.value)
        # one line: the file, what is wrong, what to do; nothing of torch's
        assert '\n' not in message
        assert message.startswith(f'checkpoint {path} is not a readable '
                                  'checkpoint (truncated or corrupt): use')
        assert 'weights_only' not in message
        # code catching what torch raises still catches it
        assert isinstance(error.value, RuntimeError)


def test_stock_checkpoints_load_as_before(tmp_path):
    # what mmengine's own loader reads: plain state dicts, and full
    # checkpoints with meta and optimizer state
    plain = tmp_path / 'plain.pth'
    torch.save(dict(w=torch.arange(3.)), plain)
    full = tmp_path / 'full.pth'
    torch.save(
        dict(
            meta=dict(epoch=3, seed=0, mmdet_version='3.3.0'),
            state_dict=dict(w=torch.ones(2)),
            optimizer=dict(state={}, param_groups=[dict(lr=0.1)])), full)
    for path in (plain, full):
        expected = torch.load(path, map_location='cpu')
        loaded = CheckpointLoader.load_checkpoint(str(path), 'cpu')
        assert str(expected) == str(loaded)
    # an object the stock loader refuses is refused the same way
    foreign = tmp_path / 'foreign.pth'
    torch.save(dict(config=Config(dict(a=1))), foreign)
    if not loads_weights_only_by_default():  # and one it loads, loaded
        config = CheckpointLoader.load_checkpoint(str(foreign))['config']
        assert config.to_dict() == dict(a=1)
        return
    with pytest.raises(pickle.UnpicklingError):
        torch.load(foreign)
    with pytest.raises(
            pickle.UnpicklingError, match=compat.TRUST_CHECKPOINTS_ENV):
        CheckpointLoader.load_checkpoint(str(foreign))


def test_setup_distributed_does_nothing_single_process():
    cfg = Config(dict(launcher='none'))
    compat.setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


def _setup_distributed_on_gloo(monkeypatch, cfg, **environment):
    """Run setup_distributed in the environment a launcher sets."""
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    try:
        compat.setup_distributed(cfg)
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert torch_dist.get_world_size() == 1
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_uses_gloo_without_cuda(monkeypatch):
    cfg = Config(
        dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    _setup_distributed_on_gloo(  # what torchrun sets
        monkeypatch,
        cfg,
        RANK='0',
        LOCAL_RANK='0',
        WORLD_SIZE='1',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT='29533')


@pytest.mark.skipif(torch.cuda.is_available(), reason='CPU-only behaviour')
def test_setup_distributed_runs_slurm_tasks_without_cuda(monkeypatch):
    _setup_distributed_on_gloo(  # what srun sets
        monkeypatch,
        Config(dict(launcher='slurm')),
        SLURM_PROCID='0',
        SLURM_LOCALID='0',
        SLURM_NTASKS='1',
        SLURM_NODELIST='localhost',
        MASTER_ADDR='127.0.0.1',
        MASTER_PORT='29534')
    # mmengine read the rank and world size from Slurm's variables
    assert os.environ['RANK'] == '0' and os.environ['WORLD_SIZE'] == '1'
    # the device selection is back for the rest of the process
    assert torch.cuda.set_device.__module__ == 'torch.cuda'


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(dict(state_dict=dict(w=torch.ones(3))), str(path))
    before = path.read_bytes()

    # a kill while the new bytes are written leaves the old file intact
    def interrupted_write(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(compat.os, 'fsync', interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(dict(state_dict=dict(w=torch.zeros(3))), str(path))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_atomic_writes_honour_the_umask(tmp_path):
    backend = compat.LocalBackend()
    old = os.umask(0o022)
    try:
        backend.put(b'x', tmp_path / 'shared.pth')
        os.umask(0o077)
        backend.put_text('y', tmp_path / 'private.txt')
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / 'shared.pth').st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / 'private.txt').st_mode) == 0o600
    # a replaced file keeps its permissions, as open(path, 'wb') keeps them
    os.chmod(tmp_path / 'shared.pth', 0o640)
    backend.put(b'z', tmp_path / 'shared.pth')
    assert stat.S_IMODE(os.stat(tmp_path / 'shared.pth').st_mode) == 0o640
    assert (tmp_path / 'shared.pth').read_bytes() == b'z'


def test_atomic_writes_go_through_symlinks(tmp_path):
    (tmp_path / 'real.pth').write_bytes(b'old')
    os.symlink('real.pth', tmp_path / 'latest.pth')
    compat.LocalBackend().put(b'new', tmp_path / 'latest.pth')
    assert (tmp_path / 'latest.pth').is_symlink()
    assert (tmp_path / 'real.pth').read_bytes() == b'new'


def test_other_backends_and_file_operations_are_stock(tmp_path):
    from mmengine.fileio import HTTPBackend, PetrelBackend
    from mmengine.fileio.backends import registry_utils
    assert registry_utils.backends['http'] is HTTPBackend
    assert registry_utils.backends['petrel'] is PetrelBackend
    assert registry_utils.prefix_to_backends['https'] is HTTPBackend
    assert registry_utils.prefix_to_backends['s3'] is PetrelBackend
    assert registry_utils.backends['local'] is compat.LocalBackend
    # everything but writing is mmengine's LocalBackend
    overridden = {
        name
        for name, value in vars(compat.LocalBackend).items()
        if callable(value) or isinstance(value, staticmethod)
    }
    assert overridden == {'put', 'put_text', '_write_atomically'}
    (tmp_path / 'a').mkdir()
    (tmp_path / 'a' / 'f.txt').write_text('hello')
    stock, atomic = LocalBackend(), compat.LocalBackend()
    for backend in (stock, atomic):
        assert backend.get_text(tmp_path / 'a' / 'f.txt') == 'hello'
        assert backend.exists(tmp_path / 'a') and backend.isdir(tmp_path / 'a')
        assert sorted(backend.list_dir_or_file(tmp_path, recursive=True)) \
            == ['a', 'a/f.txt']
    # what either writes reads back the same
    stock.put_text('same', tmp_path / 'stock.txt')
    atomic.put_text('same', tmp_path / 'atomic.txt')
    assert (tmp_path / 'stock.txt').read_bytes() == \
        (tmp_path / 'atomic.txt').read_bytes()


def test_fixes_are_applied_once():
    assert compat.apply_fixes() == []  # importing the plugin applied them
    assert CheckpointLoader._schemes[''] is compat.load_from_local


def test_replacements_look_like_what_they_replace(tmp_path):
    # mmengine's own test of its loaders, and the scheme it logs
    loader = CheckpointLoader._get_checkpoint_loader(str(tmp_path / 'a.pth'))
    assert loader.__name__ == 'load_from_local'
    assert compat.LocalBackend().name == LocalBackend().name == 'LocalBackend'
    assert isinstance(compat.LocalBackend(), LocalBackend)
    # what pickles by name still does (dataloader workers that spawn)
    restored = pickle.loads(pickle.dumps(compat.LocalBackend()))
    assert type(restored) is compat.LocalBackend
    assert pickle.loads(pickle.dumps(loader)) is loader
    assert Runner._maybe_compile.__name__ == '_maybe_compile'
    assert Runner._maybe_compile.__wrapped__.__module__ == \
        'mmengine.runner.runner'


STOCK_STATE = textwrap.dedent("""
    import copyreg
    from mmengine.fileio.backends import registry_utils
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import CheckpointLoader
    from mmdet.models.dense_heads import SSDHead
    import mmdet_yolor
    from mmdet.models.utils.misc import multi_apply
    print(CheckpointLoader._schemes[''].__module__.split('.')[0],
          registry_utils.backends['local'].__module__.split('.')[0],
          HistoryBuffer in copyreg.dispatch_table,
          hasattr(SSDHead, 'loss_cls'),
          hasattr(Runner._maybe_compile, '__wrapped__'),
          multi_apply.__code__.co_filename == mmdet_yolor.compat.__file__)
""")


# (the default, every fix applied, is what this process shows)
@pytest.mark.parametrize('disabled,expected', [
    ('all', 'mmengine mmengine False False False False'),
    ('resume', 'mmengine mmdet_yolor False True True True'),
    ('atomic_checkpoints', 'mmdet_yolor mmengine True True True True'),
    ('ssd_predict,compile', 'mmdet_yolor mmdet_yolor True False False True'),
    ('multi_apply', 'mmdet_yolor mmdet_yolor True True True False'),
])
def test_fixes_can_be_disabled(disabled, expected):
    env = dict(os.environ, **{compat.DISABLE_FIXES_ENV: disabled})
    result = subprocess.run([sys.executable, '-c', STOCK_STATE],
                            capture_output=True,
                            text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_unknown_fix_names_are_refused(monkeypatch):
    monkeypatch.setenv(compat.DISABLE_FIXES_ENV, 'resume,atomic')
    with pytest.raises(ValueError, match="unknown fixes \\['atomic'\\]"):
        compat.apply_fixes()


def test_ssd_predicts():
    """Stock mmdet 3.3.0 fails here with ``'SSDHead' object has no
    attribute 'loss_cls'`` (open-mmlab/mmdetection#11305)."""
    head = MODELS.build(
        dict(
            type='SSDHead',
            num_classes=3,
            in_channels=(8, 8, 8),
            stacked_convs=0,
            anchor_generator=dict(
                type='SSDAnchorGenerator',
                scale_major=False,
                input_size=64,
                min_sizes=[8, 16, 32],
                max_sizes=[16, 32, 64],
                strides=[8, 16, 32],
                ratios=[[2], [2], [2]]),
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[.0, .0, .0, .0],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            test_cfg=ConfigDict(
                nms_pre=100,
                nms=dict(type='nms', iou_threshold=0.45),
                min_bbox_size=0,
                score_thr=0.0,
                max_per_img=10)))
    torch.manual_seed(0)
    feats = tuple(torch.rand(1, 8, size, size) for size in (8, 4, 2))
    results = head.predict(
        feats, [DetDataSample(metainfo=dict(img_shape=(64, 64)))],
        rescale=False)
    assert len(results[0]) == 10
    assert head.loss_cls is None


def test_end_distributed_shuts_the_process_group_down(tmp_path):
    torch_dist.init_process_group(
        'gloo', init_method=f'file://{tmp_path}/store', rank=0, world_size=1)
    # the runner's DDP wrapper (its reducer holds the group) is freed first
    from mmengine.model import MMDistributedDataParallel
    model = torch.nn.Linear(2, 2)
    wrapper = MMDistributedDataParallel(module=model, device_ids=None)
    freed = weakref.ref(wrapper)
    runner = types.SimpleNamespace(model=wrapper)
    del wrapper
    compat.end_distributed(runner)
    assert not torch_dist.is_initialized()
    assert runner.model is model and freed() is None
    compat.end_distributed(runner)  # single-process: nothing to do


class ToyModel(BaseModel):
    """A linear model with mmengine's forward modes."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return [out]


def compile_train_step(model):
    """What mmengine's Runner does for ``compile=dict(backend='eager')``."""
    runner = SimpleNamespace(
        cfg=Config(dict(compile=dict(backend='eager'))),
        model=model,
        logger=MMLogger.get_current_instance())
    Runner._maybe_compile(runner, 'train_step')


def test_compile_compiles_forward_and_loss_not_the_optimizer_step():
    model = ToyModel()
    compile_train_step(model)
    assert 'train_step' not in vars(model)  # stock mmengine replaces it
    optim_wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    data = dict(inputs=torch.randn(4, 3))
    torch._dynamo.reset()
    counters.clear()
    before = model.linear.weight.clone()
    model.train_step(data, optim_wrapper)
    compiled_frames = counters['frames']['total']
    assert compiled_frames >= 1  # the loss forward ran compiled
    assert not torch.equal(model.linear.weight, before)  # and it trained
    model.val_step(data)  # predictions run eagerly
    assert counters['frames']['total'] == compiled_frames
    torch._dynamo.reset()


class PlainTrainStep(torch.nn.Module):
    """A model with a ``train_step`` of its own and no mmengine
    ``_run_forward`` (not a BaseModel)."""

    def train_step(self, data, optim_wrapper):
        return dict(loss=data.sum())


def test_compile_of_a_model_without_run_forward_is_stock():
    model = PlainTrainStep()
    compile_train_step(model)
    # stock mmengine: the train_step itself, compiled
    assert 'train_step' in vars(model)
    torch._dynamo.reset()
    assert model.train_step(torch.ones(2), None)['loss'] == 2
    torch._dynamo.reset()


def test_multi_apply_runs_levels_as_stock_and_compiles_whole():
    from mmdet.models.utils import multi_apply
    from mmdet.models.utils.misc import multi_apply as misc_multi_apply
    assert multi_apply is misc_multi_apply  # the same function, patched
    assert multi_apply.__name__ == 'multi_apply'

    def level(x, scale, offset=0):
        return x * scale + offset, scale

    features = [torch.ones(2) * i for i in range(3)]
    scales = [1.0, 2.0, 3.0]
    outputs, used = multi_apply(level, features, scales, offset=1)
    assert used == scales
    assert [o.tolist() for o in outputs] == [[1, 1], [3, 3], [7, 7]]
    # stock multi_apply's map() over two iterables broke the graph on torch
    # < 2.3; over zip every torch captures it whole
    counts = count_compilation(lambda *xs: multi_apply(level, xs, scales)[0],
                               *features)
    assert (counts.frames, counts.graph_breaks, counts.recompiles) == (1, 0, 0)

# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Submit the seed tables to Slurm in one go, and write their table.

For each row (a baseline config and its YOLOR config) and each seed, the
baseline and the YOLOR training are submitted as requeue-safe batch jobs
(``tools/sbatch_train.sh``: train, resuming after a requeue, then test the
last checkpoint); a final job, which waits for all of them, writes
``WORK_DIR/results.md``: the seed-style table of ``tools/analysis/
compare.py`` (mean ± std over seeds, the 95 % intervals over seeds and
over images, a verdict per row) and the numbers the seed reported::

    python tools/slurm_seed_tables.py PARTITION WORK_DIR \\
        [--rows ROW ...] [--seeds N] [--dry-run] [-- train.py options]

A row is the name of a seed-table row (its baseline config's name, or a
prefix naming one row: ``atss``, ``sparse-rcnn_r50_fpn_1x``; default: all
six, twelve runs a seed) or ``BASELINE.py:YOLOR.py`` (any two configs, e.g.
an ablation of your own). Seed ``s`` trains with ``randomness.seed=s`` in
``WORK_DIR/<config name>/seed<s>``. ``--dry-run`` prints the jobs and
submits nothing; ``--results WORK_DIR`` writes the table from what has
finished (the final job runs that). GPUs and CPUs per job as in
``tools/slurm_train.sh`` (``--gpus``, ``--gpus-per-node``,
``--cpus-per-task``, ``--gres none`` for a CPU partition); ``--sbatch-args``
adds sbatch options (``--time``, ``--qos``, ``--account``).
"""
import argparse
import json
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmdet_yolor.package_data import SEED_CONFIGS

TOOLS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TOOLS)

MANIFEST = 'seed_tables.json'
RESULTS = 'results.md'
# The seed's numbers in the metafiles (configs/*/metafile.yml): their name
# there and the metric that measures them
REPORTED_METRICS = {'box AP': 'bbox_mAP', 'mask AP': 'segm_mAP'}


class Row(NamedTuple):
    """A row of the table: a baseline config and its YOLOR config."""
    baseline: str
    yolor: str

    @property
    def name(self) -> str:
        return config_name(self.baseline)


class Job(NamedTuple):
    """One training (then test) of a config with a seed."""
    config: str
    seed: int
    work_dir: str

    @property
    def name(self) -> str:
        return f'{config_name(self.config)}-seed{self.seed}'


def config_name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def configs_root() -> str:
    """The seed-table configs: the repository's ``configs/``, or the
    installed package's copy."""
    local = osp.join(ROOT, 'configs')
    if osp.isdir(local):
        return local
    from mmdet_yolor.package_data import CONFIGS_ROOT
    return CONFIGS_ROOT


def seed_rows() -> List[Row]:
    root = configs_root()
    return [
        Row(osp.join(root, baseline), osp.join(root, yolor))
        for baseline, yolor in SEED_CONFIGS
    ]


def resolve_rows(specs: Optional[Sequence[str]]) -> List[Row]:
    """The rows named by ``specs`` (see the module docstring); all seed
    rows when None.

    Raises:
        SystemExit: Naming the spec that matches no row, several rows, or a
            config that does not exist.
    """
    known = seed_rows()
    if not specs:
        return known
    rows = []
    for spec in specs:
        if ':' in spec:
            row = Row(*(osp.abspath(path) for path in spec.split(':', 1)))
            missing = [path for path in row if not osp.isfile(path)]
            if missing:
                raise SystemExit(f'slurm_seed_tables: --rows {spec}: '
                                 f'{", ".join(missing)} does not exist')
            rows.append(row)
            continue
        matches = [row for row in known if row.name.startswith(spec)]
        exact = [row for row in matches if row.name == spec]
        if len(exact or matches) != 1:
            found = 'matches no row' if not matches else (
                'matches several rows')
            raise SystemExit(
                f'slurm_seed_tables: --rows {spec} {found}; the seed rows '
                f'are {", ".join(row.name for row in known)} (a unique '
                f'prefix is enough), or give BASELINE.py:YOLOR.py')
        rows.append((exact or matches)[0])
    return rows


def plan_jobs(rows: Sequence[Row], seeds: int, work_dir: str) -> List[Job]:
    """The training jobs: each row's baseline and YOLOR config with each
    seed, in ``WORK_DIR/<config name>/seed<s>``."""
    return [
        Job(config, seed, osp.join(work_dir, config_name(config),
                                   f'seed{seed}')) for row in rows
        for config in row for seed in range(seeds)
    ]


def with_seed(train_options: Sequence[str], seed: int) -> List[str]:
    """``train_options`` with ``randomness.seed=seed`` added to their
    ``--cfg-options`` (a second ``--cfg-options`` would replace the
    first)."""
    options = list(train_options)
    setting = f'randomness.seed={seed}'
    if '--cfg-options' in options:
        options.insert(options.index('--cfg-options') + 1, setting)
    else:
        options += ['--cfg-options', setting]
    return options


def resource_options(args) -> List[str]:
    options = [
        f'--ntasks={args.gpus}',
        f'--ntasks-per-node={min(args.gpus, args.gpus_per_node)}',
        f'--cpus-per-task={args.cpus_per_task}'
    ]
    gres = args.gres or f'gpu:{args.gpus_per_node}'
    if gres != 'none':
        options.append(f'--gres={gres}')
    return options


def train_command(job: Job, args) -> List[str]:
    """The sbatch command of a training job."""
    return [
        'sbatch', '--parsable', f'--partition={args.partition}',
        f'--job-name={job.name}', *resource_options(args), '--requeue',
        f'--output={osp.join(job.work_dir, "slurm-%j.out")}',
        *shlex.split(args.sbatch_args),
        osp.join(TOOLS, 'sbatch_train.sh'), job.config, job.work_dir,
        *with_seed(args.train_options, job.seed)
    ]


def results_command(job_ids: Sequence[str], args) -> List[str]:
    """The sbatch command of the final job, which writes results.md once
    every training job has ended (``afterany``: a failed run shows in the
    table as missing instead of holding the table back forever)."""
    dependency = ['--dependency=afterany:' +
                  ':'.join(job_ids)] if job_ids else []
    write = [args.python, osp.abspath(__file__), '--results', args.work_dir]
    return [
        'sbatch', '--parsable', f'--partition={args.partition}',
        '--job-name=seed-tables-results', *dependency, '--ntasks=1',
        '--cpus-per-task=1',
        f'--output={osp.join(args.work_dir, "results-%j.out")}',
        *shlex.split(args.sbatch_args), '--wrap',
        shlex.join(write)
    ]


def job_environment(args) -> Dict[str, str]:
    """What the batch jobs need: the tools' root, the interpreter, and a
    test after each training."""
    return dict(
        MMDET_YOLOR_ROOT=ROOT, PYTHON=args.python, TEST_AFTER_TRAINING='1')


def submit(command: List[str], env: Dict[str, str]) -> str:
    """Run sbatch; return the job id."""
    result = subprocess.run(
        command, env=dict(os.environ, **env), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f'slurm_seed_tables: {shlex.join(command)} failed: '
                         f'{result.stderr.strip()}')
    return result.stdout.strip().split(';')[0]


def write_manifest(work_dir: str, rows: Sequence[Row],
                   jobs: Sequence[Job]) -> None:
    with open(osp.join(work_dir, MANIFEST), 'w', encoding='utf-8') as file:
        json.dump(
            dict(
                rows=[row._asdict() for row in rows],
                jobs=[job._asdict() for job in jobs]),
            file,
            indent=2)


def read_manifest(work_dir: str):
    path = osp.join(work_dir, MANIFEST)
    if not osp.isfile(path):
        raise SystemExit(f'slurm_seed_tables: {path} is missing; --results '
                         f'reads the work dir that a submission wrote')
    with open(path, encoding='utf-8') as file:
        manifest = json.load(file)
    return ([Row(**row) for row in manifest['rows']],
            [Job(**job) for job in manifest['jobs']])


def reported_metrics(config: str) -> Dict[str, float]:
    """The numbers the seed reported for a shipped config (its
    ``metafile.yml``); empty for other configs."""
    import yaml
    metafile = osp.join(osp.dirname(config), 'metafile.yml')
    if not osp.isfile(metafile):
        return {}
    with open(metafile, encoding='utf-8') as file:
        models = yaml.safe_load(file).get('Models', [])
    for model in models:
        if model.get('Name') == config_name(config):
            return {
                name: value
                for result in model.get('Results', [])
                for name, value in result.get('Metrics', {}).items()
            }
    return {}


def measured(comparisons, row: Row, yolor: bool, metric: str) -> str:
    """A row's measured metric as ``mean ± std`` AP points, ``-`` if it
    has none."""
    from mmdet_yolor.analysis.compare import ap_points
    for comparison in comparisons:
        if comparison.experiment != row.name:
            continue
        side = comparison.yolor if yolor else comparison.baseline
        summary = side.metrics.get(metric) if side else None
        if summary is None:
            return '-'
        text = f'{ap_points(summary.mean):.1f}'
        if summary.std is not None:
            text += f' ± {ap_points(summary.std):.1f}'
        return text
    return '-'


def seed_beside_table(rows: Sequence[Row], comparisons) -> str:
    """Each row's measured box and mask AP beside the seed's."""
    header = ['Model', 'YOLOR']
    for name in REPORTED_METRICS:
        header += [f'{name} measured', f'{name} seed']
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '| :-- | :-: |' + ' :-: |' * (len(header) - 2)
    ]
    for row in rows:
        for config, yolor in ((row.baseline, False), (row.yolor, True)):
            reported = reported_metrics(config)
            cells = [row.name, '✓' if yolor else '']
            for name, metric in REPORTED_METRICS.items():
                cells += [
                    measured(comparisons, row, yolor, metric),
                    f'{reported[name]:.1f}' if name in reported else '-'
                ]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def more_seeds_hint(seeds: int) -> str:
    """What a single-seed verdict of the table suggests."""
    return (f'submit the rows with --seeds 3 (this submission trained '
            f'{seeds}) for the interval over seeds')


def write_results(work_dir: str) -> str:
    """Write ``WORK_DIR/results.md`` from the runs that finished; return
    its path."""
    from mmdet_yolor.analysis.compare import compare, format_report
    from mmdet_yolor.analysis.work_dirs import WorkDirError, find_runs
    from mmdet_yolor.errors import InputError
    rows, jobs = read_manifest(work_dir)
    finished, missing = [], []
    for job in jobs:
        if find_runs(job.work_dir):
            finished.append(job)
        else:
            missing.append(job)
    sections = ['# Seed tables\n']
    seeds = len({job.seed for job in jobs})
    try:
        comparisons = compare([job.work_dir for job in finished],
                              more_seeds_hint=more_seeds_hint(seeds))
        table = format_report(comparisons)
    except (WorkDirError, InputError) as error:
        comparisons, table = [], f'No table: {error}'
    sections += [
        f'Measured: {len(finished)} of {len(jobs)} runs '
        f'(mean ± std over seeds; AP in points).\n', table, '',
        '## Beside the seed\'s numbers (COCO val2017, AP in points)\n',
        seed_beside_table(rows, comparisons)
    ]
    if missing:
        sections += [
            '', '## Runs without results\n',
            *(f'- {job.name}: {job.work_dir} (see its slurm-*.out)'
              for job in missing)
        ]
    path = osp.join(work_dir, RESULTS)
    with open(path, 'w', encoding='utf-8') as file:
        file.write('\n'.join(sections) + '\n')
    return path


def parse_args(argv: Optional[Sequence[str]] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    train_options: List[str] = []
    if '--' in argv:
        split = argv.index('--')
        argv, train_options = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('partition', nargs='?', help='Slurm partition')
    parser.add_argument(
        'work_dir', nargs='?', help='where the runs and results.md go')
    parser.add_argument(
        '--rows',
        nargs='+',
        help='seed rows (a unique prefix of the baseline config name) or '
        'BASELINE.py:YOLOR.py pairs (default: all six seed rows)')
    parser.add_argument(
        '--seeds', type=int, default=1, help='seeds 0..N-1 (default 1)')
    parser.add_argument('--gpus', type=int, default=8, help='tasks a run')
    parser.add_argument('--gpus-per-node', type=int, default=8)
    parser.add_argument('--cpus-per-task', type=int, default=5)
    parser.add_argument(
        '--gres',
        help='GRES a node of a run (default gpu:GPUS_PER_NODE; none: no '
        'GRES request)')
    parser.add_argument(
        '--sbatch-args', default='', help='more sbatch options, quoted')
    parser.add_argument(
        '--python',
        default=sys.executable,
        help='interpreter of the jobs (default: this one)')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the sbatch commands, submit nothing')
    parser.add_argument(
        '--results',
        metavar='WORK_DIR',
        help='only write WORK_DIR/results.md from the runs that finished')
    args = parser.parse_args(argv)
    args.train_options = train_options
    if args.results is None and (args.partition is None
                                 or args.work_dir is None):
        parser.error('PARTITION and WORK_DIR are required (or --results '
                     'WORK_DIR)')
    if args.seeds < 1:
        parser.error(f'--seeds must be at least 1, got {args.seeds}')
    if args.work_dir:
        args.work_dir = osp.abspath(args.work_dir)
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    if args.results:
        print(f'slurm_seed_tables: wrote {write_results(args.results)}')
        return
    rows = resolve_rows(args.rows)
    jobs = plan_jobs(rows, args.seeds, args.work_dir)
    env = job_environment(args)
    if args.dry_run:
        prefix = ' '.join(f'{key}={shlex.quote(value)}'
                          for key, value in env.items())
        for job in jobs:
            print(prefix, shlex.join(train_command(job, args)))
        print(shlex.join(results_command([f'<{len(jobs)} jobs>'], args)))
        return
    os.makedirs(args.work_dir, exist_ok=True)
    write_manifest(args.work_dir, rows, jobs)
    job_ids = []
    for job in jobs:
        os.makedirs(job.work_dir, exist_ok=True)
        job_ids.append(submit(train_command(job, args), env))
        print(f'slurm_seed_tables: {job.name}: job {job_ids[-1]}')
    final = submit(results_command(job_ids, args), env)
    print(f'slurm_seed_tables: {len(jobs)} runs submitted; job {final} '
          f'writes {osp.join(args.work_dir, RESULTS)} after them')


if __name__ == '__main__':
    main()

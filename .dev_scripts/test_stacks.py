# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Run the test suite on each stack of the supported-stack matrix and print
a table (``make test-stacks``; README, "Supported stacks").

For each stack, ``tools/misc/install_env.sh`` makes its venv beside
``.venv`` (``.venv-torch2.1.2``; the default torch uses ``.venv`` itself),
choosing numpy and opencv for that torch; then, as a user installing the
plugin into an environment of their own would, ``pip install -e .`` and
``pip install .`` run in it and must change no installed package (``pip
freeze`` before and after); then the whole suite runs there as ``make
test`` runs it. Logs go
to ``work_dirs/test_stacks/<venv>.log``, the table to
``work_dirs/test_stacks/results.md``.

A stack is a torch version, optionally with other mmengine/mmdet versions
(pure Python, installed over the pinned ones)::

    python3 .dev_scripts/test_stacks.py                       # the matrix
    python3 .dev_scripts/test_stacks.py 2.1.2:mmengine=0.10.4,mmdet=3.2.0
    python3 .dev_scripts/test_stacks.py 2.4.1 -- -k compile   # pytest options

Only the standard library is used: it runs with any python3.
"""
import argparse
import os
import os.path as osp
import re
import subprocess
import sys
import time
from typing import Dict, List, NamedTuple, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_TORCH = '2.13.0'
# torch 2.1 with numpy 1 (the prebuilt-mmcv users), 2.4 (the first with
# torch.onnx.export(dynamo=)), today's
MATRIX = ('2.1.2', '2.4.1', DEFAULT_TORCH)
PACKAGES = ('mmengine', 'mmdet')
OUT_DIR = osp.join(REPO, 'work_dirs', 'test_stacks')


class Stack(NamedTuple):
    torch: str
    packages: Dict[str, str]  # mmengine/mmdet versions other than pinned

    @classmethod
    def parse(cls, spec: str) -> 'Stack':
        """``TORCH[:PACKAGE=VERSION,...]``."""
        torch, _, rest = spec.partition(':')
        packages = dict(item.split('=', 1) for item in rest.split(',') if item)
        unknown = set(packages) - set(PACKAGES)
        if not re.fullmatch(r'\d+\.\d+\.\d+', torch) or unknown:
            raise argparse.ArgumentTypeError(
                f'{spec!r} is not TORCH[:PACKAGE=VERSION,...] with PACKAGE '
                f'one of {", ".join(PACKAGES)}, e.g. '
                f'2.1.2:mmengine=0.10.4,mmdet=3.2.0')
        return cls(torch, packages)

    @property
    def venv(self) -> str:
        if self.torch == DEFAULT_TORCH and not self.packages:
            return '.venv'
        return '.venv-torch' + self.torch + ''.join(
            f'-{name}{version}' for name, version in self.packages.items())

    def environment(self) -> Dict[str, str]:
        env = dict(os.environ, TORCH_VERSION=self.torch, VENV=self.venv)
        for name, version in self.packages.items():
            env[f'{name.upper()}_VERSION'] = version
        return env


class Row(NamedTuple):
    stack: Stack
    versions: Dict[str, str]
    summary: Dict[str, int]
    own_env_changes: List[str]
    seconds: float


def say(message: str) -> None:
    print(message, flush=True)


def run_logged(command: List[str], env: Dict[str, str], log) -> int:
    """Run ``command`` in the repository, its output appended to ``log``."""
    log.write(f'$ {" ".join(command)}\n')
    log.flush()
    return subprocess.run(
        command, cwd=REPO, env=env, stdout=log,
        stderr=subprocess.STDOUT).returncode


def python_of(stack: Stack) -> str:
    return osp.join(REPO, stack.venv, 'bin', 'python')


def installed_versions(stack: Stack) -> Dict[str, str]:
    """Python, torch, numpy and the OpenMMLab versions of a stack's venv."""
    code = ('import sys, importlib.metadata as m\n'
            'print("python", sys.version.split()[0])\n'
            'for name in ("torch", "numpy", "mmcv", "mmengine", "mmdet"):\n'
            '    print(name, m.version(name))')
    output = subprocess.run([python_of(stack), '-c', code],
                            capture_output=True,
                            text=True,
                            check=True).stdout
    return dict(line.split() for line in output.splitlines())


def freeze(stack: Stack) -> List[str]:
    """``pip freeze`` of the stack's venv, without this package."""
    output = subprocess.run(
        [python_of(stack), '-m', 'pip', 'freeze', '--exclude-editable'],
        capture_output=True,
        text=True,
        check=True).stdout
    return [
        line for line in output.splitlines()
        if 'mmdet_yolor' not in line.lower().replace('-', '_')
    ]


def own_env_install(stack: Stack, log) -> List[str]:
    """``pip install -e .``, then ``pip install .``, into the stack's
    environment as a user would; return the lines of ``pip freeze`` they
    changed (or what failed). Then the editable install of ``make
    install`` (a ``setup.py develop`` one) is put back."""
    before = freeze(stack)
    pip = [python_of(stack), '-m', 'pip', '--disable-pip-version-check']
    problems = []
    for install in (['install', '-e', '.'], ['install', '.']):
        if run_logged(pip + install, stack.environment(), log):
            problems.append(f'`pip {" ".join(install)}` failed (see the log)')
    after = freeze(stack)
    restore = [
        'install', '--no-build-isolation', '--no-deps', '--no-use-pep517',
        '-e', '.'
    ]
    if run_logged(pip + restore, stack.environment(), log):
        problems.append("restoring make install's install failed")
    return sorted(set(before) ^ set(after)) + problems


def pytest_summary(output: str) -> Dict[str, int]:
    """The counts of pytest's closing line (passed, failed, skipped,
    errors...)."""
    lines = [
        line for line in output.splitlines()
        if re.search(r' in [\d.]+s', line)
    ]
    if not lines:
        return {}
    return {
        word.rstrip('s') if word != 'passed' else word: int(count)
        for count, word in re.findall(r'(\d+) (\w+)', lines[-1])
    }


def test_stack(stack: Stack, pytest_args: List[str]) -> Row:
    os.makedirs(OUT_DIR, exist_ok=True)
    log_path = osp.join(OUT_DIR, stack.venv.lstrip('.') + '.log')
    start = time.time()
    with open(log_path, 'w') as log:
        say(f'== {stack.venv}: installing (log: {log_path})')
        if run_logged(['bash', 'tools/misc/install_env.sh'],
                      stack.environment(), log):
            say(f'   install failed: see {log_path}')
            return Row(stack, {}, {'install failed': 1}, [],
                       time.time() - start)
        versions = installed_versions(stack)
        say('   ' + ', '.join(f'{k} {v}' for k, v in versions.items()))
        changes = own_env_install(stack, log)
        say(f'   pip install -e . changed: {", ".join(changes) or "nothing"}')
        say('   running the suite')
        suite_start = time.time()
        env = dict(stack.environment(), OMP_NUM_THREADS='1')
        command = [
            python_of(stack), '-m', 'pytest', '-n', '2', '--dist', 'loadfile',
            '-rs', 'tests', *pytest_args
        ]
        result = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True)
        log.write(result.stdout + result.stderr)
    summary = pytest_summary(result.stdout)
    say(f'   {summary} in {time.time() - suite_start:.0f} s')
    return Row(stack, versions, summary, changes, time.time() - suite_start)


def table(rows: List[Row]) -> str:
    lines = [
        '| stack (venv) | python | torch | numpy | mmcv | mmengine | mmdet '
        '| passed | skipped | failed | suite time | `pip install -e .` '
        'changed |', '|' + ' :-- |' * 6 + ' --: |' * 5 + ' :-- |'
    ]
    for row in rows:
        v = row.versions
        failed = sum(n for k, n in row.summary.items()
                     if k not in ('passed', 'skipped', 'deselected',
                                  'warning'))
        lines.append(
            f'| `{row.stack.venv}` | {v.get("python", "?")} | '
            f'{v.get("torch", "?")} | {v.get("numpy", "?")} | '
            f'{v.get("mmcv", "?")} | {v.get("mmengine", "?")} | '
            f'{v.get("mmdet", "?")} | {row.summary.get("passed", 0)} | '
            f'{row.summary.get("skipped", 0)} | {failed} | '
            f'{row.seconds / 60:.1f} min | '
            f'{", ".join(row.own_env_changes) or "nothing"} |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        epilog='Options after -- go to pytest.')
    parser.add_argument(
        'stacks',
        nargs='*',
        type=Stack.parse,
        default=[Stack(torch, {}) for torch in MATRIX],
        help=f'TORCH[:mmengine=X,mmdet=Y] (default: {" ".join(MATRIX)})')
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index('--') if '--' in argv else len(argv)
    args = parser.parse_args(argv[:split])
    pytest_args = argv[split + 1:]
    rows = [test_stack(stack, pytest_args) for stack in args.stacks]
    text = table(rows)
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(osp.join(OUT_DIR, 'results.md'), 'w') as f:
        f.write(text + '\n')
    say('\n' + text)
    ok = all(
        row.summary.get('passed')
        and set(row.summary) <= {'passed', 'skipped', 'deselected', 'warning'}
        and not row.own_env_changes for row in rows)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())

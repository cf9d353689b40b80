# Copyright (c) mmdet_yolor contributors. All rights reserved.
"""Every relative link and every file path that README.md and docs/*.md
name exists: markdown links (and their ``#anchor`` among the target's
headings) and repository paths in inline code."""
import glob
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# what a path in inline code starts with to be checked
PATH_PREFIXES = ('mmdet_yolor/', 'configs/', 'tools/', 'tests/', 'docs/',
                 '.dev_scripts/', 'requirements/', '.ci/', 'Makefile',
                 'setup.py', 'setup.cfg')
PLACEHOLDERS = ('<', '>', '{', '}', '*', '...', '$', ' ')
FENCE = re.compile(r'^\s*(```|~~~)')
LINK = re.compile(r'\[[^\]]*\]\(([^()\s]+)(?:\s+"[^"]*")?\)')
INLINE_CODE = re.compile(r'(`+)(.+?)\1')
HEADING = re.compile(r'^#{1,6}\s+(.*?)\s*#*\s*$')
LINE_SUFFIX = re.compile(r':\d+(-\d+)?$')


def markdown_files():
    return [osp.join(ROOT, 'README.md')] + sorted(
        glob.glob(osp.join(ROOT, 'docs', '*.md')))


def prose_lines(path):
    """``(line number, line)`` of a markdown file outside fenced code
    blocks."""
    in_fence = False
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence:
                yield number, line


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links: text
    text = re.sub(r'[^\w\- ]', '', text.lower())
    return text.replace(' ', '-')


def anchors(path):
    """The anchors of a markdown file's headings (GitHub numbers repeated
    ones ``-1``, ``-2``...)."""
    found, seen = set(), {}
    for _, line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f'{base}-{count}')
    return found


def broken_links(path):
    """``(line, target, why)`` of each link of ``path`` that does not
    resolve."""
    broken = []
    for number, line in prose_lines(path):
        line = INLINE_CODE.sub('', line)
        for target in LINK.findall(line):
            if re.match(r'(https?:|mailto:)', target):
                continue
            file_part, _, anchor = target.partition('#')
            resolved = osp.normpath(osp.join(osp.dirname(path),
                                             file_part)) if file_part else path
            if not osp.exists(resolved):
                broken.append((number, target, 'no such file'))
            elif anchor and resolved.endswith('.md') and \
                    anchor not in anchors(resolved):
                broken.append((number, target, 'no such heading'))
    return broken


def missing_code_paths(path):
    """``(line, path)`` of each repository path in inline code of ``path``
    that does not exist."""
    missing = []
    for number, line in prose_lines(path):
        for _, code in INLINE_CODE.findall(line):
            token = code.strip()
            if not token.startswith(PATH_PREFIXES) or any(
                    mark in token for mark in PLACEHOLDERS):
                continue
            token = LINE_SUFFIX.sub('', token)
            if not osp.exists(osp.join(ROOT, token)):
                missing.append((number, token))
    return missing


def test_slug_is_githubs():
    assert slug('As a package: the `mmdet_yolor::` config scope') == \
        'as-a-package-the-mmdet_yolor-config-scope'
    assert slug('Compiled: `torch.compile` and `compile=True`') == \
        'compiled-torchcompile-and-compiletrue'


def test_every_link_resolves():
    problems = [
        f'{osp.relpath(path, ROOT)}:{number} -> {target} ({why})'
        for path in markdown_files()
        for number, target, why in broken_links(path)
    ]
    assert not problems, 'broken links:\n' + '\n'.join(problems)


def test_every_named_path_exists():
    problems = [
        f'{osp.relpath(path, ROOT)}:{number} -> {token}'
        for path in markdown_files()
        for number, token in missing_code_paths(path)
    ]
    assert not problems, 'missing paths:\n' + '\n'.join(problems)

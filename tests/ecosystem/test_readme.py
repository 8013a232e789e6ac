"""The README and the guides against the code: every command, make target, file, variable, module,
role, playbook, filter and metric they name exists. A rename that leaves the docs behind fails here."""
import glob
import os
import re

import pytest
import yaml

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import status as status_module
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes
from conftest import ROOT, filters, modules, roles

DOCS = ['README.md'] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', 'guides', '*.md')))
PATH_PREFIXES = ('docs/', 'deploy/', 'playbooks/', 'tests/', 'benchmarks/', 'scripts/', 'roles/', 'plugins/', 'meta/',
                 'changelogs/')
# what the docs may name that is not a file of the repository (made by a run, or on a host)
MADE = ('build/', 'tests/output')


def text_of(name):
    with open(os.path.join(ROOT, name), encoding='utf-8') as handle:
        return handle.read()


def code_spans(text):
    """The text inside `backticks` and fenced code blocks, and the link targets."""
    spans = re.findall(r'```[a-z]*\n(.*?)```', text, re.S)
    rest = re.sub(r'```.*?```', '', text, flags=re.S)
    spans += re.findall(r'`([^`\n]+)`', rest)
    spans += re.findall(r'\]\(([^)\s]+)\)', rest)
    return spans


def role_variables():
    names = set()
    for path in glob.glob(os.path.join(ROOT, 'roles', '*', 'defaults', 'main.yml')):
        with open(path) as handle:
            names |= set((yaml.safe_load(handle) or {}).keys())
    for path in glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml')):
        with open(path) as handle:
            for spec in yaml.safe_load(handle)['argument_specs'].values():
                names |= set((spec.get('options') or {}).keys())
    for path in glob.glob(os.path.join(ROOT, 'playbooks', '*.yml')):
        names |= set(re.findall(r'^\s+(wglan_\w+):', text_of(path), re.M))
    return names


def known_names():
    metrics = set(re.findall(r'^# TYPE (\w+)', status_module.format_metrics({}), re.M))
    # (the names a mesh's paths give: the examples' mesh is mgmt)
    facts = set(meshes.paths(mesh)[what] for mesh in ('', 'mgmt') for what in ('fact_name', 'table'))
    groups = set(['wglan', 'wglan_discovery'])
    return role_variables() | set(modules()) | metrics | facts | groups


@pytest.mark.parametrize('doc', DOCS)
def test_every_variable_module_and_metric_named_exists(doc):
    known = known_names()
    named = set()
    for span in code_spans(text_of(doc)):
        named |= set(re.findall(r'\b(wglan_[a-z0-9_]*[a-z0-9])\b', span))
    unknown = sorted(n for n in named if n not in known and not n.startswith('wglan_graph_'))
    assert unknown == [], '%s names what does not exist: %s' % (doc, unknown)


@pytest.mark.parametrize('doc', DOCS)
def test_every_fully_qualified_name_exists(doc):
    playbooks = set(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(ROOT, 'playbooks', '*.yml')))
    known = set(modules()) | set(roles()) | set(filters()) | playbooks
    named = set(re.findall(r'\bwglan\.mesh\.([a-z0-9_]+)', text_of(doc)))
    assert named or doc != 'README.md'
    assert sorted(named - known) == [], '%s names %s' % (doc, sorted(named - known))


@pytest.mark.parametrize('doc', DOCS)
def test_every_make_target_and_wglan_command_exists(doc):
    with open(os.path.join(ROOT, 'Makefile')) as handle:
        targets = set(re.findall(r'^([a-z][a-z0-9-]*):', handle.read(), re.M))
    cli = text_of('plugins/module_utils/daemon/cli.py')
    commands = set(re.findall(r"'([a-z-]+)'", re.search(r"choices=\[([^\]]*)\]", cli).group(1)))
    options = set(re.findall(r"'(--?[a-z-]+)'", cli))
    for span in code_spans(text_of(doc)):
        for target in re.findall(r'(?:^|[;&|]\s*|\s)make ((?:[a-z][a-z0-9-]*\s*)+)', span):
            for name in target.split():
                assert name in targets, '%s: make %s is not a target' % (doc, name)
        # (a command at the start of a line or after ; && |, not the inventory group in `ansible wglan -m ...`)
        for command, args in re.findall(r'(?:^|[;&|]\s*)wglan ([a-z-]+)([^\n;|&]*)', span, re.M):
            assert command in commands, '%s: wglan %s is not a command' % (doc, command)
            for option in re.findall(r'(?:^|\s)(--?[a-z][a-z-]*)', args):
                assert option in options, '%s: wglan %s %s is not an option' % (doc, command, option)


@pytest.mark.parametrize('doc', DOCS)
def test_every_file_named_exists(doc):
    missing = []
    for span in code_spans(text_of(doc)):
        for word in re.split(r'[\s,;()"\'=]+', span):
            word = word.rstrip('.:').split('#')[0]
            if word.startswith('../') or word.startswith('./'):
                word = os.path.normpath(os.path.join(os.path.dirname(doc), word))
            if not word.startswith(PATH_PREFIXES) and word not in ('galaxy.yml', 'requirements.txt', 'bindep.txt',
                                                                   'requirements-dev.txt', 'requirements-host.txt',
                                                                   'Makefile'):
                continue
            if word.startswith(MADE) or '<' in word or '*' in word or '{' in word or word.endswith('/...'):
                continue
            path, _sep, test = word.partition('::')  # (a pytest node id: the file, and the test in it)
            if not os.path.exists(os.path.join(ROOT, path)):
                missing.append(word)
            elif test and not re.search(r'^def %s\(' % re.escape(test.split('[')[0]), text_of(path), re.M):
                missing.append(word)
    assert missing == [], '%s names files (or tests) that do not exist: %s' % (doc, sorted(set(missing)))


def test_the_readme_starts_with_the_two_commands():
    lines = text_of('README.md').split('\n')
    block = '\n'.join(lines[:12])
    assert 'make demo' in block and 'make test' in block


def test_the_walk_of_a_record_names_functions_that_exist():
    """docs/guides/how-it-works.md walks a record from a source to the device, naming each step's file
    and function(s) (`model/plan.py` `plan`, or `file` (`a`, `b`)): each file is under
    plugins/module_utils and defines each name (a function, a class, a method as Class.method, a constant)."""
    text = text_of('docs/guides/how-it-works.md')
    walk = text[text.index('## One record, from a source to the device'):]
    pairs = re.findall(r'`([a-z_]+/[a-z_]+\.py)`\s*\(?((?:`[A-Za-z_.]+`(?:,\s*|\s+and\s+)?)+)', walk)
    assert len(pairs) >= 20, pairs
    wrong = []
    for path, names in pairs:
        source = text_of(os.path.join('plugins', 'module_utils', path))
        for name in re.findall(r'`([A-Za-z_.]+)`', names):
            last = name.split('.')[-1]
            if not re.search(r'^\s*(def|class) %s\b|^%s\s*=' % (re.escape(last), re.escape(last)), source, re.M):
                wrong.append('%s %s' % (path, name))
    assert wrong == [], wrong

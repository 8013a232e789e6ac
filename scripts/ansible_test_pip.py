"""Puts pip's bootstrap script where ansible-test looks for it, before its first run.

ansible-test (`units --venv`, `sanity --venv`) bootstraps pip in each virtual environment it
makes with a get-pip.py that it downloads once from a host of its own and keeps in
~/.ansible/test/cache. That host is not a package registry, and a fresh machine has no such
cache. The file written here takes its place: it bootstraps pip from `ensurepip` (the wheels of
Debian's python3-venv / python3-pip-whl, which scripts/setup.sh installs) and then installs the
pip version ansible-test asks for from PyPI, as get-pip.py would.

Called by scripts/ansible-test.sh before every ansible-test command (prepare()); idempotent.
"""
import os
import re
import sys

import ansible_test

REQUIREMENTS = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
STAND_IN = '''# wglan.mesh: stand-in for ansible-test's get-pip.py (written by scripts/ansible_test_pip.py)
import subprocess
import sys
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
if args:
    subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
'''


def pip_version():
    with open(REQUIREMENTS) as handle:
        found = re.search(r"pip='([0-9.]+)'", handle.read())
    if not found:
        sys.exit('ansible-test pip bootstrap: no pip version found in %s (ansible-core changed how it '
                 'names it; update scripts/ansible_test_pip.py)' % REQUIREMENTS)
    return found.group(1)


def main():
    version = pip_version()
    path = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    current = None
    if os.path.exists(path):
        with open(path) as handle:
            current = handle.read()
    if current != STAND_IN:
        with open(path + '.tmp', 'w') as handle:
            handle.write(STAND_IN)
        os.replace(path + '.tmp', path)
    print('ansible-test pip %s bootstrap: %s (from ensurepip)' % (version, path))


if __name__ == '__main__':
    main()

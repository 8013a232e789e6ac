"""ansible-test bootstraps pip in its venvs with a get-pip.py it downloads from a
host this machine cannot reach. Put a stand-in in its cache that bootstraps pip
from ensurepip and installs the asked version from PyPI instead."""
import os
import re

import ansible_test

SOURCE = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')
STAND_IN = '''# wglan.mesh: offline stand-in for get-pip.py (see tests/sanity/offline_pip.py)
import subprocess
import sys
args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'])
if args:
    subprocess.check_call([sys.executable, '-m', 'pip', 'install'] + args)
'''

with open(SOURCE) as handle:
    version = re.search(r"pip='([0-9.]+)'", handle.read()).group(1)
path = os.path.expanduser('~/.ansible/test/cache/get_pip_%s.py' % version.replace('.', '_'))
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, 'w') as handle:
    handle.write(STAND_IN)
print('ansible-test pip %s bootstrap: %s' % (version, path))

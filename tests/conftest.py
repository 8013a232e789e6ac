"""Make the repo importable as ansible_collections.wglan.mesh for the tests.

The collection root is this repository; Ansible and Python both need it under
<dir>/ansible_collections/wglan/mesh, so a symlink tree is made in build/.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, 'build', 'collections')
LINK = os.path.join(COLLECTIONS, 'ansible_collections', 'wglan', 'mesh')

if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(ROOT, LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

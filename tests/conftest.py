"""Shared setup for every test suite: see collection.py."""
import os
import sys

# (ansible-test units runs pytest from elsewhere: this folder is not on its path)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# makes ansible_collections.wglan.mesh importable
import collection  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position

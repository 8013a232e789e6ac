"""Shared setup for every test suite: see collection.py."""
# makes ansible_collections.wglan.mesh importable
import collection  # noqa: E402,F401  pylint: disable=unused-import

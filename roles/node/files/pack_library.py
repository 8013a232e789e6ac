# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack the collection's module_utils (with its subpackages) into one zip Python can import from (for the watcher).

    pack_library.py SOURCE_DIR OUTPUT.zip

Deterministic (sorted names, fixed timestamps), so the same library gives the
same file and the role's copy is idempotent; written to a temporary name and
renamed, so a reader never sees half a file.
"""
import os
import sys
import zipfile

PACKAGE = 'ansible_collections/wglan/mesh/plugins/module_utils'


def entry(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def main(source, output):
    parts = PACKAGE.split('/')
    temporary = output + '.tmp'
    with zipfile.ZipFile(temporary, 'w') as archive:
        for depth in range(1, len(parts) + 1):
            archive.writestr(entry('/'.join(parts[:depth]) + '/__init__.py'), '')
        for folder, subfolders, names in os.walk(source):
            subfolders[:] = sorted(d for d in subfolders if d != '__pycache__')
            relative = os.path.relpath(folder, source).replace(os.sep, '/')
            prefix = PACKAGE if relative == '.' else PACKAGE + '/' + relative
            if relative != '.':
                archive.writestr(entry(prefix + '/__init__.py'), '')
            for name in sorted(names):
                if name.endswith('.py') and name != '__init__.py':
                    with open(os.path.join(folder, name), 'rb') as handle:
                        archive.writestr(entry(prefix + '/' + name), handle.read())
    os.rename(temporary, output)
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1], sys.argv[2]))

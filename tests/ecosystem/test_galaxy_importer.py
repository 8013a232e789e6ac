"""The built artifact through Galaxy's own importer (galaxy-importer, what galaxy.ansible.com and
Automation Hub run on an upload): it loads every plugin's documentation, the roles and their
READMEs, and lints the content with ansible-lint. Its ansible-test step needs a container engine
and is off here (`make sanity` runs ansible-test sanity on the same content)."""
import json
import os
import subprocess

from conftest import ROOT, TOOLS, filters, modules, roles


def test_galaxy_importer_imports_the_artifact_with_every_plugin_and_role_documented(artifact, tmp_path):
    config = tmp_path / 'galaxy-importer.cfg'
    config.write_text('[galaxy-importer]\nRUN_ANSIBLE_TEST = False\nRUN_ANSIBLE_LINT = True\n')
    env = dict(os.environ, GALAXY_IMPORTER_CONFIG=str(config), PATH=TOOLS + os.pathsep + os.environ['PATH'],
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, 'build', 'ecosystem'))
    done = subprocess.run([os.path.join(TOOLS, 'python'), '-m', 'galaxy_importer.main', artifact],
                          cwd=str(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=600, check=False)
    assert done.returncode == 0 and 'Importer processing completed successfully' in done.stdout, done.stdout[-3000:]
    assert 'WARNING' not in done.stdout and 'ERROR' not in done.stdout, done.stdout[-3000:]
    with open(str(tmp_path / 'importer_result.json')) as handle:
        result = json.load(handle)
    contents = set((c['content_type'], c['name']) for c in result['contents'])
    wanted = set([('module', m) for m in modules()] + [('role', r) for r in roles()] + [('filter', f) for f in filters()])
    assert wanted <= contents, wanted - contents
    docs = dict((c['content_name'], c) for c in result['docs_blob']['contents'])
    for name in modules():
        assert docs[name]['doc_strings']['doc']['short_description'], name
        assert docs[name]['doc_strings']['examples'], name
    for name in roles():
        assert docs[name]['readme_html'], name
    assert result['docs_blob']['collection_readme']['name'] == 'README.md'

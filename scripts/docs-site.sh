#!/usr/bin/env bash
# The documentation site, built with the Ansible ecosystem's own tools from the collection as users
# get it (the artifact of `make build-check`, installed): antsibull-docs writes the pages of every
# module and role, Sphinx renders them with the guides (docs/guides, Markdown through MyST) (warnings are
# errors: a broken reference fails the build). Output: build/docs-site/html/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$PWD/.venv-tools/bin
export PATH=$TOOLS:$PATH
INSTALLED=$PWD/build/galaxy/installed
OUT=build/docs-site
[ -d "$INSTALLED/ansible_collections/wglan/mesh" ] || { echo "docs-site: run make build-check first"; exit 1; }
rm -rf "$OUT"
mkdir -p build && mkdir -m 0755 "$OUT" "$OUT/rst"
# (lint first: it names the file and line of a documentation error; the build would only fail)
# (community.general and ansible.posix, which the collection depends on: from build/ecosystem)
export ANSIBLE_COLLECTIONS_PATH=$INSTALLED:$PWD/build/ecosystem
"$TOOLS/antsibull-docs" lint-collection-docs --plugin-docs "$INSTALLED/ansible_collections/wglan/mesh"
"$TOOLS/antsibull-docs" --config-file docs/site/antsibull-docs.cfg \
  collection --use-current --dest-dir "$OUT/rst" wglan.mesh 2>&1 | tee "$OUT/antsibull-docs.log"
# (antsibull-docs reports a page it could not make as a "nonfatal" error, and goes on)
if grep -q 'ERROR' "$OUT/antsibull-docs.log"; then echo "docs-site: antsibull-docs could not document everything"; exit 1; fi
cp docs/site/index.rst docs/site/ansible-links.rst "$OUT/rst/"
mkdir -m 0755 "$OUT/rst/guides" && cp docs/guides/*.md "$OUT/rst/guides/"
"$TOOLS/sphinx-build" -q -b html "$OUT/rst" "$OUT/html" -c docs/site -W --keep-going
echo "docs-site: $(find "$OUT/html" -name '*.html' | wc -l) pages in $OUT/html"

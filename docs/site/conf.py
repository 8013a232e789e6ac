# Sphinx configuration of the wglan.mesh documentation site (make docs-site), started from what
# `antsibull-docs sphinx-init` writes. The site is built offline: no intersphinx (the few labels
# of Ansible's own documentation the generated pages use are in ansible-links.rst).

project = 'wglan.mesh'
copyright = 'wglan.mesh contributors'

title = 'wglan.mesh documentation'
html_short_title = 'wglan.mesh'

extensions = ['sphinx_antsibull_ext', 'myst_parser']

# The guides are Markdown (docs/guides, readable in the repository too).
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_heading_anchors = 3

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
html_theme_options = {'collapse_navigation': False, 'display_version': False}

html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
nitpicky = True

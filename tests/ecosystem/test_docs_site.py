"""The documentation site (make docs-site: antsibull-docs and Sphinx, from the built collection),
looked at in a real browser: every module, role and filter has its page, each renders with its
options (and a module with its examples), every guide renders, and no link inside the site is broken."""
import glob
import html
import html.parser
import os
import urllib.parse

import pytest

from browser import Browser
from conftest import ROOT, SITE, filters, modules, roles

PAGES = os.path.join(SITE, 'collections', 'wglan', 'mesh')


class Links(html.parser.HTMLParser):
    """The ids of a page and the links it makes (a href, link href, img/script src)."""

    def __init__(self):
        html.parser.HTMLParser.__init__(self)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get('id'):
            self.ids.add(attrs['id'])
        if tag == 'a' and attrs.get('name'):
            self.ids.add(attrs['name'])
        for name in ('href', 'src'):
            if attrs.get(name) and tag in ('a', 'link', 'img', 'script'):
                self.links.append(attrs[name])


def parsed(path):
    links = Links()
    with open(path, encoding='utf-8') as handle:
        links.feed(handle.read())
    return links


@pytest.fixture(scope='module')
def browser():
    assert os.path.exists(os.path.join(SITE, 'index.html')), 'no site: make docs-site'
    with Browser() as instance:
        yield instance


@pytest.mark.parametrize('name', modules())
def test_every_module_page_renders_with_its_options_and_examples(browser, name):
    dom = browser.dom(os.path.join(PAGES, '%s_module.html' % name))
    assert 'wglan.mesh.%s module' % name in dom, name
    assert 'id="parameters"' in dom and 'id="examples"' in dom and 'id="return-values"' in dom, name
    examples = dom.split('id="examples"', 1)[1].split('id="return-values"', 1)[0]
    assert 'wglan.mesh.%s' % name in examples and '<pre' in examples, name
    assert 'Missing documentation' not in dom and 'could not parse' not in dom


@pytest.mark.parametrize('name', roles())
def test_every_role_page_renders_with_its_variables(browser, name):
    dom = browser.dom(os.path.join(PAGES, '%s_role.html' % name))
    assert 'wglan.mesh.%s role' % name in dom, name
    assert 'Entry point <code' in dom or 'entry-point-main' in dom, name
    assert 'wglan_' in dom, name


def test_every_filter_has_a_page():
    for name in filters():
        assert os.path.exists(os.path.join(PAGES, '%s_filter.html' % name)), name


def test_the_index_lists_every_module_and_role(browser):
    dom = browser.dom(os.path.join(PAGES, 'index.html'))
    for name in modules():
        assert '%s_module.html' % name in dom, name
    for name in roles():
        assert '%s_role.html' % name in dom, name


def test_no_link_inside_the_site_is_broken():
    pages = {}
    for folder, _dirs, names in os.walk(SITE):
        for name in names:
            if name.endswith('.html'):
                path = os.path.join(folder, name)
                pages[os.path.normpath(path)] = parsed(path)
    assert len(pages) > 20
    broken, checked = [], 0
    for path, page in sorted(pages.items()):
        for link in page.links:
            url = urllib.parse.urlsplit(link)
            if url.scheme or link.startswith('//'):
                continue  # (outside the site)
            target = os.path.normpath(os.path.join(os.path.dirname(path), urllib.parse.unquote(url.path))) if url.path else path
            checked += 1
            if not os.path.exists(target):
                broken.append((os.path.relpath(path, SITE), link))
            elif url.fragment and target in pages and url.fragment not in pages[target].ids:
                broken.append((os.path.relpath(path, SITE), link))
    assert checked > 200
    assert broken == [], broken[:20]


GUIDES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'docs', 'guides', '*.md')))


@pytest.mark.parametrize('name', GUIDES)
def test_every_guide_renders_with_its_title_and_tables(browser, name):
    with open(os.path.join(ROOT, 'docs', 'guides', name + '.md'), encoding='utf-8') as handle:
        source = handle.read()
    title = source.split('\n', 1)[0].lstrip('# ').strip()
    dom = browser.dom(os.path.join(SITE, 'guides', '%s.html' % name))
    assert '<h1>%s' % html.escape(title, quote=False) in dom, (name, title)
    assert dom.count('<table') >= source.count('\n| --- |'), name
    assert dom.count('<pre') >= source.count('\n```') // 2, name


def test_a_user_lands_on_install_first_and_the_contributors_guides_stand_apart(browser):
    """The site's navigation: "Getting started" (install, a first mesh, the token in a vault, upgrading)
    before the users' guides; testing and development under "Contributors", after them."""
    dom = browser.dom(os.path.join(SITE, 'index.html'))
    order = [dom.find(caption) for caption in ('Getting started', 'Guides', 'Contributors')]
    assert -1 not in order and order == sorted(order), order
    contributors = dom[order[2]:]
    assert 'guides/testing.html' in contributors and 'guides/development.html' in contributors
    assert 'guides/testing.html' not in dom[order[1]:order[2]]
    install = browser.dom(os.path.join(SITE, 'guides', 'install.html'))
    for heading in ('Install', 'A first mesh', 'The cluster token, in a vault', 'Upgrade'):
        assert '>%s<' % heading in install or '>%s<a' % heading in install, heading
    assert 'ansible-galaxy' in install and 'encrypt_string' in install and 'upgrade' in install


SHOTS = (('index', 'index.html'), ('guide', 'guides/install.html'),
         ('module', 'collections/wglan/mesh/wglan_peers_module.html'),
         ('role', 'collections/wglan/mesh/node_role.html'))


def png_size(path):
    with open(path, 'rb') as handle:
        head = handle.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', path
    return int.from_bytes(head[16:20], 'big'), int.from_bytes(head[20:24], 'big')


def test_screenshots_of_the_index_a_guide_a_module_and_a_role_page(browser):
    """Taken in headless Chromium from this build (build/docs-site/screenshots; `make docs-screenshots`
    copies them to docs/screenshots, where the README shows them). A page that did not render (a blank
    or an error page) compresses to a few KB: each must hold more than that."""
    out = os.path.join(os.path.dirname(SITE), 'screenshots')
    os.makedirs(out, exist_ok=True)
    for name, page in SHOTS:
        png = browser.screenshot(os.path.join(SITE, page), os.path.join(out, '%s.png' % name))
        assert png_size(png) == (1400, 1000), name
        assert os.path.getsize(png) > 30000, (name, os.path.getsize(png))


def test_the_screenshots_are_kept_in_docs():
    for name, _page in SHOTS:
        kept = os.path.join(ROOT, 'docs', 'screenshots', '%s.png' % name)
        assert os.path.exists(kept) and png_size(kept) == (1400, 1000), 'make docs-screenshots: %s' % kept
        assert os.path.getsize(kept) > 30000, kept

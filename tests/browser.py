"""A real browser for the tests: Debian's chromium, headless, in a network namespace of its own that
has only a loopback interface (so it can reach nothing: the pages it opens are files, and the
browser's own background calls go nowhere)."""
import os
import shutil
import subprocess
import tempfile
import uuid

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-default-apps', '--mute-audio', '--hide-scrollbars', '--virtual-time-budget=3000']


class Browser:
    """with Browser() as browser: browser.dom('/path/page.html'); browser.screenshot(path, png)."""

    def __init__(self):
        self.ns = 'wglan-browser-%s' % uuid.uuid4().hex[:6]
        self.profile = None

    def __enter__(self):
        if CHROMIUM is None:
            raise AssertionError('chromium is not installed (scripts/setup.sh installs it)')
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True, timeout=30)
        subprocess.run(['ip', 'netns', 'exec', self.ns, 'ip', 'link', 'set', 'lo', 'up'], check=True, timeout=30)
        self.profile = tempfile.mkdtemp(prefix='wglan-browser-')
        return self

    def __exit__(self, *exc):
        for pid in subprocess.run(['ip', 'netns', 'pids', self.ns], stdout=subprocess.PIPE, universal_newlines=True,
                                  check=False, timeout=30).stdout.split():
            try:
                os.kill(int(pid), 9)
            except (OSError, ValueError):
                pass
        subprocess.run(['ip', 'netns', 'del', self.ns], check=False, timeout=30)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _run(self, args, timeout=90):
        done = subprocess.run(['ip', 'netns', 'exec', self.ns, CHROMIUM] + FLAGS
                              + ['--user-data-dir=%s' % self.profile] + args,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError('chromium %s: %s' % (args[-1], done.stderr.decode('utf-8', 'replace')[-2000:]))
        return done.stdout.decode('utf-8', 'replace')

    def dom(self, path):
        """The page's DOM after the browser loaded it and ran its scripts (serialized)."""
        return self._run(['--dump-dom', 'file://' + os.path.abspath(path)])

    def screenshot(self, path, png, size='1400,1000'):
        self._run(['--window-size=%s' % size, '--screenshot=%s' % os.path.abspath(png), 'file://' + os.path.abspath(path)])
        return png

# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes API calls of the Kubernetes source: Nodes only (get, list, watch, patch).

The kubernetes Python client loads the configuration (kubeconfig with its
contexts, client certificates and exec/token plugins, or the in-cluster service
account) and gives the credentials; the few requests themselves go over
http.client. Why not the generated API classes: they differ between the client
Debian 12 ships (22.6) and current releases (the call signatures, how a
response is left unparsed), and 22.6 sends a dict patch with the JSON-patch
content type. Four plain requests behave the same with both.

The RBAC a node needs is exactly VERBS on nodes (deploy/kubernetes/rbac.yaml).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import json
import os
import socket
import ssl
from urllib.parse import quote, urlencode, urlsplit

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.underlay import marked_connection

try:
    # Found, not imported: the client takes about 0.3 s to import, which every module call would pay
    # (module_support names it); only a Kubernetes source imports it (load_configuration).
    from importlib.util import find_spec
    HAS_KUBERNETES = find_spec('kubernetes') is not None
except (ImportError, ValueError):  # pragma: no cover
    HAS_KUBERNETES = False

VERBS = ('get', 'list', 'watch', 'patch')
TIMEOUT = 10
NODES = '/api/v1/nodes'


class Gone(WglanError):
    """A watch from a resourceVersion the server no longer has (410): list again."""


def default_node_name():
    """What the kubelet registers by default: the host name, lower case."""
    return socket.gethostname().lower()


def load_configuration(kubeconfig=None, context=None):
    """A kubernetes.client.Configuration from a kubeconfig file, the in-cluster service account or ~/.kube/config."""
    try:
        from kubernetes import config as kube_config
        from kubernetes.client import Configuration
    except ImportError:
        raise WglanError('the Python library "kubernetes" is required for the Kubernetes source')
    configuration = Configuration()
    if kubeconfig:
        where = 'kubeconfig %s' % kubeconfig
    elif os.environ.get('KUBERNETES_SERVICE_HOST'):
        where = 'the in-cluster service account'
    else:
        where = 'the default kubeconfig (~/.kube/config)'
    try:
        if kubeconfig is None and os.environ.get('KUBERNETES_SERVICE_HOST'):
            kube_config.load_incluster_config(client_configuration=configuration)
        else:
            kube_config.load_kube_config(config_file=kubeconfig, context=context,
                                         client_configuration=configuration, persist_config=False)
    except (kube_config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        # The loader's messages name files and fields, never credentials.
        raise WglanError('kubernetes: cannot load %s: %s' % (where, exc))
    return configuration


class KubeClient:
    def __init__(self, configuration, timeout=TIMEOUT, mark=None):
        parts = urlsplit(configuration.host or '')
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise WglanError('kubernetes: the API server address %r is not an http(s) URL' % configuration.host)
        self.url = configuration.host.rstrip('/')
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == 'https' else 80)
        self.base = parts.path.rstrip('/')
        self.configuration = configuration
        self.timeout = timeout
        self.context = None
        if self.scheme == 'https':
            if configuration.verify_ssl:
                self.context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            else:
                self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE
            if configuration.cert_file:
                self.context.load_cert_chain(configuration.cert_file, configuration.key_file)
        self.server_name = getattr(configuration, 'tls_server_name', None) or self.host
        self.mark = mark  # WireGuard's fwmark: stay on the underlay (underlay.marked_connection)

    def _headers(self, content_type=None):
        headers = {'Accept': 'application/json', 'User-Agent': 'wglan.mesh'}
        auth = self.configuration.auth_settings().get('BearerToken')
        if auth and auth.get('value'):
            headers['Authorization'] = auth['value']
        if content_type:
            headers['Content-Type'] = content_type
        return headers

    def _connect(self, timeout):
        if self.scheme == 'https':
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
            if self.server_name != self.host:  # tls-server-name in the kubeconfig
                connection.host = self.server_name
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if self.mark:
            connection._create_connection = marked_connection(self.mark)
        return connection

    def _open(self, method, path, query=None, body=None, content_type=None, timeout=None):
        """(connection, response); the caller reads and closes."""
        target = self.base + path + ('?' + urlencode(query) if query else '')
        data = json.dumps(body).encode('utf-8') if body is not None else None
        connection = self._connect(timeout or self.timeout)
        try:
            connection.request(method, target, body=data, headers=self._headers(content_type))
            return connection, connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise WglanError('kubernetes API server at %s is unreachable: %s' % (self.url, exc))

    def _call(self, method, path, query=None, body=None, content_type=None):
        connection, response = self._open(method, path, query, body, content_type)
        try:
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise WglanError('kubernetes API server at %s: %s' % (self.url, exc))
        finally:
            connection.close()
        try:
            answer = json.loads(payload.decode('utf-8'))
        except ValueError:
            answer = None
        if response.status >= 300:
            message = answer.get('message') if isinstance(answer, dict) else None
            raise WglanError('kubernetes: %s %s: %d %s' % (method, path, response.status, message or response.reason),
                             status=response.status)
        if not isinstance(answer, dict):
            raise WglanError('kubernetes: %s %s: the answer is not a JSON object' % (method, path))
        return answer

    def get_node(self, name):
        """The Node, or None when there is none of that name."""
        try:
            return self._call('GET', NODES + '/' + quote(name, safe=''))
        except WglanError as exc:
            if getattr(exc, 'status', None) == 404:
                return None
            raise

    def list_nodes(self):
        """(Node objects as dicts, resourceVersion of the list)."""
        answer = self._call('GET', NODES)
        items = answer.get('items')
        if not isinstance(items, list):
            raise WglanError('kubernetes: the node list has no items')
        return items, str((answer.get('metadata') or {}).get('resourceVersion') or '')

    def patch_node(self, name, patch):
        """A JSON merge patch (touches only the keys it names)."""
        return self._call('PATCH', NODES + '/' + quote(name, safe=''), body=patch,
                          content_type='application/merge-patch+json')

    def watch_nodes(self, resource_version, timeout_seconds=300, read_timeout=None):
        """Yields (type, object) from resource_version on, BOOKMARKs included; raises Gone on 410.

        Ends when the server ends the watch (timeout_seconds) or the connection drops.
        """
        query = {'watch': 'true', 'resourceVersion': resource_version, 'allowWatchBookmarks': 'true',
                 'timeoutSeconds': str(int(timeout_seconds))}
        connection, response = self._open('GET', NODES, query=query,
                                          timeout=read_timeout or timeout_seconds + self.timeout)
        try:
            if response.status == 410:
                raise Gone('kubernetes: resourceVersion %s is too old' % resource_version)
            if response.status != 200:
                raise WglanError('kubernetes: watch nodes: %d %s' % (response.status, response.reason),
                                 status=response.status)
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as exc:
                    raise WglanError('kubernetes: the node watch broke: %s' % exc)
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    event = json.loads(line.decode('utf-8'))
                    kind, obj = event['type'], event['object']
                except (ValueError, KeyError, TypeError):
                    raise WglanError('kubernetes: the node watch sent something that is not an event')
                if kind == 'ERROR':
                    code = obj.get('code') if isinstance(obj, dict) else None
                    if code == 410:
                        raise Gone('kubernetes: resourceVersion %s is too old' % resource_version)
                    raise WglanError('kubernetes: watch error: %s' % (obj.get('message') if isinstance(obj, dict)
                                                                      else obj))
                yield kind, obj
        finally:
            connection.close()


def connect(kubeconfig=None, context=None, timeout=TIMEOUT, mark=None):
    return KubeClient(load_configuration(kubeconfig, context), timeout, mark)

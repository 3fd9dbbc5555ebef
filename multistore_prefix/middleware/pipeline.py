#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.

"""Where the filter sits in the paste pipeline glance-api will use.

glance-api loads the application ``glance-api`` (``glance-api-<flavor>``
with ``[paste_deploy]/flavor``) from its paste file; Glance's own file maps
``/`` to ``[composite:api]``, whose ``glance.api:pipeline_factory`` picks the
pipeline named by the flavor (``default`` without one).  This module reads
the file with Paste Deploy's own parser, follows that path, and says where
the filter is.  No factory is imported: it reads, it never builds.
"""

import configparser
import dataclasses
import importlib.metadata
import os

from oslo_config import cfg
from paste.deploy import loadwsgi

from multistore_prefix import exceptions

#: The filter's factory, as a paste file names it.
FILTER_FACTORY = 'multistore_prefix.middleware:filter_factory'
#: The section an operator adds (doc/source/operator/filter.rst).
FILTER_SECTION = ('[filter:multistore_prefix] with use = '
                  'egg:multistore-prefix#multistore_prefix')
_FLAVOR_PIPELINES = 'glance.api:pipeline_factory'
_URLMAPS = frozenset(('glance.api:root_app_factory', 'egg:Paste#urlmap',
                      'paste.urlmap:urlmap_factory'))
# Glance's cache and cache-management filters, and its context filters.
_CACHE = 'glance.api.middleware.cache'
_CONTEXT = 'glance.api.middleware.context:'
_FACTORY_KEYS = ('paste.filter_factory', 'paste.filter_app_factory',
                 'paste.composite_factory', 'paste.app_factory')
OK, WARN, FAIL = 'ok', 'warning', 'FAIL'

# Glance's [paste_deploy] options (same names; only read here).
PASTE_DEPLOY_OPTS = [
    cfg.StrOpt('flavor', help='The paste pipeline glance-api uses.'),
    cfg.StrOpt('config_file', help='The paste file glance-api reads.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register ``[paste_deploy]`` on a configuration Glance has not."""
    conf.register_opts(PASTE_DEPLOY_OPTS, group='paste_deploy')


class PasteError(exceptions.MultistorePrefixError):
    """The paste file at ``path`` cannot give glance-api's pipeline."""

    def __init__(self, path: str, reason: str):
        self.path = path
        super().__init__(f'{path}: {reason}')


@dataclasses.dataclass
class Pipeline:
    """The pipeline glance-api builds from the paste file ``path``.

    ``source`` says where it is written (``[composite:api] keystone``);
    ``names`` are the filters then the application; ``factories`` each
    filter's factory, as written or as its entry point names it
    (``module:attribute``).
    """

    path: str
    app_name: str
    source: str
    names: list[str]
    factories: dict[str, str]

    @property
    def filters(self) -> list[str]:
        return self.names[:-1]

    def where(self, prefix: str) -> list[int]:
        """Positions of the filters whose factory starts with ``prefix``."""
        return [index for index, name in enumerate(self.filters)
                if self.factories.get(name, '').startswith(prefix)]

    def placement(self) -> tuple[str, str]:
        """(``OK``, ``WARN`` or ``FAIL``, a sentence) on the filter's place."""
        text = ' '.join(self.names)
        ours = self.where(FILTER_FACTORY)
        if not ours:
            return FAIL, (f'not in {self.source} ({text}): add '
                          f'multistore_prefix after the context filter and '
                          f'before the cache filters and '
                          f'{self.names[-1]}, and a section '
                          f'{FILTER_SECTION}')
        first = ours[0]
        caches = [i for i in self.where(_CACHE) if i < first]
        if caches:
            return FAIL, (f'after {self.filters[caches[0]]} in {self.source}'
                          f' ({text}): Glance\'s cache middleware loads the '
                          f'image first; move multistore_prefix before it')
        if len(ours) > 1:
            return WARN, (f'{len(ours)} times in {self.source} ({text}): '
                          f'the first does the work; remove the others')
        contexts = [i for i in self.where(_CONTEXT) if i > first]
        if contexts:
            return WARN, (f'before {self.filters[contexts[0]]} in '
                          f'{self.source} ({text}): requests that would be '
                          f'refused reach the database; put it after '
                          f'{self.filters[contexts[0]]}')
        return OK, f'{self.source}: {text}'


def paste_file(conf) -> str:
    """The paste file glance-api reads, found as Glance finds it.

    ``[paste_deploy]/config_file``, else the last configuration file with
    ``.conf`` replaced by ``-paste.ini``, looked up beside the
    configuration files.
    """
    path = conf.paste_deploy.config_file
    if not path:
        if not conf.config_file:
            raise PasteError('(none)', 'no paste file: pass --paste-file or '
                                       'set [paste_deploy]/config_file')
        wanted = os.path.basename(conf.config_file[-1].replace(
            '.conf', '-paste.ini'))
        path = conf.find_file(wanted)
        if path is None:
            raise PasteError(wanted, 'not found beside the configuration '
                                     'files; pass --paste-file or set '
                                     '[paste_deploy]/config_file')
    return os.path.abspath(path)


def read(path: str, flavor: str | None) -> Pipeline:
    """The pipeline glance-api builds from ``path`` with ``flavor``.

    :raises PasteError: the file cannot be read, or does not lead to a
        pipeline; the message says which section and why.
    """
    parser = loadwsgi.NicerConfigParser(
        path, defaults={'here': os.path.dirname(path), '__file__': path})
    try:
        with open(path, encoding='utf-8') as stream:
            parser.read_file(stream)
    except OSError as exc:
        raise PasteError(path, f'cannot read it: {exc.strerror}') from None
    except configparser.Error as exc:
        raise PasteError(path, f'cannot parse it: {exc.message}') from None
    app_name = 'glance-api' + (f'-{flavor}' if flavor else '')
    name = app_name
    for _ in range(10):
        section = f'pipeline:{name}'
        if parser.has_section(section):
            names = parser.get(section, 'pipeline').split()
            return _pipeline(parser, path, app_name, f'[{section}]', names)
        section = f'composite:{name}'
        if not parser.has_section(section):
            raise PasteError(path, f'no [pipeline:{name}] nor [{section}] '
                                   f'for the application {app_name} '
                                   f'(flavor {flavor or "(none)"})')
        factory = _factory(parser, section)
        if factory == _FLAVOR_PIPELINES:
            key = flavor or 'default'
            if not parser.has_option(section, key):
                raise PasteError(path, f'[{section}] has no pipeline '
                                       f'"{key}" for flavor '
                                       f'{flavor or "(none)"}')
            return _pipeline(parser, path, app_name, f'[{section}] {key}',
                             parser.get(section, key).split())
        if factory not in _URLMAPS or not parser.has_option(section, '/'):
            raise PasteError(path, f'cannot follow [{section}] '
                                   f'({factory or "no factory"}) to a '
                                   f'pipeline')
        name = parser.get(section, '/').strip()
    raise PasteError(path, f'{app_name}: composites nest too deep')


def _pipeline(parser, path, app_name, source, names) -> Pipeline:
    if not names:
        raise PasteError(path, f'{source} is empty')
    factories = {}
    for name in names[:-1]:
        section = f'filter:{name}'
        if parser.has_section(section):
            factories[name] = _factory(parser, section)
    return Pipeline(path, app_name, source, names, factories)


def _factory(parser, section) -> str:
    """A section's factory: ``module:attribute`` where it can tell."""
    for key in _FACTORY_KEYS:
        if parser.has_option(section, key):
            return parser.get(section, key).strip()
    use = (parser.get(section, 'use').strip()
           if parser.has_option(section, 'use') else '')
    if use.startswith('call:'):
        return use[len('call:'):]
    if use.startswith('egg:'):
        return _entry_point(use)
    return use


def _entry_point(use: str) -> str:
    """``egg:dist#name`` as the entry point's ``module:attribute``."""
    dist, _, name = use[len('egg:'):].partition('#')
    try:
        found = importlib.metadata.distribution(dist).entry_points
    except importlib.metadata.PackageNotFoundError:
        return use
    for entry_point in found:
        if (entry_point.name == (name or 'main')
                and entry_point.group in _FACTORY_KEYS):
            return entry_point.value
    return use

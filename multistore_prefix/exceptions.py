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

"""Errors of multistore-prefix, and configuration errors said in one line.

Each error is a small class carrying the values that explain it, so callers
can act on them and messages can name the thing and the fix.
"""

import re

from oslo_config import cfg


class MultistorePrefixError(Exception):
    """Base class of every error this package raises on purpose."""


class StoreConfigError(MultistorePrefixError):
    """A store's configuration cannot give its URL prefixes.

    :ivar option: the option at fault (``None`` when it is not one option).
    :ivar fix: what the operator should set or do.
    """

    def __init__(self, store_id: str, option: str | None, reason: str,
                 fix: str | None = None):
        self.store_id = store_id
        self.option = option
        self.reason = reason
        self.fix = fix
        where = (f'[{store_id}]/{option}' if option
                 else f'store {store_id!r}')
        msg = f'{where}: {reason}'
        if fix:
            msg += f'; {fix}'
        super().__init__(msg)


class UnknownStoreType(StoreConfigError):
    """``enabled_backends`` names a store type no driver is installed for."""

    def __init__(self, store_id: str, store_type: str, known: list[str]):
        self.store_type = store_type
        self.known = sorted(known)
        super().__init__(
            store_id, None,
            f'unknown store type {store_type!r} in '
            f'[DEFAULT]/enabled_backends',
            f'use one of: {", ".join(self.known)}, or install the package '
            f'that provides a multistore_prefix.drivers entry point for it')


class NoBackendsConfigured(MultistorePrefixError):
    """``[DEFAULT]/enabled_backends`` is empty or missing."""

    def __init__(self):
        super().__init__(
            '[DEFAULT]/enabled_backends is empty; set it to the stores of '
            'the Glance deployment, e.g. "fast:file, ceph:rbd"')


class OptionError(MultistorePrefixError):
    """An option (``[group]/name``) cannot work: ``reason`` and the fix.

    A secret option's value is never quoted.
    """

    def __init__(self, option: str, reason: str):
        self.option = option
        self.reason = reason
        super().__init__(f'{option} {reason}')


#: Errors that mean "fix the configuration" wherever they surface: the
#: command line turns them into its exit code 2, the glance-api filter into
#: the one log line that says why it is off; :func:`describe` says them in
#: one line, what is wrong, where, and the fix.
CONFIG_ERRORS = (cfg.Error, MultistorePrefixError)

# Options whose value an error message must not quote.  oslo.config marks
# them secret=True; this errs on the side of silence without reaching into
# oslo.config's private option table.
_SECRET_NAMES = re.compile(r'password|secret|key|token|credential|'
                           r'connection', re.IGNORECASE)


_LOCATION_DETAIL = re.compile(r"detail='([^']*)'")


def _invalid_value(conf: cfg.ConfigOpts):
    """(group, option, file, reason) of the first option that won't parse.

    oslo.config checks a value when it is read, and its error names
    neither the group nor the file in a way an operator can act on; reading
    every registered option again finds the culprit.
    """
    def check(group, name, read):
        try:
            read()
        except cfg.ConfigSourceValueError as exc:
            reason = value_reason(exc)
            if _SECRET_NAMES.search(name):
                reason = 'the value does not parse (not shown: secret)'
            where = _LOCATION_DETAIL.search(str(exc))
            return (group or 'DEFAULT', name,
                    where.group(1) if where else None, reason)
        return None

    groups = []
    for key in conf:
        found = check(None, key, lambda: conf[key])
        if found:
            return found
        if isinstance(conf[key], cfg.ConfigOpts.GroupAttr):
            groups.append(key)
    for group in groups:
        attrs = conf[group]
        for name in attrs:
            found = check(group, name, lambda: getattr(attrs, name))
            if found:
                return found
    return None


def value_reason(exc: Exception) -> str:
    """What is wrong with an option's value, as its type says it.

    oslo.config's message around the type's ValueError says where the
    value came from, in words an operator cannot act on.
    """
    cause = exc.__cause__ or exc.__context__
    if (isinstance(cause, ValueError) and str(cause)
            and not isinstance(cause, cfg.ConfigSourceValueError)):
        return str(cause)
    return str(exc).rpartition(' is not valid: ')[2]


def _cause_chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe(exc: BaseException,
             conf: cfg.ConfigOpts | None = None) -> str:
    """One line for the operator: what is wrong, where, and the fix."""
    if conf is not None:
        for link in _cause_chain(exc):
            if isinstance(link, cfg.ConfigSourceValueError):
                try:
                    found = _invalid_value(conf)
                except Exception:  # the scan is a nicety, never a new error
                    found = None
                if found:
                    group, name, where, reason = found
                    place = f' in {where}' if where else ''
                    return (f'[{group}]/{name}: invalid value{place}: '
                            f'{reason}; correct it in the configuration file')
                break
    if isinstance(exc, cfg.ConfigFilesNotFoundError):
        return (f'cannot read configuration file '
                f'{", ".join(exc.config_files)}: not found or not '
                f'readable; check the --config-file path')
    if isinstance(exc, cfg.ConfigFilesPermissionDeniedError):
        return (f'cannot open configuration file '
                f'{", ".join(exc.config_files)}: permission denied; run '
                f'as a user that can read it (glance or root)')
    if isinstance(exc, cfg.ConfigDirNotFoundError):
        return (f'cannot read configuration directory {exc.config_dir}; '
                f'check the --config-dir path')
    if isinstance(exc, cfg.ConfigFileParseError):
        return (f'cannot parse configuration file {exc.config_file}: '
                f'{exc.msg}; fix its syntax')
    if isinstance(exc, cfg.RequiredOptError):
        return f'{exc}; set it in the configuration file'
    if isinstance(exc, cfg.ConfigSourceValueError):
        return f'{exc}; correct it in the configuration file'
    return str(exc)

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

"""How to reach one Cinder as one user: the settings a connection needs.

The cinder driver reads them from the store's options (as glance_store
names them) and hands them to
:meth:`multistore_prefix.backends.cinder.client.Connection.shared`.
"""

import dataclasses
import hashlib
import hmac
import os

from keystoneauth1.identity import v3 as ks_v3

# Connections with equal settings are shared, found by Settings.key: a
# keyed hash, so no secret is kept in clear outside the settings themselves.
_KEY = os.urandom(32)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How to reach one Cinder as one user; secrets stay out of repr.

    :ivar catalog: (service type, service name or ``None``, interface) to
        find the endpoint in the token's catalog.
    :ivar endpoint_template: used instead of the catalog when set.
    :ivar verify: ``False``, ``True`` or a CA bundle path.
    :ivar retries: retries of a failed request (``cinder_http_retries``).
    """

    auth_url: str
    user_name: str | None
    user_domain_name: str | None
    project_name: str | None
    project_domain_name: str | None
    password: str | None = dataclasses.field(repr=False)
    application_credential_id: str | None
    application_credential_secret: str | None = dataclasses.field(
        repr=False)
    endpoint_template: str | None
    catalog: tuple[str, str | None, str]
    region: str | None
    verify: bool | str
    retries: int

    def key(self) -> str:
        """A keyed hash of every setting: equal for equal settings."""
        text = repr(dataclasses.astuple(self)).encode()
        return hmac.new(_KEY, text, hashlib.sha256).hexdigest()

    def auth(self):
        """The keystoneauth plugin for these credentials (offline)."""
        if self.application_credential_id:
            return ks_v3.ApplicationCredential(
                auth_url=self.auth_url,
                application_credential_id=self.application_credential_id,
                application_credential_secret=(
                    self.application_credential_secret))
        return ks_v3.Password(
            auth_url=self.auth_url, username=self.user_name,
            password=self.password, user_domain_name=self.user_domain_name,
            project_name=self.project_name,
            project_domain_name=self.project_domain_name)

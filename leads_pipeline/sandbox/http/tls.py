"""An HTTPS front for an emulator that its client library reaches only over https (Salesforce).

simple-salesforce builds every URL as ``https://{instance host:port}/services/...`` whatever scheme the
instance URL has, and ignores any path. This serves one emulator of the HTTP app at the root of a TLS port,
with a certificate for 127.0.0.1 from a throwaway CA (trustme); clients trust the CA's PEM file
(``session.verify``, with ``trust_env`` off: see PROVIDERS.md, General).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from leads_pipeline.lib.crm.salesforce import SalesforceResource
from leads_pipeline.sandbox.http.serve import ThreadingWSGIServer, serve_in_thread

SALESFORCE_TOKEN = "sandbox-salesforce-token"
"""The access token the settings give (the emulator takes any non-empty one unless its settings restrict keys)."""


@dataclass
class TlsFront:
    server: ThreadingWSGIServer
    url: str
    ca_file: Path

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def salesforce_env(self) -> dict[str, str]:
        """The settings that point ``SalesforceResource`` (simple-salesforce) at this front of the Salesforce
        emulator: its URL, a sandbox token, and the CA to trust."""
        return {
            SalesforceResource.URL_ENV_VAR: self.url,
            SalesforceResource.ENV_VAR: SALESFORCE_TOKEN,
            SalesforceResource.CA_ENV_VAR: str(self.ca_file),
        }


def serve_tls(
    app: Callable[..., Iterable[bytes]], mount: str, folder: Path, host: str = "127.0.0.1", port: int = 0
) -> TlsFront:
    """Serve ``app``'s ``/{mount}`` emulator at the root of https port ``port`` (0: a free one); the CA goes to
    ``folder``."""
    authority = trustme.CA()
    folder.mkdir(parents=True, exist_ok=True)
    ca_file = folder / "sandbox-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(host, "localhost").configure_cert(context)

    def mounted(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ["PATH_INFO"] = f"/{mount}" + str(environ.get("PATH_INFO", ""))
        return app(environ, start_response)

    server, port = serve_in_thread(mounted, host, port)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return TlsFront(server, f"https://{host}:{port}", ca_file)

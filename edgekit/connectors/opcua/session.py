"""Open one authenticated asyncua session for a connection config (used by the connector and browse).

Sequence: GetEndpoints over an unsecured discovery channel → :func:`.security.choose_endpoint` →
server certificate validated against the trust dir → secure channel, CreateSession,
ActivateSession (user name only over SignAndEncrypt). Errors come out as edgekit errors with
the reason spelled out: :class:`SecurityError` for trust, policy and credential problems,
:class:`ConnectorError` when the server cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from asyncua import Client, ua

from ...errors import ConnectorError, SecurityError
from .config import OpcUaConnectionConfig
from .security import apply_security, choose_endpoint

__all__ = ["open_session"]


async def open_session(
    cfg: OpcUaConnectionConfig, on_lost: Callable[[Exception], Coroutine[Any, Any, None]] | None = None
) -> tuple[Client, str]:
    """A connected client and a description of its security (``"Basic256Sha256/Sign (server cert pinned)"``)."""
    client = Client(cfg.endpoint, timeout=cfg.request_timeout, watchdog_intervall=cfg.keepalive)
    client.session_timeout = int(cfg.session_timeout * 1000)
    client.name = client.description = f"edgekit {cfg.name}"
    try:
        endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(), cfg.request_timeout * 2)
    except (TimeoutError, OSError) as exc:
        raise ConnectorError(f"cannot reach {cfg.endpoint}: {exc!r}") from exc
    choice = choose_endpoint(cfg, endpoints)
    if cfg.username and choice.mode != "SignAndEncrypt":
        raise SecurityError("username/password are only sent over a SignAndEncrypt channel")
    how = await apply_security(client, cfg, choice)
    security = f"{choice.policy}/{choice.mode}" + (f" (server cert {how})" if choice.policy != "None" else "")
    if cfg.username and cfg.password is not None:
        client.set_user(cfg.username)
        client.set_password(cfg.password.value())
    client.connection_lost_callback = on_lost
    try:
        await asyncio.wait_for(client.connect(auto_reconnect=False), cfg.request_timeout * 3)
    except ua.UaStatusCodeError as exc:
        client.disconnect_socket()
        name = type(exc).__name__
        if "Identity" in name or "UserAccessDenied" in name:
            raise SecurityError(f"server refused user {cfg.username!r}: {name} (wrong user name or password?)") from exc
        if "Certificate" in name or "Security" in name:
            raise SecurityError(f"server refused our certificate or security policy: {name}") from exc
        raise
    except (TimeoutError, OSError) as exc:
        client.disconnect_socket()
        raise ConnectorError(f"cannot connect to {cfg.endpoint}: {exc!r}") from exc
    except Exception:
        client.disconnect_socket()
        raise
    return client, security

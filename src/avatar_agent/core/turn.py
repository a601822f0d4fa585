"""Time-limited TURN credentials, the shared-secret scheme coturn implements
(`use-auth-secret`, the "TURN REST API" draft): the username is the expiry time (Unix
seconds) and a name, `EXPIRY:NAME`; the password is base64(HMAC-SHA1(secret, username)).
coturn recomputes the password from its copy of the secret and refuses a username whose
time has passed, so the server hands out credentials without telling coturn anything,
and a copied credential stops working when it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from avatar_agent.core.config import TurnConfig


def turn_credentials(secret: str, ttl_s: float, now: float, name: str = "customer"
                     ) -> tuple[str, str]:
    """(username, password) valid until now + ttl_s."""
    username = f"{int(now + ttl_s)}:{name}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def turn_ice_server(cfg: TurnConfig, now: float) -> dict[str, Any]:
    """The page's `RTCIceServer` entry for the TURN server, with fresh credentials."""
    username, credential = turn_credentials(cfg.secret, cfg.ttl_s, now)
    return {"urls": list(cfg.urls), "username": username, "credential": credential}

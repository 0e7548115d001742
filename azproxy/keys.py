"""Typed keys for state on the application and on each request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from .credentials import Credentials
from .h1client import H1Pool
from .live_models import LiveDeployments
from .settings import Settings


@dataclass
class Readiness:
    """Whether this process takes new work; false once shutdown (SIGTERM) has begun."""

    ready: bool = True


SETTINGS = web.AppKey("settings", Settings)
READINESS = web.AppKey("readiness", Readiness)
LIVE_DEPLOYMENTS = web.AppKey("live_deployments", LiveDeployments)
CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)
# Absent when AZURE_OPENAI_PROXY_UPSTREAM_CLIENT=aiohttp.
H1_POOL = web.AppKey("h1_pool", H1Pool)

REQUEST_ID = web.RequestKey("request_id", str)
CREDENTIALS = web.RequestKey("credentials", Credentials)
BODY = web.RequestKey("body", bytes)
PAYLOAD = web.RequestKey("payload", dict[str, Any])
MODEL = web.RequestKey("model", str)
DEPLOYMENT = web.RequestKey("deployment", str)
UPSTREAM_STATUS = web.RequestKey("upstream_status", int)
STREAM_RESPONSE = web.RequestKey("stream_response", web.StreamResponse)

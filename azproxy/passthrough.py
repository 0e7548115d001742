"""`openai` mode: a plain reverse proxy to OpenAI, for regions where it is blocked."""

from __future__ import annotations

from aiohttp import web

from .handlers import CorsView
from .keys import SETTINGS
from .relay import forward
from .upstream import HOP_BY_HOP, REQUEST_DECODED, UpstreamCall, forwarded_headers, host_of


class OpenAIPassthrough(CorsView):
    """Every path and method goes to OPENAI_API_BASE unchanged, but for hop-by-hop headers."""

    async def _forward(self) -> web.StreamResponse:
        request = self.request
        base = request.app[SETTINGS].openai_base
        url = base + request.rel_url.raw_path_qs
        body = await request.read() if request.body_exists else None
        call = UpstreamCall(
            method=request.method,
            url=url,
            headers=forwarded_headers(request.headers, HOP_BY_HOP | REQUEST_DECODED),
            body=body,
            host=host_of(base),
            auto_decompress=False,
        )
        return await forward(request, call, passthrough=True)

    get = post = put = patch = delete = head = _forward

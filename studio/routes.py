"""The same-origin HTTP route that streams a live take's PCM to the browser player.

Measured (STREAMING.md): a Starlette StreamingResponse read with fetch() delivers every
chunk, bursts included, which re-mounting a component per chunk does not.
"""
from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from studio.live import get_take

POLL_SECONDS = 0.02


async def take_audio(request: Request) -> Response:
    """16-bit little-endian mono PCM of the take's first variation, as it is sampled."""
    take = get_take(request.path_params["take_id"])
    if take is None:
        return PlainTextResponse("no such take", status_code=404)

    async def body():
        sent = 0
        while True:
            ready = len(take.pcm)
            while sent < ready:
                yield take.pcm[sent]
                sent += 1
            if take.finished and sent >= len(take.pcm):
                return
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Sample-Rate": str(take.sample_rate)}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


ROUTES = [Route("/wavenet/take/{take_id}", take_audio)]

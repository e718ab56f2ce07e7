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
    """16-bit little-endian mono PCM of the take's first variation, as it is sampled; `?from=N`
    starts at sample N (the player skips most of a long prime)."""
    take = get_take(request.path_params["take_id"])
    if take is None:
        return PlainTextResponse("no such take", status_code=404)
    start = request.query_params.get("from", "0")
    if not (start.isascii() and start.isdigit()):
        return PlainTextResponse("from must be a sample index", status_code=400)

    async def body():
        sent, skip = 0, 2 * int(start)
        while True:
            ready = len(take.pcm)
            while sent < ready:
                chunk = take.pcm[sent][skip:]
                skip = max(0, skip - len(take.pcm[sent]))
                if chunk:
                    yield chunk
                sent += 1
            if take.finished and sent >= len(take.pcm):
                return
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Sample-Rate": str(take.sample_rate)}
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


ROUTES = [Route("/wavenet/take/{take_id}", take_audio)]

"""What the three websockets share: connections with a bounded outbound queue each, PING
handling, and delivery of data frames through the armed stream faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection
from typing import Any

from aiohttp import WSMsgType, web

from polycopy.sim.faults import Duplicated, Faults, Malformed, Reordered, Truncated
from polycopy.sim.settings import SimConfig

Render = Callable[["Subscriber"], str]
SLOW_CONSUMER = 1013
REORDER_HOLD_S = 1.0  # a held-back frame goes out by then even if nothing follows it
CLOSE_WAIT_S = 1.0  # how long a close waits for the client's answer (shutdown stays quick)


class Subscriber:
    """One websocket connection. Frames are queued and written by the connection's own task,
    so a slow reader never blocks the simulator; an overflowing reader is closed (1013)."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, limit: int) -> None:
        self.ws = ws
        self.request = request
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=limit)
        self.state: dict[str, Any] = {}
        self.prefix = ""  # RTDS puts the connection id in front of every frame
        self._closing: asyncio.Task[Any] | None = None

    def send(self, frame: str) -> None:
        if self._closing is not None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._closing = asyncio.ensure_future(
                self.ws.close(code=SLOW_CONSUMER, message=b"slow consumer")
            )

    async def write_loop(self) -> None:
        try:
            while True:
                frame = await self.queue.get()
                await self.ws.send_str(frame)
        except ConnectionError:
            return

    def abort(self) -> None:
        """Drop the TCP connection without a close frame: the client sees 1006."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class StreamHub:
    channel = ""
    pong = "PONG"

    def __init__(self, faults: Faults, config: SimConfig) -> None:
        self.faults = faults
        self.config = config
        self.subscribers: set[Subscriber] = set()
        self._held: tuple[Collection[Subscriber], Render] | None = None
        self._held_timer: asyncio.TimerHandle | None = None

    # --- connections ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.faults.refusing(self.channel):
            return web.json_response({"error": "Service Unavailable"}, status=503)
        ws = web.WebSocketResponse(
            timeout=CLOSE_WAIT_S,
            autoping=True,
            max_msg_size=1 << 20,
            compress=self.config.ws_compression,
        )
        await ws.prepare(request)
        sub = Subscriber(ws, request, self.config.ws_queue_frames)
        self.subscribers.add(sub)
        self.opened(sub)
        writer = asyncio.create_task(sub.write_loop())
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    if message.data.strip().upper() == "PING":
                        sub.send(self.pong)  # answered even while the stream is silent
                    else:
                        self.on_text(sub, message.data)
        finally:
            self.subscribers.discard(sub)
            writer.cancel()
            await asyncio.wait([writer])
        return ws

    def opened(self, sub: Subscriber) -> None:
        return None

    def on_text(self, sub: Subscriber, text: str) -> None:
        raise NotImplementedError

    def disconnect_all(self) -> None:
        for sub in list(self.subscribers):
            sub.abort()

    async def close_all(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
        closing = [sub.ws.close(code=1001, message=b"server shutdown") for sub in self.subscribers]
        await asyncio.gather(*closing, return_exceptions=True)

    # --- data frames ---------------------------------------------------------------------------
    def deliver(self, targets: Collection[Subscriber], render: Render) -> None:
        """One data frame to `targets`, as the armed faults would have it arrive."""
        if not targets:
            return
        if self.faults.stream_armed:
            if self.faults.silent(self.channel):
                return
            fault = self.faults.take_stream(self.channel)
            if isinstance(fault, Reordered) and self._held is None:
                self._held = (targets, render)
                loop = asyncio.get_running_loop()
                self._held_timer = loop.call_later(REORDER_HOLD_S, self._release_held)
                return
            for sub in targets:
                frame = render(sub)
                if isinstance(fault, Malformed):
                    sub.send(malformed(frame, fault.style))
                    sub.send(frame)
                elif isinstance(fault, Truncated):
                    sub.send(frame[: len(frame) // 2])
                elif isinstance(fault, Duplicated):
                    sub.send(frame)
                    sub.send(frame)
                else:
                    sub.send(frame)
        else:
            for sub in targets:
                sub.send(render(sub))
        self._release_held()

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if held is not None:
            targets, render = held
            for sub in targets:
                if sub in self.subscribers:
                    sub.send(render(sub))


def malformed(frame: str, style: str) -> str:
    """A broken copy of `frame`: its envelope with impossible values (price 1.5, negative size,
    unknown side), so a client's filters let it through to its parser; or not JSON at all."""
    if style == "bad_values":
        try:
            event = json.loads(frame)
        except ValueError:
            event = None
        if isinstance(event, dict):
            payload = event.get("payload")
            body: dict[str, Any] = payload if isinstance(payload, dict) else event
            body.update({"price": "1.5", "size": -3, "side": "HOLD"})
            return json.dumps(event, separators=(",", ":"))
    return "<html><body><h1>502 Bad Gateway</h1></body></html>"

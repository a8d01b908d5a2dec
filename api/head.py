"""HEAD wherever GET is served (RFC 9110, 9.3.2): the GET answer's status and headers, no body.

FastAPI's routes serve only the methods they name, so every page and API route answered HEAD
with 405 (only the file routes, Starlette's, knew it): link checkers and uptime monitors that
ask with HEAD saw errors (outside tester). The request runs as the GET it stands for, through
every check a GET passes (keys, roles, limits); the answer's body is dropped, and a streamed
answer (events) ends after its head: the app is told the client left.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def receive_until_answered() -> Message:
            if answered:  # the head went out: a stream stops as when its client leaves
                return {"type": "http.disconnect"}
            return await receive()

        async def send_the_head(message: Message) -> None:
            nonlocal answered
            if answered:
                return
            if message["type"] == "http.response.body":
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive_until_answered, send_the_head)

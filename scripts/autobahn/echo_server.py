"""Reference RFC 6455 echo server (Python `websockets`) for checking the
Autobahn harness itself: `AUTOBAHN_SELFTEST=1 scripts/autobahn.sh`.

Listens on 127.0.0.1 (port 0 = any free port), echoes every text and binary
message on any path, and prints `echo listening on 127.0.0.1:PORT` as its
first stdout line, the same shape natter prints.
"""

import asyncio
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except Exception:
        pass


async def main(port: int) -> None:
    # No size limit: case 9 sends messages of up to 16 MiB.
    async with serve(echo, "127.0.0.1", port, max_size=None, compression=None,
                     ping_interval=None) as server:
        host, real_port = server.sockets[0].getsockname()[:2]
        print(f"echo listening on {host}:{real_port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))

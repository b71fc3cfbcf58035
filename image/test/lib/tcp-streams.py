#!/usr/bin/env python3
"""Long-lived TCP connections with checked byte streams, for the QEMU cluster failover test (the
namespace tests' stream-client/stream-server, test/cluster-dp/support, driven from a shell instead of
over Node IPC). Byte i of a direction is (i mod M): a receiver checks every byte - nothing lost,
repeated or reordered - without storing the stream.

  tcp-streams.py serve PORT
      every 100 ms sends each connection CHUNK bytes (M = 251) and checks what it receives
      (M = 241); a wrong byte closes the connection, which the client sees.
  tcp-streams.py clients HOST PORT COUNT PORTS_FILE
      opens COUNT connections (their local ports go to PORTS_FILE, one a line, once all are up),
      sends CHUNK/4 bytes each every 100 ms and checks what it receives. SIGUSR1: mark now (a
      failover starts). SIGTERM: print one JSON report line per connection and exit.
"""
import asyncio
import json
import signal
import sys
import time

CHUNK = 256
TO_CLIENT = 251
TO_SERVER = 241
TICK = 0.1
# One period of each pattern followed by the longest slice read at once.
MAX_READ = 65536
CYCLES = {m: bytes(i % m for i in range(m + MAX_READ)) for m in (TO_CLIENT, TO_SERVER)}


def pattern(modulus, offset, length):
    start = offset % modulus
    return CYCLES[modulus][start:start + length]


async def serve(port):
    async def connection(reader, writer):
        sent = received = 0

        async def talk():
            nonlocal sent
            while True:
                writer.write(pattern(TO_CLIENT, sent, CHUNK))
                sent += CHUNK
                await writer.drain()
                await asyncio.sleep(TICK)

        talker = asyncio.create_task(talk())
        try:
            while data := await reader.read(MAX_READ):
                if data != pattern(TO_SERVER, received, len(data)):
                    break
                received += len(data)
        except OSError:
            pass
        talker.cancel()
        writer.close()

    server = await asyncio.start_server(connection, '0.0.0.0', port, backlog=512)
    async with server:
        await server.serve_forever()


class Stream:
    def __init__(self):
        self.port = 0
        self.received = self.sent = 0
        self.bad = self.closed = False
        self.error = None
        self.last_rx = 0.0
        self.max_gap = 0.0
        self.resumed_at = 0.0
        self.received_at_mark = 0


async def clients(host, port, count, ports_file):
    streams = []
    mark = [0.0]
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    def set_mark():
        mark[0] = time.time()
        for stream in streams:
            stream.received_at_mark = stream.received

    loop.add_signal_handler(signal.SIGUSR1, set_mark)
    loop.add_signal_handler(signal.SIGTERM, done.set)

    async def run(stream, reader, writer):
        async def talk():
            while not stream.closed:
                writer.write(pattern(TO_SERVER, stream.sent, CHUNK // 4))
                stream.sent += CHUNK // 4
                await asyncio.sleep(TICK)

        talker = asyncio.create_task(talk())
        try:
            while data := await reader.read(MAX_READ):
                now = time.time()
                if data != pattern(TO_CLIENT, stream.received, len(data)):
                    stream.bad = True
                stream.received += len(data)
                if mark[0]:
                    gap = now - max(stream.last_rx, mark[0])
                    if gap > stream.max_gap:
                        stream.max_gap, stream.resumed_at = gap, now
                stream.last_rx = now
        except OSError as error:
            stream.error = type(error).__name__
        stream.closed = True
        talker.cancel()

    async def open_one():
        stream = Stream()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 20)
        stream.port = writer.get_extra_info('sockname')[1]
        stream.last_rx = time.time()
        streams.append(stream)
        asyncio.create_task(run(stream, reader, writer))

    for first in range(0, count, 8):
        await asyncio.gather(*(open_one() for _ in range(min(8, count - first))))
    with open(ports_file, 'w') as out:
        out.write(''.join(f'{s.port}\n' for s in streams))
    await done.wait()
    for s in streams:
        print(json.dumps({'port': s.port, 'received': s.received, 'sent': s.sent, 'bad': s.bad, 'closed': s.closed,
                          'receivedSinceMark': s.received - s.received_at_mark, 'error': s.error, 'maxGapMs': round(s.max_gap * 1000), 'resumedAt': s.resumed_at}))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == 'serve':
        asyncio.run(serve(int(sys.argv[2])))
    elif len(sys.argv) == 6 and sys.argv[1] == 'clients':
        asyncio.run(clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    else:
        sys.exit(__doc__)


main()

/* A TCP server for long-lived connections (run in the server namespace): sends every connection
 * CHUNK bytes of a known pattern every 100 ms and checks that what the client sends follows the
 * client's pattern; a wrong byte closes the connection, which the client sees. */
import { createServer } from 'node:net';
import { CHUNK, pattern, checkPattern, TO_SERVER, TO_CLIENT } from './stream-pattern.js';

const port = Number(process.env.STREAM_PORT ?? 80);
const server = createServer((socket) => {
  let sent = 0;
  let received = 0;
  socket.setNoDelay(true);
  const timer = setInterval(() => {
    socket.write(pattern(TO_CLIENT, sent, CHUNK));
    sent += CHUNK;
  }, 100);
  socket.on('data', (data: Buffer) => {
    if (!checkPattern(TO_SERVER, received, data)) socket.destroy();
    received += data.length;
  });
  socket.on('error', () => undefined);
  socket.on('close', () => clearInterval(timer));
});
server.listen(port, '0.0.0.0', () => process.send?.({ kind: 'ready' }));

// A client machine's end of a test: run inside a host's network namespace
// (test/helpers/netns.ts), it accepts connections on Unix sockets, which a
// test process in another namespace can reach through the file system, and
// opens a TCP connection from this namespace for each, so every byte crosses
// the simulated network as a remote client's would.
//
// Usage: node netns-forwarder.mjs SOCKET=HOST:PORT...
// Prints "ready" on stdout once every socket listens.
import { createConnection, createServer } from 'node:net';

const mappings = process.argv.slice(2).map((arg) => {
  const match = /^(\/.+)=([^:]+):(\d+)$/.exec(arg);
  if (!match) throw new Error(`expected SOCKET=HOST:PORT, got ${arg}`);
  return { socketPath: match[1], host: match[2], port: Number(match[3]) };
});

const servers = mappings.map(
  ({ socketPath, host, port }) =>
    new Promise((resolve, reject) => {
      const server = createServer((inbound) => {
        const outbound = createConnection({ host, port });
        inbound.pipe(outbound).pipe(inbound);
        // Either side failing ends both: the client sees the connection drop, as it would without us.
        inbound.on('error', () => outbound.destroy());
        outbound.on('error', () => inbound.destroy());
        inbound.on('close', () => outbound.destroy());
        outbound.on('close', () => inbound.destroy());
      });
      server.once('error', reject);
      server.listen(socketPath, () => resolve(server));
    }),
);

await Promise.all(servers);
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

/**
 * The seccomp filter as a program meets it: test/probes/seccomp-surface.c,
 * compiled and run inside a real sandbox, tries every socket family, type
 * and protocol the filter must refuse (EAFNOSUPPORT) or allow, tcp and udp
 * over loopback, the name lookups that read NETLINK_ROUTE, and every
 * syscall of the deny list; the table in test/probes/seccomp-surface.expected.ts
 * says what each attempt must get. The same table holds on the host kernel
 * in test/integration/runtime/seccomp/surface.test.ts, where root proves each
 * refusal is the filter's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { StepResult } from '../../../runtime/result.ts';
import { startTestRuntime, type TestRuntime } from '../../helpers/runtime.ts';
import { EAFNOSUPPORT, ENOSYS, expectedSurface, parseSurfaceReport, surfaceProblems } from '../../probes/seccomp-surface.expected.ts';
import { CompiledProbe, explain } from './probes.ts';

/** Some 360 attempts, each in its own short-lived child. */
const PROBE_LIMITS = { cpuMs: 5000, wallMs: 20_000, memoryMb: 64, processes: 16, outputBytes: 1 << 16 };

let rt: TestRuntime;
let probe: CompiledProbe;
let result: StepResult;
let report: Map<string, string>;

before(async () => {
  // Two slots: the compiled probe keeps one until it is closed.
  rt = await startTestRuntime('runtime/seccomp-surface', { slots: 2 });
  probe = await CompiledProbe.compile(rt, 'seccomp-surface.c');
  result = await probe.run('', PROBE_LIMITS);
  report = parseSurfaceReport(result.stdout);
});

after(async () => {
  probe?.close();
  await rt?.close();
});

test('the probe runs to the end', () => {
  assert.equal(result.verdict, 'ok', explain(result));
  assert.match(result.stdout, /^done$/m, `the probe stopped early:\n${explain(result)}`);
});

test('every attempt gets the answer the default profile promises, and none goes unasserted', () => {
  assert.deepEqual(surfaceProblems(report, expectedSurface()), [], explain(result));
});

test('netlink: NETLINK_ROUTE opens, every other protocol is EAFNOSUPPORT', () => {
  assert.equal(report.get('socket AF_NETLINK SOCK_RAW NETLINK_ROUTE'), 'ok', explain(result));
  for (const protocol of [2, 4, 6, 7, 9, 10, 11, 12, 15, 16]) {
    assert.equal(report.get(`socket AF_NETLINK protocol ${protocol}`), EAFNOSUPPORT, `netlink protocol ${protocol}:\n${explain(result)}`);
  }
});

test('MPTCP, SCTP, raw and ping sockets are EAFNOSUPPORT; tcp and udp over loopback work', () => {
  for (const what of [
    'socket AF_INET SOCK_STREAM IPPROTO_MPTCP',
    'socket AF_INET SOCK_SEQPACKET 0',
    'socket AF_INET SOCK_RAW IPPROTO_ICMP',
    'socket AF_INET SOCK_DGRAM IPPROTO_ICMP',
  ]) {
    assert.equal(report.get(what), EAFNOSUPPORT, `${what}:\n${explain(result)}`);
  }
  for (const what of [
    'tcp over loopback 127.0.0.1',
    'tcp over loopback [::1]',
    'udp over loopback 127.0.0.1',
    'udp over loopback [::1]',
    'getaddrinfo localhost AI_ADDRCONFIG',
  ]) {
    assert.equal(report.get(what), 'ok', `${what}:\n${explain(result)}`);
  }
});

test('socketpair works for AF_UNIX only: TIPC, VSOCK and INET pairs are EAFNOSUPPORT', () => {
  assert.equal(report.get('socketpair AF_UNIX SOCK_STREAM'), 'ok', explain(result));
  for (const what of ['socketpair AF_TIPC SOCK_SEQPACKET', 'socketpair AF_VSOCK SOCK_STREAM', 'socketpair AF_INET SOCK_STREAM']) {
    assert.equal(report.get(what), EAFNOSUPPORT, `${what}:\n${explain(result)}`);
  }
});

test('kernel aio is ENOSYS; sync and syncfs are EPERM', () => {
  assert.equal(report.get('io_setup'), ENOSYS, explain(result));
  assert.equal(report.get('sync'), 'EPERM', explain(result));
  assert.equal(report.get('syncfs'), 'EPERM', explain(result));
});

/** Each runtime's own socket code (its flags, its families, its name lookups) under the filter: a loopback echo. */
const LOOPBACK_ECHO: Record<string, string> = {
  python:
    'import asyncio, socket\n' +
    'async def main():\n' +
    '    async def echo(r, w):\n' +
    '        w.write(await r.readline()); await w.drain(); w.close()\n' +
    '    server = await asyncio.start_server(echo, "localhost", 0)\n' +
    '    port = server.sockets[0].getsockname()[1]\n' +
    '    r, w = await asyncio.open_connection("localhost", port)\n' +
    '    w.write(b"echo\\n"); await w.drain()\n' +
    '    print((await r.readline()).decode().strip())\n' +
    '    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); udp.bind(("::1", 0)); udp.sendto(b"x", udp.getsockname()); udp.recv(1)\n' +
    'asyncio.run(main())\n',
  node:
    'const net = require("node:net");\n' +
    'const server = net.createServer((s) => s.pipe(s)).listen(0, "localhost", () => {\n' +
    '  const c = net.connect(server.address().port, "localhost", () => c.end("echo\\n"));\n' +
    '  c.on("data", (d) => { process.stdout.write(d); server.close(); });\n' +
    '});\n',
  java:
    'import java.io.*; import java.net.*;\n' +
    'public class Main { public static void main(String[] a) throws Exception {\n' +
    '  try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {\n' +
    '    Thread t = new Thread(() -> { try (Socket s = server.accept()) { s.getOutputStream().write(s.getInputStream().read()); } catch (IOException e) { throw new UncheckedIOException(e); } });\n' +
    '    t.start();\n' +
    '    try (Socket c = new Socket("localhost", server.getLocalPort())) { c.getOutputStream().write(\'e\'); System.out.println(c.getInputStream().read() == \'e\' ? "echo" : "wrong"); }\n' +
    '    t.join();\n' +
    '  } } }\n',
};

for (const [language, source] of Object.entries(LOOPBACK_ECHO)) {
  test(`${language}: its own socket code echoes over loopback under the filter`, async () => {
    const echo = await rt.run(language, source);
    if (echo.compile) assert.equal(echo.compile.verdict, 'ok', echo.compile.stderr);
    assert.equal(echo.run?.verdict, 'ok', explain(echo.run));
    assert.equal(echo.run?.stdout.trim(), 'echo', explain(echo.run));
  });
}

/**
 * What does meshlite cost per call? Unary calls at a fixed concurrency through a
 * one-endpoint meshlite channel, against a plain connect-node gRPC transport to
 * the same backend, in interleaved slices. The backend runs in its own process
 * so that this process's CPU is all client.
 *
 * By default the backend is a canned-response gRPC server: a Connect server
 * costs about as much CPU per call as a Connect client, so on a 2-core box it
 * would be the bottleneck and hide the client's cost. `--connect-backend`
 * uses the real echo backend instead.
 *
 * The channel speaks gRPC through meshlite's lean transport by default;
 * `--connect-node-transport` makes it use connect-node's, the same code as the
 * plain side, so the ratio is the balancing layer's own cost.
 *
 *   pnpm bench:overhead [--pairs 11] [--slice-ms 500] [--concurrency 64] [--warmup-ms 1500] [--connect-backend] [--connect-node-transport]
 */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { createChannel } from "../src/index.js";
import { startBackendProcess } from "../test/support/backend-process.js";
import { parseArgs } from "./support/args.js";
import { startCannedBackend } from "./support/canned-backend.js";
import { closedLoop, interleave } from "./support/interleave.js";
import { median } from "./support/stats.js";

export interface OverheadResult {
  meshliteCallsPerSecond: number;
  plainCallsPerSecond: number;
  /** Median over pairs of meshlite / plain calls per second. */
  ratio: number;
  /** Median over pairs of meshlite / plain client CPU per call (above 1: meshlite costs more). */
  cpuRatio: number;
}

export interface OverheadOptions {
  /** A/B pairs of slices. Default 11. */
  pairs: number;
  /** Length of a slice, in ms. Default 500. */
  sliceMs: number;
  /** Calls in flight. Default 64. */
  concurrency: number;
  /** Unmeasured calls on each side first, in ms. Default 1500. */
  warmupMs: number;
  /** Call the real Connect echo backend instead of the canned-response server. Default false. */
  connectBackend: boolean;
  /** The channel uses connect-node's gRPC transport instead of the lean one. Default false. */
  connectNodeTransport: boolean;
}

export const defaultOverheadOptions: OverheadOptions = {
  pairs: 11,
  sliceMs: 500,
  concurrency: 64,
  warmupMs: 1500,
  connectBackend: false,
  connectNodeTransport: false,
};

export async function runChannelOverhead(options: OverheadOptions = defaultOverheadOptions): Promise<OverheadResult> {
  const { pairs, sliceMs, concurrency, warmupMs } = options;
  const backend = options.connectBackend
    ? await startBackendProcess("127.0.0.2")
    : await startCannedBackend("127.0.0.2");
  const channel = createChannel({
    target: `static:///${backend.address}`,
    grpcImplementation: options.connectNodeTransport ? "connect-node" : "lean",
  });
  const meshlite = createClient(EchoService, channel);
  const baseUrl = `http://${backend.address}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  const plain = createClient(EchoService, createGrpcTransport({ baseUrl, sessionManager }));
  const request = { message: "hello" };
  try {
    console.log(
      `channel overhead: unary Echo, concurrency ${concurrency}, ${pairs} pairs of ${sliceMs} ms slices, ` +
        `${options.connectBackend ? "Connect echo" : "canned-response"} backend process ${backend.address}, ` +
        `channel over ${options.connectNodeTransport ? "connect-node's" : "the lean"} gRPC transport`,
    );
    // Both sides connect and get their code paths compiled before anything counts.
    await closedLoop(() => meshlite.echo(request), concurrency, warmupMs);
    await closedLoop(() => plain.echo(request), concurrency, warmupMs);

    const results = await interleave(
      (ms) => closedLoop(() => meshlite.echo(request), concurrency, ms),
      (ms) => closedLoop(() => plain.echo(request), concurrency, ms),
      {
        pairs,
        sliceMs,
        onPair: (i, a, b) =>
          console.log(
            `  pair ${i + 1}: meshlite ${a.perSecond.toFixed(0)}/s (${a.cpuMicrosPerOp.toFixed(0)} µs CPU/call), ` +
              `plain ${b.perSecond.toFixed(0)}/s (${b.cpuMicrosPerOp.toFixed(0)} µs), ratio ${(a.perSecond / b.perSecond).toFixed(3)}`,
          ),
      },
    );
    const ratios = results.map((r) => r.a.perSecond / r.b.perSecond);
    const result: OverheadResult = {
      meshliteCallsPerSecond: median(results.map((r) => r.a.perSecond)),
      plainCallsPerSecond: median(results.map((r) => r.b.perSecond)),
      ratio: median(ratios),
      cpuRatio: median(results.map((r) => r.a.cpuMicrosPerOp / r.b.cpuMicrosPerOp)),
    };
    console.log(
      `  meshlite channel ${result.meshliteCallsPerSecond.toFixed(0)} calls/s, ` +
        `plain connect-node ${result.plainCallsPerSecond.toFixed(0)} calls/s`,
    );
    console.log(
      `  ratio meshlite/plain: ${result.ratio.toFixed(3)} (median of ${pairs} pairs; range ` +
        `${Math.min(...ratios).toFixed(3)}..${Math.max(...ratios).toFixed(3)}; goal >= 0.97)`,
    );
    console.log(
      `  client CPU per call, meshlite/plain: ${result.cpuRatio.toFixed(3)} (median of pairs; below 1: meshlite uses less)`,
    );
    return result;
  } finally {
    await channel.close();
    sessionManager.abort();
    await backend.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = parseArgs(
    defaultOverheadOptions,
    "tsx bench/channel-overhead.ts [--pairs 11] [--slice-ms 500] [--concurrency 64] [--warmup-ms 1500] [--connect-backend] [--connect-node-transport]",
  );
  await runChannelOverhead(options);
}

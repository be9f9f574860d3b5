import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";
import { type BalancerName, createChannel } from "../../src/index.js";
import { formatTable, shareCell, startLiveView } from "./live-view.js";
import { createRecorder, type Recorder, runOpenLoop } from "./open-loop.js";
import type { DemoBackend, Scene } from "./scene.js";

const rate = 200;
const durationMs = 2500;
const balancers: BalancerName[] = ["pick-first", "round-robin", "least-request", "p2c"];

interface Variant {
  label: string;
  record: Recorder;
  state: "waiting" | "running" | "done";
}

/**
 * The problem and the fix: one plain gRPC client (a single HTTP/2 connection,
 * which is what a ClusterIP Service gives you) puts every call on one backend;
 * meshlite spreads them per call, differently with each balancer.
 */
export const spreadScene: Scene = {
  title: "Where do the calls go?",
  intro:
    `${rate} calls/s for ${durationMs / 1000} s from each client. A plain gRPC client holds one HTTP/2 connection ` +
    "(what a ClusterIP Service gives you): all its calls land on one backend. meshlite balances per call.",
  async run(context) {
    const { backends } = context;
    // A ClusterIP Service connects you to some pod; which one is luck.
    const landed = backends[Math.floor(Math.random() * backends.length)] as DemoBackend;
    const variants: Variant[] = [
      { label: "plain gRPC", record: createRecorder(), state: "waiting" },
      ...balancers.map((b): Variant => ({ label: `meshlite ${b}`, record: createRecorder(), state: "waiting" })),
    ];
    const view = startLiveView({ frame: () => frame(variants, backends) });
    try {
      for (const [index, variant] of variants.entries()) {
        if (context.signal.aborted) break;
        variant.state = "running";
        let transport: Transport;
        let close: () => Promise<void>;
        if (index === 0) {
          const baseUrl = `http://${landed.address}`;
          const sessionManager = new Http2SessionManager(baseUrl);
          transport = createGrpcTransport({ baseUrl, sessionManager });
          close = async () => sessionManager.abort();
        } else {
          const channel = context.track(
            createChannel({
              target: `static:///${backends.map((b) => b.address).join(",")}`,
              balancer: balancers[index - 1] as BalancerName,
              logger: context.logger,
            }),
          );
          transport = channel;
          close = () => channel.close();
        }
        const client = createClient(EchoService, transport);
        await runOpenLoop({
          rate,
          durationMs,
          call: () => client.echo({ message: "hello" }),
          record: variant.record,
          signal: context.signal,
        });
        await close();
        variant.state = "done";
      }
    } finally {
      view.stop();
    }
    return [
      ...frame(variants, backends).lines,
      `  The plain client's connection landed on ${landed.host}: it gets every call.`,
      "  round-robin and least-request split evenly by count. p2c follows measured",
      "  latency only where it tells backends apart (more than 2x): these four are",
      "  equal, so it splits evenly too, and still leaves a slow one (next scene).",
      ...variants.filter((v) => v.record.errors > 0).map((v) => `  ${v.label}: first error: ${v.record.firstError}`),
    ];
  },
};

function frame(variants: Variant[], backends: readonly DemoBackend[]) {
  const anyErrors = variants.some((v) => v.record.errors > 0);
  const rows = variants.map((v) => {
    const total = v.record.total();
    const mark = v.state === "running" ? "▶ " : "  ";
    return [
      mark + v.label,
      ...backends.map((b) => (total > 0 ? shareCell((v.record.byServer.get(b.address) ?? 0) / total) : "")),
      total > 0 ? String(total) : "",
      ...(anyErrors ? [String(v.record.errors)] : []),
    ];
  });
  const lines = formatTable(
    ["share of calls", ...backends.map((b) => b.host), "calls", ...(anyErrors ? ["errors"] : [])],
    rows,
  );
  const running = variants.find((v) => v.state === "running");
  const status = running
    ? `${running.label}: ` +
      backends
        .map(
          (b) =>
            `${b.host} ${Math.round(((running.record.byServer.get(b.address) ?? 0) * 100) / Math.max(1, running.record.total()))}%`,
        )
        .join(", ")
    : "done";
  return { lines, status };
}

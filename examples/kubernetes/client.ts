// The client's bootstrap: one import registers the k8s:/// scheme, then a channel
// balances every call over the ready pods of the service and follows them as they change.
import "@meshlite/resolver-k8s";
import { createClient } from "@connectrpc/connect";
import { createChannel } from "meshlite";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";

const channel = createChannel({
  target: process.env.TARGET ?? "k8s:///echo:grpc",
  balancer: "p2c",
});
const client = createClient(EchoService, channel);

const calls = new Map<string, number>();
let failures = 0;
let running = true;

async function worker(): Promise<void> {
  while (running) {
    try {
      const { server } = await client.echo({ message: "hello" }, { timeoutMs: 5000 });
      calls.set(server, (calls.get(server) ?? 0) + 1);
    } catch (error) {
      failures++;
      console.error(String(error));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

// Every 5 s: calls per pod, failures, and what the channel sees.
const report = setInterval(() => {
  const endpoints = channel.snapshot().endpoints.map((e) => `${e.address} ${e.state}${e.draining ? " draining" : ""}`);
  console.log(JSON.stringify({ callsByPod: Object.fromEntries(calls), failures, endpoints }));
  calls.clear();
}, 5000);

const workers = Array.from({ length: 4 }, worker);
process.once("SIGTERM", async () => {
  running = false;
  clearInterval(report);
  await Promise.all(workers);
  await channel.close();
});

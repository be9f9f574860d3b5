/**
 * One demo backend in its own process: an EchoService server on the address
 * given in argv, driven by its parent over IPC (see backend-process.ts).
 *
 *   argv: HOST [PORT] [NAME]
 *   parent -> child: { id, type: "delay", ms } | { id, type: "stop" }
 *   child -> parent: { type: "ready", address } | { id, type: "done" }
 */
import { startEchoBackend } from "../../test/support/echo-backend.js";

const [host = "127.0.0.1", port = "0", name] = process.argv.slice(2);

if (!process.send) {
  console.error("backend-main.ts runs as a child process: start it with startBackendProcess()");
  process.exit(2);
}
const send = process.send.bind(process);

// Without a parent there is no one to serve: exit instead of lingering as an
// orphan (the IPC channel closes when the parent exits, even on SIGKILL).
process.on("disconnect", () => process.exit(0));

const backend = await startEchoBackend({ host, port: Number(port), ...(name ? { name } : {}) });

process.on("message", (message: { id: number; type: string; ms?: number }) => {
  switch (message.type) {
    case "delay":
      backend.setDelay(message.ms ?? 0);
      send({ id: message.id, type: "done" });
      break;
    case "stop": {
      // Graceful close, but never wait long: a demo that hangs is worse.
      const timer = setTimeout(() => process.exit(0), 1000);
      void backend.close().then(() => {
        clearTimeout(timer);
        send({ id: message.id, type: "done" }, () => process.exit(0));
      });
      break;
    }
  }
});

send({ type: "ready", address: backend.address });

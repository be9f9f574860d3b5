import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { parseListenAddress } from "./listen-address.js";
import type { Workers } from "./workers.js";

/** The admin listener of a primary process: `/healthz`, `/metrics`, `/routes`, answered from the workers. */
export interface PrimaryAdmin {
  listen(address: string): Promise<AddressInfo>;
  /** Stops accepting and closes its connections. */
  close(): void;
}

export function createPrimaryAdmin(workers: Workers): PrimaryAdmin {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const answer =
      path === "/healthz"
        ? workers.health().then((h) => ({
            status: h.ready ? 200 : 503,
            type: "application/json",
            body: `${JSON.stringify(h)}\n`,
          }))
        : path === "/metrics"
          ? workers.metrics().then((body) => ({ status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body }))
          : path === "/routes"
            ? workers.routes().then((r) => ({
                status: r === undefined ? 503 : 200,
                type: "application/json",
                body: `${JSON.stringify(r ?? { error: "no worker answered" }, null, 2)}\n`,
              }))
            : Promise.resolve({
                status: 404,
                type: "text/plain",
                body: "not found; try /healthz, /metrics or /routes\n",
              });
    answer.then(
      ({ status, type, body }) => {
        res.writeHead(status, { "content-type": type });
        res.end(body);
      },
      (e: Error) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`${e.message}\n`);
      },
    );
  });
  return {
    listen(address) {
      const { host, port } = parseListenAddress(address);
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      server.close();
      server.closeAllConnections();
    },
  };
}

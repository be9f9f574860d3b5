// createHttp2Connection's openStream: the proxy's synchronous way to open a call.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createHttp2Connection, type Http2Connection, isCallNotSent } from "@meshlite/transport";
import { afterEach, describe, expect, it } from "vitest";

describe("Http2Connection.openStream", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** A real HTTP/2 server that answers every stream with its request headers as JSON. */
  async function startHeaderEcho(host: string): Promise<number> {
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      stream.respond({ ":status": 200, "content-type": "application/json" });
      stream.end(JSON.stringify(headers));
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
        }),
    );
    return (server.address() as AddressInfo).port;
  }

  function ready(connection: Http2Connection): Promise<void> {
    return new Promise((resolve) => {
      const unsubscribe = connection.subscribe((event) => {
        if (event.type === "state" && event.state === "ready") {
          unsubscribe();
          resolve();
        }
      });
    });
  }

  it("throws a 'not sent' error naming the address while the connection is not ready", async () => {
    const connection = createHttp2Connection({
      origin: "http://svc.test:80",
      address: { host: "127.0.0.61", port: 1 },
    });
    cleanup.push(() => connection.close({ destroy: true }));
    let error: unknown;
    try {
      connection.openStream({ ":method": "POST", ":path": "/x" });
    } catch (e) {
      error = e;
    }
    expect(isCallNotSent(error)).toBe(true);
    expect(String(error)).toMatch(/no connection to 127\.0\.0\.61:1 \(idle\)/);
  });

  it("opens a stream at once on a ready connection, with the headers as given and the origin's authority", async () => {
    const port = await startHeaderEcho("127.0.0.62");
    const connection = createHttp2Connection({
      origin: `http://svc.test:${port}`,
      address: { host: "127.0.0.62", port },
    });
    cleanup.push(() => connection.close({ destroy: true }));
    const isReady = ready(connection);
    connection.connect();
    await isReady;

    const stream = connection.openStream({ ":method": "GET", ":path": "/hello", "x-call": "1" });
    let body = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      body += chunk;
    });
    await new Promise((resolve) => stream.on("end", resolve));
    const seen = JSON.parse(body) as Record<string, string>;
    expect(seen[":method"]).toBe("GET");
    expect(seen[":path"]).toBe("/hello");
    expect(seen[":authority"]).toBe(`svc.test:${port}`);
    expect(seen["x-call"]).toBe("1");
  });
});

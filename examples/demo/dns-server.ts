import { Packet, UDPServer } from "dns2";

/** Options of startDnsServer. */
export interface DnsServerOptions {
  /** TTL of every answer, in seconds. Default 2. */
  ttlSeconds?: number;
}

/**
 * A tiny authoritative DNS server in this process (dns2, pure JS, UDP on
 * 127.0.0.1, any free port): answers A queries for the names it is given,
 * like the DNS of a headless Service. Other types of a known name get an
 * empty answer (no AAAA, no TXT), unknown names NXDOMAIN.
 */
export interface DnsServer {
  /** `host:port`, for a `dns://host:port/...` target. */
  readonly address: string;
  /** Replaces the A records of a name (an empty list removes it). */
  setRecords(name: string, ips: readonly string[]): void;
  close(): Promise<void>;
}

export async function startDnsServer(options: DnsServerOptions = {}): Promise<DnsServer> {
  const ttl = options.ttlSeconds ?? 2;
  const host = "127.0.0.1";
  const records = new Map<string, readonly string[]>();
  const server = new UDPServer((request, send) => {
    const response = Packet.createResponseFromRequest(request);
    // Names are case-insensitive; a trailing dot is the same name.
    const known = request.questions.map((q) => records.get(q.name.toLowerCase().replace(/\.$/, "")));
    if (known.every((ips) => ips === undefined)) response.header.rcode = 3; // NXDOMAIN (dns2 has Packet.RCODE, its types do not)
    for (const [i, question] of request.questions.entries()) {
      const ips = known[i];
      if (question.type !== Packet.TYPE.A || ips === undefined) continue;
      for (const address of ips) {
        response.answers.push(Packet.createResourceFromQuestion(question, { type: Packet.TYPE.A, ttl, address }));
      }
    }
    void send(response).catch(() => {});
  });
  // A malformed packet is the sender's problem, not the demo's.
  server.on("requestError", () => {});
  await server.listen(0, host);
  const { port } = server.address();
  return {
    address: `${host}:${port}`,
    setRecords(name, ips) {
      if (ips.length === 0) records.delete(name.toLowerCase());
      else records.set(name.toLowerCase(), [...ips]);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

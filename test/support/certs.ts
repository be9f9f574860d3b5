import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A throwaway CA with a server certificate for `serverName` and a client certificate, made with openssl. */
export interface TestCerts {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

export function makeCerts(serverName: string): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "meshlite-certs-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  try {
    run(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=meshlite test CA",
    );
    for (const [name, cn, ext] of [
      ["server", serverName, `subjectAltName=DNS:${serverName}\nextendedKeyUsage=serverAuth`],
      ["client", "meshlite test client", "extendedKeyUsage=clientAuth"],
    ] as const) {
      writeFileSync(join(dir, `${name}.ext`), ext);
      run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.csr`,
        "-subj",
        `/CN=${cn}`,
      );
      run(
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      );
    }
    const read = (f: string) => readFileSync(join(dir, f), "utf8");
    return {
      ca: read("ca.crt"),
      serverKey: read("server.key"),
      serverCert: read("server.crt"),
      clientKey: read("client.key"),
      clientCert: read("client.crt"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

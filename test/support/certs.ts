import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A throwaway CA with a server and a client certificate it signed (PEM). */
export interface TestCerts {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
}

/** What to put in the certificates. */
export interface TestCertsOptions {
  /** subjectAltName entries of the server certificate, e.g. ["DNS:orders.test", "IP:127.0.0.1"]. */
  serverAltNames: string[];
  /** Subject of the client certificate. Default "/CN=meshlite test client". */
  clientSubject?: string;
}

/**
 * Makes the certificates with the openssl CLI (EC P-256 keys, valid 2 days).
 * A string is a server name: the server certificate is for that DNS name.
 */
export function makeCerts(options: string | TestCertsOptions): TestCerts {
  const { serverAltNames, clientSubject = "/CN=meshlite test client" } =
    typeof options === "string" ? { serverAltNames: [`DNS:${options}`] } : options;
  const dir = mkdtempSync(join(tmpdir(), "meshlite-certs-"));
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    run(
      "req",
      "-x509",
      ...newKey,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=meshlite test CA",
    );
    const certs = [
      ["server", "/CN=meshlite test server", `subjectAltName=${serverAltNames.join(",")}\nextendedKeyUsage=serverAuth`],
      ["client", clientSubject, "extendedKeyUsage=clientAuth"],
    ] as const;
    for (const [name, subject, extensions] of certs) {
      writeFileSync(join(dir, `${name}.ext`), extensions);
      run("req", ...newKey, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject);
      const sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`];
      run("x509", "-req", "-in", `${name}.csr`, ...sign, "-out", `${name}.crt`);
    }
    const read = (file: string) => readFileSync(join(dir, file), "utf8");
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

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
  /**
   * Validity of the server certificate, as openssl dates (YYYYMMDDHHMMSSZ),
   * e.g. one that expired in 2020. Default: from now, for 2 days.
   */
  serverValidity?: { notBefore: string; notAfter: string };
  /** The server certificate signs itself instead of being signed by the CA. Default false. */
  selfSignedServer?: boolean;
}

/**
 * Makes the certificates with the openssl CLI (EC P-256 keys, valid 2 days).
 * A string is a server name: the server certificate is for that DNS name.
 */
export function makeCerts(options: string | TestCertsOptions): TestCerts {
  const {
    serverAltNames,
    clientSubject = "/CN=meshlite test client",
    serverValidity,
    selfSignedServer = false,
  }: TestCertsOptions = typeof options === "string" ? { serverAltNames: [`DNS:${options}`] } : options;
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
      if (name === "server" && selfSignedServer) {
        const self = ["-signkey", "server.key", "-days", "2", "-extfile", "server.ext"];
        run("x509", "-req", "-in", "server.csr", ...self, "-out", "server.crt");
      } else if (name === "server" && serverValidity) {
        // `openssl x509` only signs from now on; `openssl ca` takes any dates.
        writeFileSync(join(dir, "index.txt"), "");
        writeFileSync(join(dir, "serial"), "01\n");
        writeFileSync(
          join(dir, "ca.cnf"),
          "[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n",
        );
        const dates = ["-startdate", serverValidity.notBefore, "-enddate", serverValidity.notAfter];
        const ca = ["-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-extfile", "server.ext"];
        run("ca", "-batch", "-notext", ...ca, ...dates, "-in", "server.csr", "-out", "server.crt");
      } else {
        const sign = ["-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`];
        run("x509", "-req", "-in", `${name}.csr`, ...sign, "-out", `${name}.crt`);
      }
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

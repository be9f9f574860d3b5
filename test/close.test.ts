import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

let backends: EchoBackend[];
beforeAll(async () => {
  backends = await Promise.all([61, 62].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

describe("close()", () => {
  it("lets the in-flight call finish, then leaves nothing that keeps the process alive", async () => {
    const script = fileURLToPath(new URL("./fixtures/close-client.ts", import.meta.url));
    const tsconfig = fileURLToPath(new URL("../tsconfig.json", import.meta.url));
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    const started = Date.now();
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
      const child = execFile(
        process.execPath,
        ["--import", "tsx", script, target],
        { env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig }, timeout: 30_000 },
        (error, stdout) => resolve({ stdout, code: error ? ((error as { code?: number }).code ?? -1) : 0 }),
      );
      child.stdin?.end();
    });
    expect(code).toBe(0);
    expect(stdout).toContain('{"finished":"slow","endpoints":0}');
    expect(stdout).toContain("exit 0");
    // It exits on its own, not by the 30 s timeout.
    expect(Date.now() - started).toBeLessThan(25_000);
  });
});

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, encodeBinaryHeader } from "@connectrpc/connect";
import * as connectProtocol from "@connectrpc/connect/protocol-connect";
import * as grpcProtocol from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { codeToHttpStatus, codeToString } from "../packages/proxy/src/connect-codes.js";
import { contentTypeRegExp } from "../packages/transport/src/grpc-content-type.js";
import { findTrailerError } from "../packages/transport/src/grpc-trailer-error.js";

// meshlite declares @connectrpc/connect ^2.0.0, so it may use only what
// Connect keeps stable: no export marked "@private Internal code, does not
// follow semantic versioning". The few helpers it needs are its own; this
// checks they say the same as Connect's at the installed version.

const root = fileURLToPath(new URL("..", import.meta.url));
const dist = (pkg: string) => join(root, "node_modules/@connectrpc", pkg, "dist/esm");

function sourceFiles(): string[] {
  const dirs = [join(root, "src"), ...readdirSync(join(root, "packages")).map((p) => join(root, "packages", p, "src"))];
  return dirs.flatMap((dir) =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith(".ts") && !e.parentPath.includes("/gen"))
      .map((e) => join(e.parentPath, e.name)),
  );
}

/**
 * Whether Connect marks the declaration of `name` @private: in `subpath` of
 * @connectrpc/connect, or ("" ) in the main entry of `pkg`.
 */
function isPrivate(subpath: string, name: string, pkg = "connect"): boolean {
  const dir = join(dist(pkg), subpath);
  // The main entry's declarations sit at the top; its subpaths have their own folders.
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: subpath !== "" })) {
    if (!entry.isFile() || !entry.name.endsWith(".d.ts")) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), "utf8");
    const at = text.search(
      new RegExp(`export declare (?:function|const|class) ${name}\\b|export (?:interface|type) ${name}\\b`),
    );
    if (at < 0) continue;
    const doc = text.slice(0, at).split("/**").pop() ?? "";
    return doc.includes("@private");
  }
  return false;
}

describe("Connect's API", () => {
  it("is used only where public: nothing marked @private is imported", () => {
    const used: string[] = [];
    for (const file of sourceFiles()) {
      const text = readFileSync(file, "utf8");
      const imports =
        /import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+"@connectrpc\/(connect|connect-node)(?:\/([a-z-]+))?"/g;
      for (const m of text.matchAll(imports)) {
        for (const raw of (m[1] as string).split(",")) {
          const name = raw
            .replace(/^\s*type\s+/, "")
            .split(/\s+as\s+/)[0]
            ?.trim();
          if (name && isPrivate(m[3] ?? "", name, m[2])) used.push(`${file.slice(root.length)}: ${name}`);
        }
      }
    }
    expect(used).toEqual([]);
  });

  it("finds this check's target: Connect does mark its helpers @private", () => {
    expect(isPrivate("protocol-grpc", "findTrailerError")).toBe(true);
    expect(isPrivate("protocol", "Compression")).toBe(false);
    expect(isPrivate("", "ConnectError")).toBe(false);
  });

  it("codes: meshlite's names and HTTP statuses are Connect's", () => {
    for (const code of Object.values(Code).filter((c): c is Code => typeof c === "number")) {
      expect([code, codeToString(code)]).toEqual([code, connectProtocol.codeToString(code)]);
      expect([code, codeToHttpStatus(code)]).toEqual([code, connectProtocol.codeToHttpStatus(code)]);
    }
  });

  it("gRPC content types: meshlite accepts what Connect accepts", () => {
    for (const ct of [
      "application/grpc",
      "application/grpc+proto",
      "application/grpc+json",
      "application/grpc+json; charset=utf-8",
      "APPLICATION/GRPC",
      "application/grpc+thrift",
      "application/grpc-web",
      "application/json",
    ]) {
      expect([ct, contentTypeRegExp.test(ct)]).toEqual([ct, grpcProtocol.contentTypeRegExp.test(ct)]);
    }
  });

  it("trailers: meshlite reads a status, its message and details as Connect does", () => {
    const withDetails = new ConnectError("with details", Code.FailedPrecondition);
    withDetails.details = [{ type: "google.rpc.RetryInfo", value: new Uint8Array([10, 2, 8, 3]) }];
    const details = grpcProtocol.setTrailerStatus(new Headers(), withDetails).get("grpc-status-details-bin") as string;
    const samples: Array<Record<string, string>> = [
      { "grpc-status": "0" },
      { "grpc-status": "14", "grpc-message": "down%20for%20now%25" },
      { "grpc-status": "99" },
      { "grpc-status": "5" },
      { "grpc-status": "9", "grpc-status-details-bin": details, "x-extra": "kept" },
      { "grpc-status": "0", "grpc-status-details-bin": encodeBinaryHeader(new Uint8Array(0)) },
      {},
    ];
    const view = (e: ConnectError | undefined) =>
      e && {
        code: e.code,
        message: e.rawMessage,
        details: e.details,
        wire: e.isWireError,
        metadata: Object.fromEntries((e.metadata as unknown as Iterable<[string, string]>) ?? []),
      };
    for (const sample of samples) {
      expect(view(findTrailerError(new Headers(sample)))).toEqual(
        view(grpcProtocol.findTrailerError(new Headers(sample))),
      );
    }
  });
});

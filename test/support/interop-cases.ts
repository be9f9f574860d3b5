import { Code, ConnectError, createClient, decodeBinaryHeader, type Transport } from "@connectrpc/connect";
import { createWritableIterable } from "@connectrpc/connect/protocol";
import { expect, it } from "vitest";
import type { StreamingOutputCallRequest } from "../../gen/grpc/testing/messages_pb.js";
import { TestService, UnimplementedService } from "../../gen/grpc/testing/test_pb.js";
import { echoInitial, echoTrailingBin } from "./interop-servers.js";

// The client side of grpc's interop test cases (doc/interop-test-descriptions.md),
// each asserting what its description says.

export function zeros(size: number): Uint8Array {
  return new Uint8Array(size);
}

/** Asserts a payload body of `size` zero bytes. */
export function expectZeros(body: Uint8Array | undefined, size: number): void {
  expect(body?.byteLength).toBe(size);
  expect(body?.every((b) => b === 0)).toBe(true);
}

async function expectCode(promise: Promise<unknown>, code: Code, rawMessage?: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected the call to fail with ${Code[code]}`).toBeInstanceOf(ConnectError);
  expect(Code[(error as ConnectError).code]).toBe(Code[code]);
  if (rawMessage !== undefined) expect((error as ConnectError).rawMessage).toBe(rawMessage);
}

async function drain(messages: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of messages);
}

/** A duplex call's request, asking for one response of `respSize` per request. */
function duplexRequest(respSize: number, reqSize: number) {
  return { responseParameters: [{ size: respSize }], payload: { body: zeros(reqSize) } };
}

const customMetadata = () =>
  new Headers({ [echoInitial]: "test_initial_metadata_value", [echoTrailingBin]: "q6ur" /* 0xababab */ });

function expectEchoedMetadata(header: Headers | undefined, trailer: Headers | undefined): void {
  expect(header?.get(echoInitial), "initial metadata").toBe("test_initial_metadata_value");
  const bin = trailer?.get(echoTrailingBin);
  expect(bin, `trailing metadata has no ${echoTrailingBin}`).toBeTypeOf("string");
  expect([...decodeBinaryHeader(bin as string)]).toEqual([0xab, 0xab, 0xab]);
}

const specialMessage = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

/**
 * Registers the interop cases that need no compression on the transport the
 * getter returns (created by the suite's beforeAll).
 */
export function interopCases(transport: () => Transport): void {
  const client = () => createClient(TestService, transport());

  it("empty_unary", async () => {
    const response = await client().emptyCall({});
    expect(response.$typeName).toBe("grpc.testing.Empty");
  });

  it("large_unary", async () => {
    const response = await client().unaryCall({ responseSize: 314159, payload: { body: zeros(271828) } });
    expectZeros(response.payload?.body, 314159);
  });

  it("client_streaming", async () => {
    async function* requests() {
      for (const size of [27182, 8, 1828, 45904]) yield { payload: { body: zeros(size) } };
    }
    const response = await client().streamingInputCall(requests());
    expect(response.aggregatedPayloadSize).toBe(74922);
  });

  it("server_streaming", async () => {
    const sizes = [31415, 9, 2653, 58979];
    const got: number[] = [];
    for await (const response of client().streamingOutputCall({
      responseParameters: sizes.map((size) => ({ size })),
    })) {
      expectZeros(response.payload?.body, response.payload?.body.byteLength ?? -1);
      got.push(response.payload?.body.byteLength ?? -1);
    }
    expect(got).toEqual(sizes);
  });

  it("ping_pong", async () => {
    const requests = createWritableIterable<StreamingOutputCallRequest | ReturnType<typeof duplexRequest>>();
    const responses = client().fullDuplexCall(requests)[Symbol.asyncIterator]();
    for (const [respSize, reqSize] of [
      [31415, 27182],
      [9, 8],
      [2653, 1828],
      [58979, 45904],
    ] as const) {
      await requests.write(duplexRequest(respSize, reqSize));
      const r = await responses.next();
      expect(r.done).toBe(false);
      if (!r.done) expectZeros(r.value.payload?.body, respSize);
    }
    requests.close();
    expect((await responses.next()).done).toBe(true);
  });

  it("empty_stream", async () => {
    const got: unknown[] = [];
    for await (const r of client().fullDuplexCall((async function* () {})())) got.push(r);
    expect(got).toEqual([]);
  });

  it("cancel_after_begin", async () => {
    const abort = new AbortController();
    const requests = createWritableIterable<{ payload: { body: Uint8Array } }>();
    const call = client().streamingInputCall(requests, { signal: abort.signal });
    abort.abort();
    await expectCode(call, Code.Canceled);
  });

  it("cancel_after_first_response", async () => {
    const abort = new AbortController();
    const requests = createWritableIterable<ReturnType<typeof duplexRequest>>();
    const responses = client().fullDuplexCall(requests, { signal: abort.signal })[Symbol.asyncIterator]();
    await requests.write(duplexRequest(31415, 27182));
    const first = await responses.next();
    expect(first.done).toBe(false);
    abort.abort();
    await expectCode(responses.next(), Code.Canceled);
  });

  it("timeout_on_sleeping_server", async () => {
    // The server is asleep: the request stream stays open until the deadline.
    const requests = createWritableIterable<{ payload: { body: Uint8Array } }>();
    const call = drain(client().fullDuplexCall(requests, { timeoutMs: 1 }));
    void requests.write({ payload: { body: zeros(27182) } }).catch(() => {});
    await expectCode(call, Code.DeadlineExceeded);
    requests.close();
  });

  it("custom_metadata (unary)", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const response = await client().unaryCall(
      { responseSize: 314159, payload: { body: zeros(271828) } },
      { headers: customMetadata(), onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
    );
    expectZeros(response.payload?.body, 314159);
    expectEchoedMetadata(header, trailer);
  });

  it("custom_metadata (full duplex)", async () => {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    async function* requests() {
      yield duplexRequest(314159, 271828);
    }
    const sizes: number[] = [];
    for await (const r of client().fullDuplexCall(requests(), {
      headers: customMetadata(),
      onHeader: (h) => (header = h),
      onTrailer: (t) => (trailer = t),
    })) {
      sizes.push(r.payload?.body.byteLength ?? -1);
    }
    expect(sizes).toEqual([314159]);
    expectEchoedMetadata(header, trailer);
  });

  it("status_code_and_message", async () => {
    const responseStatus = { code: 2, message: "test status message" };
    await expectCode(client().unaryCall({ responseStatus }), Code.Unknown, "test status message");
    async function* requests() {
      yield { responseStatus };
    }
    await expectCode(drain(client().fullDuplexCall(requests())), Code.Unknown, "test status message");
  });

  it("special_status_message", async () => {
    await expectCode(
      client().unaryCall({ responseStatus: { code: 2, message: specialMessage } }),
      Code.Unknown,
      specialMessage,
    );
  });

  it("unimplemented_method", async () => {
    await expectCode(client().unimplementedCall({}), Code.Unimplemented);
  });

  it("unimplemented_service", async () => {
    await expectCode(createClient(UnimplementedService, transport()).unimplementedCall({}), Code.Unimplemented);
  });
}

import {
  type BinaryReadOptions,
  type BinaryWriteOptions,
  type DescMessage,
  type DescMethodStreaming,
  type DescMethodUnary,
  fromBinary,
  fromJsonString,
  type JsonReadOptions,
  type JsonWriteOptions,
  type MessageShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

// meshlite's own message serialization for the lean transport, with the
// behaviour of Connect's (which exports its helpers only privately, outside
// semantic versioning): the same codes and the same size limits.

/** Turns messages into bytes and back. */
export interface Serialization<T> {
  /** Throws INTERNAL when the message cannot be written, RESOURCE_EXHAUSTED over writeMaxBytes. */
  serialize(data: T): Uint8Array<ArrayBuffer>;
  /** Throws INVALID_ARGUMENT (JSON) or INTERNAL (binary) when malformed, RESOURCE_EXHAUSTED over readMaxBytes. */
  parse(data: Uint8Array): T;
}

/** Message size limits, all in bytes. */
export interface MessageLimits {
  readMaxBytes: number;
  writeMaxBytes: number;
  compressMinBytes: number;
}

/** The largest message either way: about 4 GiB (zlib's output cap, and protobuf-es's). */
const maxMessageBytes = 0xffffffff;

/** Checks readMaxBytes and writeMaxBytes (1 to 4 GiB) and fills in defaults: no limit, compression from 1 KiB. */
export function validateReadWriteMaxBytes(
  readMaxBytes: number | undefined,
  writeMaxBytes: number | undefined,
  compressMinBytes: number | undefined,
): MessageLimits {
  const limits = {
    readMaxBytes: readMaxBytes ?? maxMessageBytes,
    writeMaxBytes: writeMaxBytes ?? maxMessageBytes,
    compressMinBytes: compressMinBytes ?? 1024,
  };
  for (const name of ["writeMaxBytes", "readMaxBytes"] as const) {
    const value = limits[name];
    if (!(value >= 1 && value <= maxMessageBytes)) {
      throw new ConnectError(`${name} ${value} must be >= 1 and <= ${maxMessageBytes}`, Code.Internal);
    }
  }
  return limits;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function limited<T>(inner: Serialization<T>, limits: Pick<MessageLimits, "readMaxBytes" | "writeMaxBytes">) {
  return {
    serialize(data: T) {
      const bytes = inner.serialize(data);
      if (bytes.byteLength > limits.writeMaxBytes) {
        throw new ConnectError(
          `message size ${bytes.byteLength} is larger than configured writeMaxBytes ${limits.writeMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      return bytes;
    },
    parse(data: Uint8Array) {
      if (data.byteLength > limits.readMaxBytes) {
        throw new ConnectError(
          `message size ${data.byteLength} is larger than configured readMaxBytes ${limits.readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      return inner.parse(data);
    },
  } satisfies Serialization<T>;
}

function binary<Desc extends DescMessage>(
  desc: Desc,
  options: Partial<BinaryReadOptions & BinaryWriteOptions> | undefined,
): Serialization<MessageShape<Desc>> {
  return {
    parse(data) {
      try {
        return fromBinary(desc, data, options);
      } catch (e) {
        throw new ConnectError(`parse binary: ${errorMessage(e)}`, Code.Internal);
      }
    },
    serialize(data) {
      try {
        return toBinary(desc, data, options) as Uint8Array<ArrayBuffer>;
      } catch (e) {
        throw new ConnectError(`serialize binary: ${errorMessage(e)}`, Code.Internal);
      }
    },
  };
}

function json<Desc extends DescMessage>(
  desc: Desc,
  options: Partial<JsonReadOptions & JsonWriteOptions> | undefined,
): Serialization<MessageShape<Desc>> {
  // Unknown JSON fields are ignored unless asked otherwise, as in Connect.
  const o = { ignoreUnknownFields: true, ...options };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  return {
    parse(data) {
      try {
        return fromJsonString(desc, decoder.decode(data), o);
      } catch (e) {
        throw ConnectError.from(e, Code.InvalidArgument);
      }
    },
    serialize(data) {
      try {
        return encoder.encode(toJsonString(desc, data, o)) as Uint8Array<ArrayBuffer>;
      } catch (e) {
        throw ConnectError.from(e, Code.Internal);
      }
    },
  };
}

/** Serialization of a method's input (I) and output (O) messages, binary or JSON, within the size limits. */
export function createMethodSerializationLookup<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O> | DescMethodStreaming<I, O>,
  binaryOptions: Partial<BinaryReadOptions & BinaryWriteOptions> | undefined,
  jsonOptions: Partial<JsonReadOptions & JsonWriteOptions> | undefined,
  limits: Pick<MessageLimits, "readMaxBytes" | "writeMaxBytes">,
) {
  const input = {
    binary: limited(binary(method.input, binaryOptions), limits),
    json: limited(json(method.input, jsonOptions), limits),
  };
  const output = {
    binary: limited(binary(method.output, binaryOptions), limits),
    json: limited(json(method.output, jsonOptions), limits),
  };
  return {
    getI: (useBinaryFormat: boolean): Serialization<MessageShape<I>> => (useBinaryFormat ? input.binary : input.json),
    getO: (useBinaryFormat: boolean): Serialization<MessageShape<O>> => (useBinaryFormat ? output.binary : output.json),
  };
}

import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, decodeBinaryHeader } from "@connectrpc/connect";

/** google.rpc.Status as it travels in grpc-status-details-bin. */
interface WireStatus {
  code: number;
  message: string;
  details: Array<{ type: string; value: Uint8Array }>;
}

/** Reads a google.rpc.Status: code (1), message (2), details (3, google.protobuf.Any). */
function readStatus(bytes: Uint8Array): WireStatus {
  const status: WireStatus = { code: 0, message: "", details: [] };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.Varint) status.code = reader.int32();
    else if (field === 2 && wireType === WireType.LengthDelimited) status.message = reader.string();
    else if (field === 3 && wireType === WireType.LengthDelimited) status.details.push(readAny(reader.bytes()));
    else reader.skip(wireType);
  }
  return status;
}

/** Reads a google.protobuf.Any: type_url (1), value (2); the type is the URL's last segment. */
function readAny(bytes: Uint8Array): { type: string; value: Uint8Array } {
  let typeUrl = "";
  let value: Uint8Array = new Uint8Array(0);
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === 1 && wireType === WireType.LengthDelimited) typeUrl = reader.string();
    else if (field === 2 && wireType === WireType.LengthDelimited) value = reader.bytes();
    else reader.skip(wireType);
  }
  return { type: typeUrl.slice(typeUrl.lastIndexOf("/") + 1), value };
}

function percentDecoded(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}

/**
 * The error in a gRPC status (trailers, or the headers of a trailers-only
 * response), the same as Connect's gRPC transport reports it, from Connect's
 * public API only: grpc-status-details-bin (a google.rpc.Status with its
 * details) wins over grpc-status and the percent-encoded grpc-message; the
 * fields become the error's metadata. Undefined for OK or no status.
 */
export function findTrailerError(fields: Headers): ConnectError | undefined {
  const details = fields.get("grpc-status-details-bin");
  let error: ConnectError | undefined;
  if (details !== null) {
    let status: WireStatus;
    try {
      status = readStatus(decodeBinaryHeader(details));
    } catch (e) {
      return new ConnectError(`invalid grpc-status-details-bin: ${String(e)}`, Code.Internal, fields);
    }
    if (status.code === 0) return undefined;
    error = new ConnectError(status.message, status.code, fields);
    error.details = status.details;
  } else {
    const code = fields.get("grpc-status");
    if (code === null || code === "0") return undefined;
    const n = Number.parseInt(code, 10);
    error =
      n in Code
        ? new ConnectError(percentDecoded(fields.get("grpc-message") ?? ""), n, fields)
        : new ConnectError(`invalid grpc-status: ${code}`, Code.Internal, fields);
  }
  error.isWireError = true;
  return error;
}

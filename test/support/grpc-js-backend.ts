import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import {
  type EchoRequest,
  EchoRequestSchema,
  type EchoResponse,
  EchoResponseSchema,
  EchoService,
} from "../../gen/meshlite/echo/v1/echo_pb.js";

/** A @grpc/grpc-js server implementing EchoService (unary methods) and the standard health service. */
export interface GrpcJsBackend {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** Calls served. */
  calls(): number;
  /** The health service: setStatus("", "SERVING" | "NOT_SERVING"). */
  readonly health: HealthImplementation;
  close(): Promise<void>;
}

/** The grpc-js definition of a unary EchoService method at `path` (e.g. `/meshlite.echo.v1.EchoService/Echo`). */
export function echoMethod(path: string): grpc.MethodDefinition<EchoRequest, EchoResponse> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: EchoRequest) => Buffer.from(toBinary(EchoRequestSchema, m)),
    requestDeserialize: (b: Buffer) => fromBinary(EchoRequestSchema, b),
    responseSerialize: (m: EchoResponse) => Buffer.from(toBinary(EchoResponseSchema, m)),
    responseDeserialize: (b: Buffer) => fromBinary(EchoResponseSchema, b),
  };
}

export async function startGrpcJsBackend(
  host: string,
  options: grpc.ServerOptions = {},
  { withHealth = true }: { withHealth?: boolean } = {},
): Promise<GrpcJsBackend> {
  const server = new grpc.Server(options);
  let calls = 0;
  let address = "";
  const handler: grpc.handleUnaryCall<EchoRequest, EchoResponse> = (call, callback) => {
    calls++;
    const reply = () =>
      callback(null, {
        $typeName: EchoResponseSchema.typeName,
        message: call.request.message,
        server: address,
        index: 0,
        payload: new Uint8Array(),
      });
    if (call.request.delayMs > 0) setTimeout(reply, call.request.delayMs);
    else reply();
  };
  const service = EchoService.method;
  server.addService(
    {
      Echo: echoMethod(`/${EchoService.typeName}/${service.echo.name}`),
      EchoIdempotent: echoMethod(`/${EchoService.typeName}/${service.echoIdempotent.name}`),
    } as grpc.ServiceDefinition,
    { Echo: handler, EchoIdempotent: handler },
  );
  const health = new HealthImplementation({ "": "SERVING" });
  if (withHealth) health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  address = `${host}:${port}`;
  return {
    host,
    port,
    address,
    calls: () => calls,
    health,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}

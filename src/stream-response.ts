import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { StreamResponse } from "@connectrpc/connect";

/**
 * The same response with other messages (a wrapper that records or counts
 * them). Header and trailer are read from the original only when asked: a
 * transport may fill them in late (the trailer exists only once the messages
 * are read), and copying them here, as a spread would, freezes what they were.
 */
export function withMessages<I extends DescMessage, O extends DescMessage>(
  response: StreamResponse<I, O>,
  message: AsyncIterable<MessageShape<O>>,
): StreamResponse<I, O> {
  return {
    stream: true,
    service: response.service,
    method: response.method,
    message,
    get header() {
      return response.header;
    },
    get trailer() {
      return response.trailer;
    },
  };
}

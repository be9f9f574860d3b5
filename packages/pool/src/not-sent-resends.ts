/**
 * How many times a call that provably never reached a server (connection
 * refused, REFUSED_STREAM, GOAWAY before the stream) is sent again on another
 * endpoint, whatever the method, in the channel and the proxy alike. More
 * than once: when servers rotate connections at the same moment (max
 * connection age), a resend can land in another GOAWAY window. Each resend is
 * cheap and bounded by the call's deadline.
 */
export const maxNotSentResends = 4;

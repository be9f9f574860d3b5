/** TLS for the connections of a channel. */
export interface TlsOptions {
  /** CA certificates to trust (PEM). Default: Node's bundled roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate chain (PEM), for mTLS. */
  cert?: string | Buffer;
  /** Client private key (PEM), for mTLS. */
  key?: string | Buffer;
  /**
   * The name to send as SNI and to verify the server certificate against.
   * Default: the host name of the target.
   */
  serverName?: string;
  /** Verify the server certificate. Default true; turn off only in tests. */
  rejectUnauthorized?: boolean;
}

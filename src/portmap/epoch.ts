/**
 * Noticing that a gateway lost its mappings (rebooted, changed external address): every NAT-PMP
 * and PCP response carries the gateway's epoch, seconds since its mapping state began. Between
 * two responses it must advance about as much as the client's own clock did; if it advanced far
 * less, or went backwards, the gateway forgot our mappings and they must be made again.
 *
 * The rule is PCP's (RFC 6887 §8.5), which is NAT-PMP's (RFC 6886 §3.6: less than 7/8 of the
 * elapsed time, minus 2 s of slack) applied in both directions with 1/16 tolerance, 2 s slack.
 * @see RFC 6887 §8.5, RFC 6886 §3.6
 */

export class EpochTracker {
  #previous: { clientMs: number; serverSeconds: number } | undefined;

  /**
   * Record a response's epoch, received at `clientMs` (the client's clock); false when it shows
   * the gateway lost its state since the previous response. The first observation is always valid.
   */
  observe(serverSeconds: number, clientMs: number): boolean {
    const previous = this.#previous;
    this.#previous = { clientMs, serverSeconds };
    if (previous === undefined) return true;
    if (serverSeconds < previous.serverSeconds) return false;
    const clientDelta = (clientMs - previous.clientMs) / 1000;
    const serverDelta = serverSeconds - previous.serverSeconds;
    // RFC 6887 §8.5: invalid if client_delta+2 < server_delta - server_delta/16
    //                          or server_delta+2 < client_delta - client_delta/16
    return !(clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16);
  }
}

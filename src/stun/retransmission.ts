/**
 * The STUN-over-UDP retransmission schedule.
 *
 * A client sends the request at 0, RTO, 3·RTO, 7·RTO, … doubling the interval each time,
 * Rc times in all, then waits Rm·RTO after the last send before giving up.
 * With the defaults (RTO 500 ms, Rc 7, Rm 16) requests go out at 0, 500, 1500, 3500, 7500,
 * 15500 and 31500 ms and the transaction fails at 39500 ms.
 * @see RFC 8489 §6.2.1
 */
export interface RetransmissionOptions {
  /** Initial retransmission timeout in ms. RFC 8489 §6.2.1 recommends 500 ms (SHOULD be > 500 ms on the open internet). */
  rto?: number;
  /** Total number of transmissions (the first one included). RFC 8489 default: 7. */
  rc?: number;
  /** Multiple of RTO to wait after the last transmission. RFC 8489 default: 16. */
  rm?: number;
}

export const DEFAULT_RTO = 500;
export const DEFAULT_RC = 7;
export const DEFAULT_RM = 16;

export interface Schedule {
  /** Offsets in ms from the first transmission at which the request is (re)sent; sends[0] === 0. */
  sends: number[];
  /** Offset in ms at which the transaction times out. */
  deadline: number;
}

export function retransmissionSchedule(options: RetransmissionOptions = {}): Schedule {
  const rto = options.rto ?? DEFAULT_RTO;
  const rc = options.rc ?? DEFAULT_RC;
  const rm = options.rm ?? DEFAULT_RM;
  if (!(rto > 0) || !Number.isInteger(rc) || rc < 1 || !(rm > 0)) {
    throw new RangeError(`retransmission: rto ${rto}, rc ${rc}, rm ${rm}; expected rto > 0, integer rc >= 1, rm > 0`);
  }
  const sends: number[] = [];
  let at = 0;
  let interval = rto;
  for (let i = 0; i < rc; i++) {
    sends.push(at);
    at += interval;
    interval *= 2;
  }
  return { sends, deadline: sends[sends.length - 1]! + rm * rto };
}

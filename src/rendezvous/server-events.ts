/**
 * What the rendezvous server reports as it happens, on node:diagnostics_channel (STYLE rule 8):
 * src/metrics counts these; anyone else may subscribe too. Every message names the server it
 * came from, so several servers in one process (tests, `--address` given twice) are told apart.
 * Publishing costs nothing while nobody subscribes (`hasSubscribers`).
 */
import { channel } from 'node:diagnostics_channel';
import type { NatClass } from './nat-class.js';

/** How a `connect` ended, exactly once per connect the server took up. */
export type ConnectOutcome =
  /** The target accepted: both got `punch`. */
  | 'accepted'
  /** Refused: by the target (`reason` "peer") or by the server (`reason` its error code). */
  | 'refused'
  /** The target did not answer before the intent expired. */
  | 'timed-out'
  /** Initiator or target disconnected while it was pending (`reason` says which). */
  | 'abandoned';

export interface ConnectEvent {
  server: object;
  outcome: ConnectOutcome;
  /** For `refused`: "peer" or the server's error code; for `abandoned`: which side left; else "none". */
  reason: string;
  initiator: NatClass | 'unknown';
  target: NatClass | 'unknown';
  /** For `accepted`: the transport the intent asked for ("udp" when it named none). */
  transport?: string;
  /** For `accepted`: the technique the signed offers point at (see techniqueHint). */
  technique?: string;
}

/** A peer's own `report` of how a punched session ended for it (unverifiable, about itself). */
export interface ReportEvent {
  server: object;
  /** Which side of the session sent it. */
  role: 'initiator' | 'target';
  outcome: 'connected' | 'failed';
  /** For 'connected': 'direct-udp', 'direct-tcp' or 'relay'; else "none". */
  path: string;
  /** For 'connected': a name from REPORTED_TECHNIQUES or "other"; else "none". */
  technique: string;
  /** The peer's time from its connect call (initiator) or the punch (target) to the outcome. */
  ms: number;
  initiator: NatClass | 'unknown';
  target: NatClass | 'unknown';
}

export interface RegisteredEvent {
  server: object;
  nat: NatClass;
}

/** Every `error` the server answers with (its `code`), and HTTP 503 at the upgrade (`code` "max-connections"). */
export interface ErrorEvent {
  server: object;
  code: string;
}

export const connectChannel = channel('natpunch:rendezvous:connect');
export const registeredChannel = channel('natpunch:rendezvous:registered');
export const errorChannel = channel('natpunch:rendezvous:error');
export const reportChannel = channel('natpunch:rendezvous:report');

export function publishConnect(event: ConnectEvent): void {
  if (connectChannel.hasSubscribers) connectChannel.publish(event);
}

export function publishRegistered(event: RegisteredEvent): void {
  if (registeredChannel.hasSubscribers) registeredChannel.publish(event);
}

export function publishError(event: ErrorEvent): void {
  if (errorChannel.hasSubscribers) errorChannel.publish(event);
}

export function publishReport(event: ReportEvent): void {
  if (reportChannel.hasSubscribers) reportChannel.publish(event);
}

/**
 * The page two lab browsers load to meet over WebRTC, and typed calls into it from the test.
 *
 * The page holds one RTCPeerConnection and one ordered, reliable RTCDataChannel. The test
 * process is the signalling channel: it hands the offer to the answerer and the answer back,
 * either once ICE gathering is complete (each description then carries every candidate), or at
 * once, trickling each candidate to the other page as the browser finds it (RFC 8838).
 * Complete gathering is what makes a test see every candidate: once a path works Chromium stops
 * gathering, so with trickle a fast direct connection can leave the TURN allocation unmade.
 * Trickle is for networks where gathering cannot complete soon: over UDP that is dropped a
 * browser retries STUN for ~40 s, while TURN over TCP works at once. The page's program is plain JavaScript in a string because it runs in the browser, not
 * in Node (the project compiles without the DOM library); every wait in it is bounded and fails
 * saying what it waited for.
 */
import type { Page } from 'playwright-core';

/** What a page reports about one ICE candidate (a subset of RTCIceCandidateStats). */
export interface CandidateStats {
  candidateType: 'host' | 'srflx' | 'prflx' | 'relay';
  protocol: string;
  /** Empty for host candidates Chromium hides behind an mDNS name. */
  address: string;
  port: number;
  relatedAddress?: string;
  relatedPort?: number;
  /** The STUN or TURN URL a srflx or relay candidate came from. */
  url?: string;
  /** A relay candidate's transport to the TURN server: 'udp', 'tcp' or 'tls'. */
  relayProtocol?: string;
}

export interface PeerStats {
  /** Every local candidate gathered (getStats 'local-candidate'). */
  local: CandidateStats[];
  /** The pair ICE selected, from the transport's selectedCandidatePairId. */
  selected: { local: CandidateStats; remote: CandidateStats; bytesSent: number; bytesReceived: number } | null;
  /**
   * Every 'icecandidateerror' (a STUN or TURN server that answered with an error or not at all,
   * e.g. 701 for a timeout) and every failure to pass a candidate to the other page.
   */
  errors: { url?: string; code?: number; text?: string; signal?: string }[];
}

export interface Received {
  bytes: number;
  sha256: string;
}

const PAGE_SCRIPT = String.raw`
'use strict';
const CHUNK = 16 * 1024;
// Keep at most this much queued in the channel; refill when it drains below the low mark.
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

function bounded(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('page: ' + what() + ' within ' + ms + ' ms')), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const state = { pc: null, channel: null, chunks: [], bytes: 0, errors: [], pending: [], trickled: 0, onData: () => {}, onOpen: () => {} };

function describe() {
  const pc = state.pc;
  return 'ice gathering ' + pc.iceGatheringState + ', ' + state.trickled + ' candidate(s) trickled, ice ' + pc.iceConnectionState + ', connection ' + pc.connectionState +
    ', channel ' + (state.channel ? state.channel.readyState : 'none') + ', candidate errors: ' + JSON.stringify(state.errors);
}

// Candidates from the other page can arrive before its description: addIceCandidate needs a
// remote description first, so they wait here until there is one.
async function remoteDescription(description) {
  await state.pc.setRemoteDescription(description);
  for (const candidate of state.pending.splice(0)) await state.pc.addIceCandidate(candidate);
}

function gathered(ms) {
  const pc = state.pc;
  const done = new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
  });
  return bounded(done, ms, () => 'ICE gathering did not complete (' + describe() + ')');
}

function adopt(channel) {
  channel.binaryType = 'arraybuffer';
  channel.bufferedAmountLowThreshold = LOW_WATER;
  channel.addEventListener('message', (event) => {
    state.chunks.push(new Uint8Array(event.data));
    state.bytes += event.data.byteLength;
    state.onData();
  });
  channel.addEventListener('open', openedNow);
  state.channel = channel;
  // An announced channel may already be open when 'datachannel' fires.
  openedNow();
}

function openedNow() {
  if (state.channel && state.channel.readyState === 'open') state.onOpen();
}

window.peer = {
  start(config, offerer) {
    const pc = new RTCPeerConnection(config);
    state.pc = pc;
    // A STUN or TURN server that fails (401, a timeout) is reported here; the test prints it.
    pc.addEventListener('icecandidateerror', (e) => state.errors.push({ url: e.url, code: e.errorCode, text: e.errorText }));
    // Trickle: window.natpunchSignal is the test process (page.exposeFunction), which adds the
    // candidate in the other page.
    pc.addEventListener('icecandidate', (e) => {
      if (e.candidate === null || typeof window.natpunchSignal !== 'function') return;
      state.trickled += 1;
      window.natpunchSignal(JSON.stringify(e.candidate.toJSON())).catch((error) => state.errors.push({ signal: String(error) }));
    });
    if (offerer) adopt(pc.createDataChannel('bytes', { ordered: true }));
    else pc.addEventListener('datachannel', (event) => adopt(event.channel));
  },

  // gatherMs > 0: the description once gathering is complete, with every candidate in it.
  async offer(gatherMs) {
    await state.pc.setLocalDescription(await state.pc.createOffer());
    if (gatherMs > 0) await gathered(gatherMs);
    return state.pc.localDescription.sdp;
  },

  async answer(sdp, gatherMs) {
    await remoteDescription({ type: 'offer', sdp });
    await state.pc.setLocalDescription(await state.pc.createAnswer());
    if (gatherMs > 0) await gathered(gatherMs);
    return state.pc.localDescription.sdp;
  },

  async accept(sdp) {
    await remoteDescription({ type: 'answer', sdp });
  },

  async addCandidate(json) {
    const candidate = JSON.parse(json);
    if (state.pc.remoteDescription === null) state.pending.push(candidate);
    else await state.pc.addIceCandidate(candidate);
  },

  opened(ms) {
    // The answerer's channel arrives with the 'datachannel' event, so this may run before it exists.
    const open = new Promise((resolve) => {
      state.onOpen = resolve;
      openedNow();
    });
    return bounded(open, ms, () => 'the data channel did not open (' + describe() + ')');
  },

  async send(base64, ms) {
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const channel = state.channel;
    const sending = (async () => {
      for (let offset = 0; offset < bytes.length; offset += CHUNK) {
        if (channel.bufferedAmount > HIGH_WATER) {
          await new Promise((resolve) => channel.addEventListener('bufferedamountlow', resolve, { once: true }));
        }
        channel.send(bytes.subarray(offset, offset + CHUNK));
      }
    })();
    await bounded(sending, ms, () => 'sending ' + bytes.length + ' bytes did not finish (buffered ' + channel.bufferedAmount + ', ' + describe() + ')');
  },

  async received(total, ms) {
    const all = new Promise((resolve) => {
      state.onData = () => { if (state.bytes >= total) resolve(); };
      state.onData();
    });
    await bounded(all, ms, () => 'received ' + state.bytes + ' of ' + total + ' bytes (' + describe() + ')');
    const joined = new Uint8Array(state.bytes);
    let offset = 0;
    for (const chunk of state.chunks) { joined.set(chunk, offset); offset += chunk.length; }
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', joined));
    return { bytes: state.bytes, sha256: Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('') };
  },

  async stats() {
    const report = await state.pc.getStats();
    const candidate = (s) => ({
      candidateType: s.candidateType, protocol: s.protocol, address: s.address ?? '', port: s.port,
      relatedAddress: s.relatedAddress, relatedPort: s.relatedPort, url: s.url, relayProtocol: s.relayProtocol,
    });
    const local = [];
    let selected = null;
    report.forEach((s) => {
      if (s.type === 'local-candidate') local.push(candidate(s));
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        selected = {
          local: candidate(report.get(pair.localCandidateId)),
          remote: candidate(report.get(pair.remoteCandidateId)),
          bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived,
        };
      }
    });
    return { local, selected, errors: state.errors };
  },

  close() {
    state.pc.close();
  },
};
`;

/** The page's document: nothing but the script above. */
export const PAGE_HTML = `<!doctype html><meta charset="utf-8"><title>natpunch webrtc</title><script>${PAGE_SCRIPT}</script>`;

/** RTCConfiguration as the page passes it to RTCPeerConnection (JSON-serialisable). */
export interface PeerConfig {
  iceServers: { urls: string; username?: string; credential?: string }[];
  iceTransportPolicy?: 'all' | 'relay';
}

interface PagePeer {
  start(config: PeerConfig, offerer: boolean): void;
  offer(gatherMs: number): Promise<string>;
  answer(sdp: string, gatherMs: number): Promise<string>;
  accept(sdp: string): Promise<void>;
  addCandidate(json: string): Promise<void>;
  opened(ms: number): Promise<void>;
  send(base64: string, ms: number): Promise<void>;
  received(total: number, ms: number): Promise<Received>;
  stats(): Promise<PeerStats>;
  close(): void;
}

/** Deadlines inside the page: safety nets far above what each step takes when it works (ms to a few s). */
const GATHER_MS = 30_000;
const OPEN_MS = 30_000;
const TRANSFER_MS = 60_000;

/** Typed calls into one page's peer. */
export class PagePeerHandle {
  readonly page: Page;

  constructor(page: Page) {
    this.page = page;
  }

  start(config: PeerConfig, offerer: boolean): Promise<void> {
    // Each function runs in the browser, where globalThis is the window the page's script set `peer` on.
    return this.page.evaluate(([c, o]) => (globalThis as unknown as { peer: PagePeer }).peer.start(c, o), [config, offerer] as const);
  }

  /** Trickle this page's candidates to `other` from now on (call before start). */
  async trickleTo(other: PagePeerHandle): Promise<void> {
    await this.page.exposeFunction('natpunchSignal', (json: string) => other.addCandidate(json));
  }

  /** The offer; with `gather`, once ICE gathering is complete. */
  offer(gather: boolean): Promise<string> {
    return this.page.evaluate((ms) => (globalThis as unknown as { peer: PagePeer }).peer.offer(ms), gather ? GATHER_MS : 0);
  }

  /** The answer to `sdp`; with `gather`, once ICE gathering is complete. */
  answer(sdp: string, gather: boolean): Promise<string> {
    return this.page.evaluate(([s, ms]) => (globalThis as unknown as { peer: PagePeer }).peer.answer(s, ms), [sdp, gather ? GATHER_MS : 0] as const);
  }

  addCandidate(json: string): Promise<void> {
    return this.page.evaluate((c) => (globalThis as unknown as { peer: PagePeer }).peer.addCandidate(c), json);
  }

  accept(sdp: string): Promise<void> {
    return this.page.evaluate((s) => (globalThis as unknown as { peer: PagePeer }).peer.accept(s), sdp);
  }

  opened(): Promise<void> {
    return this.page.evaluate((ms) => (globalThis as unknown as { peer: PagePeer }).peer.opened(ms), OPEN_MS);
  }

  send(bytes: Buffer): Promise<void> {
    return this.page.evaluate(([b64, ms]) => (globalThis as unknown as { peer: PagePeer }).peer.send(b64, ms), [bytes.toString('base64'), TRANSFER_MS] as const);
  }

  received(total: number): Promise<Received> {
    return this.page.evaluate(([n, ms]) => (globalThis as unknown as { peer: PagePeer }).peer.received(n, ms), [total, TRANSFER_MS] as const);
  }

  stats(): Promise<PeerStats> {
    return this.page.evaluate(() => (globalThis as unknown as { peer: PagePeer }).peer.stats());
  }
}

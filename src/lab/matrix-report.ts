/**
 * How `natpunch lab matrix` shows its results: one line per pair, a compact grid (one letter
 * per pair: what carried the connection), a summary, and the same as a self-contained HTML page.
 */
import type { NatKind } from './nat-kind.js';
import type { PairResult } from './matrix.js';

/** One letter per path kind in the grid. */
const LETTER: Record<string, string> = { 'direct-udp': 'U', 'direct-tcp': 'T', relay: 'R' };
const FAILED = 'x';

function letter(result: PairResult | undefined): string {
  if (!result) return ' ';
  return result.ok ? LETTER[result.path ?? ''] ?? '?' : FAILED;
}

function find(results: readonly PairResult[], a: NatKind, b: NatKind): PairResult | undefined {
  return results.find((r) => (r.a === a && r.b === b) || (r.a === b && r.b === a));
}

/** One line per pair: the kinds, then path, technique and connect time, or the failure. */
export function pairLine(result: PairResult): string {
  const pair = `${result.a} × ${result.b}`.padEnd(38);
  if (!result.ok && result.path === undefined) return `${pair} FAILED      ${result.error ?? ''}`;
  const upgrade = result.startPath ? `  (started on the ${result.startPath}; direct after ${result.directMs} ms)` : '';
  const what = `${(result.path ?? '').padEnd(11)} ${(result.technique ?? '').padEnd(22)} ${String(result.ms ?? '').padStart(6)} ms${upgrade}`;
  return result.ok ? `${pair} ${what}` : `${pair} ${what}  FAILED after connecting: ${result.error ?? ''}`;
}

/** The grid (rows and columns in `kinds` order, upper triangle) and the summary below it. */
export function formatGrid(kinds: readonly NatKind[], results: readonly PairResult[]): string {
  const width = Math.max(...kinds.map((k) => k.length));
  const header = `${''.padEnd(width)}  ${kinds.map((_, j) => String(j + 1).padStart(2)).join(' ')}`;
  const rows = kinds.map((a, i) => `${a.padEnd(width)}  ${kinds.map((b, j) => (j < i ? '' : letter(find(results, a, b))).padStart(2)).join(' ')}   ${i + 1}`);
  const count = (test: (r: PairResult) => boolean): number => results.filter(test).length;
  const direct = count((r) => r.ok && r.path !== 'relay');
  const upgraded = count((r) => r.ok && r.path !== 'relay' && r.startPath !== undefined);
  const relayed = count((r) => r.ok && r.path === 'relay');
  const failed = count((r) => !r.ok);
  return [
    header, ...rows, '',
    `U direct-udp, T direct-tcp, R relay, ${FAILED} failed (the path each connection ended on). Columns are numbered as the rows.`,
    `${results.length} pairs: ${direct} direct${upgraded ? ` (${upgraded} of them after starting on the relay)` : ''}, ${relayed} through the relay, ${failed} failed.`,
  ].join('\n');
}

const escape = (text: string): string => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const COLOUR: Record<string, string> = { 'direct-udp': '#c8ecc1', 'direct-tcp': '#c9def5', relay: '#f7e0b5' };

/** A self-contained HTML page: the grid with path, technique and time in each cell. */
export function formatHtml(kinds: readonly NatKind[], results: readonly PairResult[], meta: { transport: string; date: string }): string {
  const cell = (a: NatKind, b: NatKind): string => {
    const r = find(results, a, b);
    if (!r) return '<td></td>';
    const colour = r.ok ? COLOUR[r.path ?? ''] ?? '#eee' : '#f4c2c2';
    const upgrade = r.startPath ? `; started on the ${r.startPath}, direct after ${r.directMs} ms` : '';
    const body = r.ok ? `${escape(r.path ?? '')}<br><small>${escape(r.technique ?? '')}<br>${r.ms ?? ''} ms${r.startPath ? `<br>direct at ${r.directMs} ms` : ''}</small>` : `failed<br><small>${escape(r.error ?? '')}</small>`;
    return `<td style="background:${colour}" title="${escape(`${r.a} × ${r.b}: ${r.ok ? `${r.path} by ${r.technique} in ${r.ms} ms${upgrade}` : r.error ?? 'failed'}`)}">${body}</td>`;
  };
  const rows = kinds.map((a) => `<tr><th>${escape(a)}</th>${kinds.map((b) => cell(a, b)).join('')}</tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>natpunch NAT matrix</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 6px;text-align:center;vertical-align:middle}small{color:#444}</style>
</head><body>
<h1>natpunch NAT matrix</h1>
<p>Each cell: <code>natpunch connect --transport ${escape(meta.transport)}</code> behind the row's NAT to <code>natpunch listen</code> behind the column's, in the kernel NAT lab, ${escape(meta.date)}.
Green: direct UDP; blue: direct TCP; orange: relay; red: failed (the path each connection ended on; one that started on the relay says when it went direct).</p>
<table><tr><th></th>${kinds.map((k) => `<th>${escape(k)}</th>`).join('')}</tr>
${rows}
</table></body></html>
`;
}

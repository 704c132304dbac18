/**
 * The dashboard (`GET /`): one static HTML file with its CSS and JavaScript inline, shipped with
 * the package (package.json `files`), no framework and no external URL. It polls
 * `/dashboard.json` once a second. Read once, at the first request.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** From dist/src/server/http/ back to the source tree, where the file stays (tsc does not copy it). */
const FILE = new URL('../../../../src/server/http/dashboard.html', import.meta.url);

export interface DashboardPage {
  html: string;
  /**
   * Content-Security-Policy allowing exactly the page's own inline script and style (by their
   * SHA-256) and requests to this origin: nothing else may run or load.
   */
  csp: string;
}

let page: DashboardPage | undefined;

export function dashboardPage(): DashboardPage {
  if (page) return page;
  let html: string;
  try {
    html = readFileSync(FILE, 'utf8');
  } catch (error) {
    throw new Error(`dashboard: cannot read ${FILE.pathname} (${(error as Error).message}); it ships with the package in src/server/http/`);
  }
  const hash = (tag: string): string => {
    const body = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(html)?.[1] ?? '';
    return `'sha256-${createHash('sha256').update(body).digest('base64')}'`;
  };
  page = {
    html,
    csp: `default-src 'none'; script-src ${hash('script')}; style-src ${hash('style')}; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
  };
  return page;
}

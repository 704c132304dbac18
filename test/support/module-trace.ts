/**
 * Preload (`node --import`) that records every module the process loads: its URL, one a line,
 * appended to the file named by NATPUNCH_MODULE_TRACE. The hooks run on the loader's own thread
 * and write synchronously, so nothing is lost when the process exits.
 */
import { register } from 'node:module';

register('./module-trace-hooks.js', import.meta.url);

/**
 * Preload (`node --import`) for the CLI's start-up Ctrl-C test: the moment the process installs
 * its first SIGINT handler, it sends itself SIGINT, as a user pressing Ctrl-C right after starting
 * the command would. The signal is handled on a later turn of the event loop, while the commands
 * are still loading (that takes many turns: the loader reads each file asynchronously).
 */
const on = process.on.bind(process);
let sent = false;
process.on = ((event: string | symbol, listener: (...args: unknown[]) => void) => {
  on(event, listener);
  if (event === 'SIGINT' && !sent) {
    sent = true;
    process.kill(process.pid, 'SIGINT');
  }
  return process;
}) as typeof process.on;

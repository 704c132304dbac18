/**
 * Ctrl-C and SIGTERM for commands that must tell the peer before they go (send, receive): the
 * first one aborts the returned signal, so the transfer sends its ERROR ('aborted') and ends
 * cleanly; a second one exits at once, for when that takes too long.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(1);
    controller.abort(name);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

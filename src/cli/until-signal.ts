/** Resolves on SIGINT or SIGTERM (or when `stop` is called): how a long-running command ends. */
export function untilSignal(): { stopped: Promise<NodeJS.Signals | 'stop'>; stop(): void } {
  let stop!: (why: NodeJS.Signals | 'stop') => void;
  const stopped = new Promise<NodeJS.Signals | 'stop'>((resolve) => { stop = resolve; });
  const onSignal = (signal: NodeJS.Signals): void => stop(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  void stopped.then(() => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); });
  return { stopped, stop: () => stop('stop') };
}

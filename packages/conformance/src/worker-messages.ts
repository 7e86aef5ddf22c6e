import type { ChildProcess } from 'node:child_process';

/** What a test worker sends over IPC: any typed message, and `error` when it failed. */
export type WorkerMessageBase = { type: string } | { type: 'error'; message: string };

/**
 * The next IPC message of `type` from a forked test worker; rejects when the worker reports an
 * `error` or exits first. For multi-process tests (several OS processes on one store).
 * @example
 * const ready = await nextMessage<WorkerMessage, 'ready'>(child, 'ready');
 */
export function nextMessage<M extends WorkerMessageBase, T extends M['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<M, { type: T }>> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: M): void => {
      if (message.type === 'error') {
        cleanup();
        reject(new Error(`worker failed: ${(message as { message?: string }).message}`));
      } else if (message.type === type) {
        cleanup();
        resolve(message as Extract<M, { type: T }>);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`worker exited (${code}) before sending "${type}"`));
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

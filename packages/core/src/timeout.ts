/**
 * `promise`, or a rejection with `onTimeout()` when it has not settled after `ms`
 * milliseconds. The timer does not keep the process alive and is cleared as soon as
 * `promise` settles; a result that arrives after the timeout is dropped.
 *
 * The timeout is decided one turn of the event loop after the timer fires, behind the I/O
 * that is waiting: when the process itself stalled (a long synchronous task, a GC pause),
 * the timer and the reply are both due when it wakes, and timers run before I/O callbacks.
 * Deciding at once would count a reply that arrived in time as a timeout.
 *
 * @example
 * ```ts
 * const pin = await withTimeout(store.get(key), 50, () => new StoreError('get', { message: 'timed out' }));
 * ```
 */
export function withTimeout<T>(
  promise: PromiseLike<T>,
  ms: number,
  onTimeout: () => Error,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let decide: ReturnType<typeof setImmediate> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      decide = setImmediate(() => reject(onTimeout()));
    }, ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
    if (decide !== undefined) clearImmediate(decide);
  });
}

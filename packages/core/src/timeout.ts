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
  // One promise and one reaction, rather than a race of two promises and a `finally`: every
  // pin read goes through this, and with async context tracking on each promise costs.
  return new Promise<T>((resolve, reject) => {
    let decide: ReturnType<typeof setImmediate> | undefined;
    const timer = setTimeout(() => {
      decide = setImmediate(() => reject(onTimeout()));
    }, ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (decide !== undefined) clearImmediate(decide);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (decide !== undefined) clearImmediate(decide);
        reject(error);
      },
    );
  });
}

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
  return settleWithin(promise, ms, onTimeout, same, rethrow);
}

const same = <T>(value: T): T => value;
const rethrow = (error: unknown): never => {
  throw error;
};

/**
 * {@link withTimeout} with what the caller makes of the outcome run in the same reaction:
 * `onValue(value)` when `promise` fulfils in time, `onError(error, false)` when it rejects,
 * `onError(onTimeout(), true)` when it has not settled after `ms` milliseconds (decided one turn
 * of the event loop late, as there). The returned promise takes what they return or throw; a
 * late outcome calls neither. One promise for the call, its bound and the caller's work, where
 * a `.then()` on `withTimeout` makes a second: a pin store's every read goes through this.
 *
 * @example
 * ```ts
 * const pin = await settleWithin(redis.get(key), 50, () => new Error('timed out'),
 *   (value) => (value === null ? undefined : decode(value)),
 *   (error) => { breaker.failure(); throw error; });
 * ```
 */
export function settleWithin<T, R>(
  promise: PromiseLike<T>,
  ms: number,
  onTimeout: () => Error,
  onValue: (value: T) => R,
  onError: (error: unknown, timedOut: boolean) => R,
): Promise<R> {
  // One promise and one reaction, rather than a race of two promises and a `finally`: with
  // async context tracking on each promise costs.
  return new Promise<R>((resolve, reject) => {
    let settled = false;
    let decide: ReturnType<typeof setImmediate> | undefined;
    const timer = setTimeout(() => {
      decide = setImmediate(() => {
        settled = true;
        try {
          resolve(onError(onTimeout(), true));
        } catch (error) {
          reject(error);
        }
      });
    }, ms);
    timer.unref?.();
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (decide !== undefined) clearImmediate(decide);
        if (settled) return;
        settled = true;
        try {
          resolve(onValue(value));
        } catch (error) {
          reject(error);
        }
      },
      (error: unknown) => {
        clearTimeout(timer);
        if (decide !== undefined) clearImmediate(decide);
        if (settled) return;
        settled = true;
        try {
          resolve(onError(error, false));
        } catch (thrown) {
          reject(thrown);
        }
      },
    );
  });
}

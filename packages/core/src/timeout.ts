/**
 * `promise`, or a rejection with `onTimeout()` when it has not settled after `ms`
 * milliseconds. The timer does not keep the process alive and is cleared as soon as
 * `promise` settles; a result that arrives after the timeout is dropped.
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
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

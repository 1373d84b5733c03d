type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

function unwrap<T>(settled: Settled<T>): T {
  if (settled.ok) return settled.value;
  throw settled.error;
}

/**
 * Counter deltas between the `start` and `end` marks of keyed runs. Each mark samples the
 * counters the moment it arrives, while the load is still running, but the deltas are read
 * only after the whole plan: a sample that fails in between (Redis slow to answer INFO on a
 * busy machine) is held and thrown by {@link CounterSpans.delta}, never left behind as an
 * unhandled rejection.
 */
export class CounterSpans<C extends { [K in keyof C]: number }> {
  readonly #sample: (key: string) => Promise<C>;
  readonly #starts = new Map<string, Promise<Settled<C>>>();
  readonly #deltas = new Map<string, Promise<Settled<C>>>();

  /** `sample(key)` reads the counters that run `key` moves. */
  constructor(sample: (key: string) => Promise<C>) {
    this.#sample = sample;
  }

  #take(key: string): Promise<Settled<C>> {
    let sampled: Promise<C>;
    try {
      sampled = this.#sample(key);
    } catch (error) {
      sampled = Promise.reject(error);
    }
    return settle(sampled);
  }

  /** Marks the start of run `key`. */
  start(key: string): void {
    this.#starts.set(key, this.#take(key));
  }

  /** Marks the end of run `key`; false when its start was never marked. */
  end(key: string): boolean {
    const start = this.#starts.get(key);
    if (!start) return false;
    const end = this.#take(key);
    this.#deltas.set(
      key,
      settle(
        Promise.all([start, end]).then(([a, b]) => {
          const before = unwrap(a);
          const after = unwrap(b);
          const delta = {} as C;
          for (const name of Object.keys(after) as (keyof C)[]) {
            delta[name] = (after[name] - before[name]) as C[keyof C];
          }
          return delta;
        }),
      ),
    );
    return true;
  }

  /** The counters' growth over run `key` (undefined: not marked); throws a failed sample's error. */
  async delta(key: string): Promise<C | undefined> {
    const settled = this.#deltas.get(key);
    return settled === undefined ? undefined : unwrap(await settled);
  }
}

import { checkKeys, didYouMean } from './did-you-mean.js';
import { type Duration, parseDuration } from './duration.js';
import { ConfigError } from './errors.js';

/** The named freshness contracts (see the contract table in the README). */
export type ContractName = 'strong' | 'read-your-writes' | 'monotonic' | 'causal' | 'eventual';

/** A contract's level: a {@link ContractName}, or `bounded` for `{ maxLag }`. */
export type ContractLevel = ContractName | 'bounded';

/**
 * What to do when no replica satisfies the contract, as written by users: `primary` (pass
 * the primary budget), `stale` (best replica whose lag is measured, flagged stale), `error`
 * (503 + Retry-After), `{ wait, then }` (wait up to `wait` for a replica to catch up, then
 * `then`). An array is a chain tried in order.
 */
export type FallbackInput =
  | 'primary'
  | 'stale'
  | 'error'
  | { wait: Duration; then?: FallbackInput | readonly FallbackInput[] };

/** One normalised step of a fallback chain. */
export type Fallback =
  | { readonly kind: 'primary' }
  | { readonly kind: 'stale' }
  | { readonly kind: 'error' }
  | { readonly kind: 'wait'; readonly timeoutMs: number };

/** Options shared by the object forms of {@link ContractInput}. */
export interface ContractOptions {
  /** Fallback or chain of fallbacks. Default: `'primary'`. */
  fallback?: FallbackInput | readonly FallbackInput[];
  /** Only replicas whose tags include all of these serve the read, e.g. `{ pool: 'reporting' }`. */
  tags?: Readonly<Record<string, string>>;
  /**
   * How long a read may wait for a replica predicted to replay its required LSN soon, before
   * its chain's `primary` step (overrides the engine's `waitAllowance`; `0` never waits).
   */
  waitAllowance?: Duration;
}

/**
 * A contract as declared on a route or query: a name, `{ maxLag }` (bounded staleness,
 * read-your-writes still holds), or `{ contract, fallback?, tags? }`.
 */
export type ContractInput =
  | ContractName
  | (ContractOptions & { maxLag: Duration })
  | (ContractOptions & { contract: ContractName });

/** A validated, frozen contract. Build it once with {@link defineContract}. */
export interface Contract {
  /** Discriminates a normalised contract from a {@link ContractInput}. */
  readonly normalized: true;
  readonly level: ContractLevel;
  /** Bounded staleness limit in ms; `null` unless `level === 'bounded'`. */
  readonly maxLagMs: number | null;
  /** The fallback chain, never empty. */
  readonly fallbacks: readonly Fallback[];
  /** Required replica tags, or `null`. */
  readonly tags: Readonly<Record<string, string>> | null;
  /** `waitAllowance` in ms, or `null` for the engine's. */
  readonly waitAllowanceMs: number | null;
  /** Short human form, e.g. `monotonic`, `maxLag=5000ms`, used in route listings. */
  readonly label: string;
}

/** The fallback chain used when a contract declares none: the primary (budgeted). */
export const DEFAULT_FALLBACK: FallbackInput = 'primary';

/** Every contract name, in order of increasing strictness (bounded sits after eventual). */
export const CONTRACT_NAMES: readonly ContractName[] = [
  'eventual',
  'read-your-writes',
  'monotonic',
  'causal',
  'strong',
];

const OBJECT_KEYS = ['contract', 'maxLag', 'fallback', 'tags', 'waitAllowance'] as const;
const FALLBACK_NAMES = ['primary', 'stale', 'error'] as const;
const PRIMARY: Fallback = Object.freeze({ kind: 'primary' });
const STALE: Fallback = Object.freeze({ kind: 'stale' });
const ERROR: Fallback = Object.freeze({ kind: 'error' });

function fail(path: string, message: string): never {
  throw new ConfigError(path, message);
}

function normalizeFallbacks(input: unknown, path: string, out: Fallback[]): void {
  if (Array.isArray(input)) {
    if (input.length === 0) fail(path, 'a fallback chain needs at least one step');
    for (const [i, step] of input.entries()) normalizeFallbacks(step, `${path}[${i}]`, out);
    return;
  }
  if (typeof input === 'string') {
    if (input === 'primary') out.push(PRIMARY);
    else if (input === 'stale') out.push(STALE);
    else if (input === 'error') out.push(ERROR);
    else {
      fail(
        path,
        `unknown fallback "${input}".${didYouMean(input, FALLBACK_NAMES)} Use 'primary', 'stale', 'error' or { wait: '200ms', then: 'primary' }.`,
      );
    }
    return;
  }
  if (input !== null && typeof input === 'object') {
    checkKeys(input, ['wait', 'then'], (_key, hint) => fail(path, hint));
    const { wait, then } = input as { wait?: Duration; then?: unknown };
    if (wait === undefined) fail(path, 'a wait fallback needs `wait`, e.g. { wait: 200 }');
    const timeoutMs = parseDuration(wait, `${path}.wait`);
    if (timeoutMs <= 0) fail(`${path}.wait`, 'must be greater than 0');
    out.push(Object.freeze({ kind: 'wait', timeoutMs }));
    if (then !== undefined) normalizeFallbacks(then, `${path}.then`, out);
    return;
  }
  fail(path, `expected 'primary', 'stale', 'error', { wait } or an array, got ${String(input)}`);
}

function normalizeTags(input: unknown, path: string): Readonly<Record<string, string>> | null {
  if (input === undefined) return null;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    fail(path, 'expected an object of string values, e.g. { pool: "reporting" }');
  }
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(input)) {
    if (typeof value !== 'string') fail(`${path}.${key}`, 'tag values must be strings');
    tags[key] = value;
  }
  return Object.keys(tags).length === 0 ? null : Object.freeze(tags);
}

function unknownName(name: string, path: string): never {
  return fail(
    path,
    `unknown contract "${name}".${didYouMean(name, CONTRACT_NAMES)} Use one of ${CONTRACT_NAMES.map((n) => `'${n}'`).join(', ')} or { maxLag: '5s' }.`,
  );
}

function isContractName(value: unknown): value is ContractName {
  return typeof value === 'string' && (CONTRACT_NAMES as readonly string[]).includes(value);
}

/**
 * Validates a contract once (at start-up) and returns a frozen, normalised
 * {@link Contract}. An unknown name, key or bad duration throws a {@link ConfigError} naming
 * `path` with a "did you mean" suggestion.
 *
 * @param path - where the contract was declared, used in error messages.
 * @example
 * ```ts
 * const feed = defineContract('monotonic');
 * const dashboard = defineContract({ maxLag: '5s', fallback: ['stale'] });
 * const report = defineContract({ contract: 'eventual', tags: { pool: 'reporting' } });
 * defineContract('monotonc'); // ConfigError: ... Did you mean "monotonic"?
 * ```
 */
export function defineContract(input: ContractInput | Contract, path = 'contract'): Contract {
  if (input !== null && typeof input === 'object' && (input as Contract).normalized === true) {
    return input as Contract;
  }
  let level: ContractLevel;
  let maxLagMs: number | null = null;
  let options: ContractOptions = {};
  if (typeof input === 'string') {
    if (!isContractName(input)) unknownName(input, path);
    level = input;
  } else if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    checkKeys(input, OBJECT_KEYS, (_key, hint) => fail(path, hint));
    const object = input as unknown as Record<string, unknown>;
    options = object as ContractOptions;
    if (object.maxLag !== undefined) {
      if (object.contract !== undefined) {
        fail(path, 'use either { maxLag } (bounded staleness) or { contract }, not both');
      }
      level = 'bounded';
      maxLagMs = parseDuration(object.maxLag as Duration, `${path}.maxLag`);
    } else if (object.contract !== undefined) {
      if (!isContractName(object.contract))
        unknownName(String(object.contract), `${path}.contract`);
      level = object.contract;
    } else {
      fail(path, "expected a contract name, { maxLag: '5s' } or { contract: 'monotonic' }");
    }
  } else {
    return fail(path, `expected a contract name or object, got ${String(input)}`);
  }

  const fallbacks: Fallback[] = [];
  if (options.fallback !== undefined && level === 'strong') {
    fail(`${path}.fallback`, "'strong' always reads the primary, so a fallback would never apply");
  }
  normalizeFallbacks(options.fallback ?? DEFAULT_FALLBACK, `${path}.fallback`, fallbacks);
  // A chain that ends with a wait would fail closed when the wait times out; what users mean
  // by `{ wait: 50 }` is "wait, then read the primary" (budgeted), so that is the default.
  if (fallbacks.at(-1)?.kind === 'wait') fallbacks.push(PRIMARY);
  const tags = normalizeTags(options.tags, `${path}.tags`);
  if (options.waitAllowance !== undefined && level === 'strong') {
    fail(`${path}.waitAllowance`, "'strong' always reads the primary, so it never waits");
  }
  const waitAllowanceMs =
    options.waitAllowance === undefined
      ? null
      : parseDuration(options.waitAllowance, `${path}.waitAllowance`);
  const label = level === 'bounded' ? `maxLag=${maxLagMs}ms` : level;
  return Object.freeze({
    normalized: true as const,
    level,
    maxLagMs,
    fallbacks: Object.freeze(fallbacks),
    tags,
    waitAllowanceMs,
    label,
  });
}

/**
 * Reads the `X-Read-After-Write` request header: only `true` or `1` (trimmed,
 * case-insensitive) count; anything else, including absence, is ignored.
 *
 * @example
 * ```ts
 * parseReadAfterWrite(' TRUE '); // true
 * parseReadAfterWrite('yes'); // false
 * ```
 */
export function parseReadAfterWrite(value: string | readonly string[] | undefined): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'string') return value.some((v) => parseReadAfterWrite(v));
  if (value.length > 8) return false;
  const v = value.trim().toLowerCase();
  return v === 'true' || v === '1';
}

import { ConfigError } from './errors.js';

/**
 * A duration: milliseconds as a number, or a string such as `'200ms'`, `'2s'`, `'1m'`,
 * `'1h'`.
 */
export type Duration = number | `${number}ms` | `${number}s` | `${number}m` | `${number}h`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;

/**
 * Converts a {@link Duration} to milliseconds. Run at configuration time: a bad value
 * throws a {@link ConfigError} naming `option`.
 *
 * @example
 * ```ts
 * parseDuration('2s'); // 2000
 * parseDuration(150); // 150
 * parseDuration('5 minutes', 'maxLag'); // throws ConfigError: Invalid option `maxLag`...
 * ```
 */
export function parseDuration(value: Duration | string, option = 'duration'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) {
      throw new ConfigError(option, `expected a non-negative number of milliseconds, got ${value}`);
    }
    return value;
  }
  if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (match) return Number(match[1]) * (UNITS[match[2] as string] as number);
  }
  throw new ConfigError(
    option,
    `expected a duration such as 200, '200ms', '2s' or '1m', got ${JSON.stringify(value)}`,
  );
}

import { checkKeys } from './did-you-mean.js';
import { ConfigError } from './errors.js';

/**
 * Fails at start-up when `options` is not an object or has a key outside `known`, naming the
 * option with a "did you mean" suggestion. For adapter factories, so that a typo in their
 * options is caught the way the engine's are.
 *
 * @param name - how the options are called in messages, e.g. `freshgate() options`.
 * @example
 * ```ts
 * checkOptions({ sesionKey: fn }, ['engine', 'sessionKey', 'contract'], 'options');
 * // ConfigError: Invalid option `sesionKey`: unknown option "sesionKey". Did you mean "sessionKey"? ...
 * ```
 */
export function checkOptions(
  options: unknown,
  known: readonly string[],
  name = 'options',
  path = '',
): void {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new ConfigError(name, 'expected an options object');
  }
  checkKeys(options, known, (key, hint) => {
    throw new ConfigError(path + key, hint);
  });
}

/** Raised when the harness cannot provide a server; the message says how to install what is missing. */
export class HarnessError extends Error {
  override name = 'HarnessError';
}

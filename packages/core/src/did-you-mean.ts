/** Levenshtein distance, small inputs only (option names). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + cost);
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * The closest candidate to `input`, compared case-insensitively, or `undefined` when none
 * is close enough to be a plausible typo.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const needle = input.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(needle, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(needle.length / 3))
    ? best
    : undefined;
}

/** `' Did you mean "x"?'` or an empty string, to append to an error message. */
export function didYouMean(input: string, candidates: readonly string[]): string {
  const suggestion = closest(input, candidates);
  return suggestion === undefined ? '' : ` Did you mean "${suggestion}"?`;
}

/** Throws via `fail` for the first key of `object` that is not in `known`. */
export function checkKeys(
  object: object,
  known: readonly string[],
  fail: (key: string, hint: string) => never,
): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      fail(
        key,
        `unknown option "${key}".${didYouMean(key, known)} Known options: ${known.join(', ')}.`,
      );
    }
  }
}

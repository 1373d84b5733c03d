import type { Clock } from './clock.js';

/** Who a primary fallback is for (see `BudgetPriority` in budget.ts). */
type Priority = 'normal' | 'low';

/**
 * The token bucket behind both primary budgets: `rate` tokens per second up to `burst`, of
 * which `reserved` only `normal` takes may use. The adaptive budget moves `rate` and `burst`;
 * the fixed one never does. Counts what it admitted and refused, by priority. Internal.
 */
export class TokenBucket {
  rate: number;
  burst: number;
  reserved: number;
  admittedNormal = 0;
  admittedLow = 0;
  shedNormal = 0;
  shedLow = 0;
  /** Set when a take was refused or left the bucket below `lowWater`; cleared by its reader. */
  pressed = false;
  /** Tokens under which a take counts as pressure on the budget. */
  lowWater = 0;
  readonly #clock: Clock;
  #tokens: number;
  #updatedAt: number;

  constructor(rate: number, burst: number, reserved: number, clock: Clock) {
    this.rate = rate;
    this.burst = burst;
    this.reserved = reserved;
    this.#clock = clock;
    this.#tokens = burst;
    this.#updatedAt = clock.now();
  }

  tryTake(priority: Priority): boolean {
    if (this.rate === Number.POSITIVE_INFINITY) {
      if (priority === 'low') this.admittedLow++;
      else this.admittedNormal++;
      return true;
    }
    this.#refill();
    const floor = priority === 'low' ? this.reserved : 0;
    if (this.#tokens - floor < 1) {
      if (priority === 'low') this.shedLow++;
      else this.shedNormal++;
      this.pressed = true;
      return false;
    }
    this.#tokens -= 1;
    if (this.#tokens < this.lowWater) this.pressed = true;
    if (priority === 'low') this.admittedLow++;
    else this.admittedNormal++;
    return true;
  }

  /** Counts a fallback refused for another reason than the bucket's tokens (the in-flight cap). */
  refuse(priority: Priority): void {
    if (priority === 'low') this.shedLow++;
    else this.shedNormal++;
    this.pressed = true;
  }

  available(): number {
    this.#refill();
    return this.#tokens;
  }

  msUntilNext(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) * 1000) / this.rate;
  }

  /** Keeps at most `tokens` (fractional) in the bucket. */
  cap(tokens: number): void {
    this.#refill();
    if (this.#tokens > tokens) this.#tokens = tokens;
  }

  /** Adds `tokens` (fractional), up to the capacity. */
  credit(tokens: number): void {
    this.#refill();
    this.#tokens = Math.min(this.burst, this.#tokens + tokens);
  }

  /** Changes the refill rate and capacity from now on; tokens above the new capacity are dropped. */
  resize(rate: number, burst: number, reserved: number): void {
    this.#refill();
    this.rate = rate;
    this.burst = burst;
    this.reserved = reserved;
    if (this.#tokens > burst) this.#tokens = burst;
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#updatedAt;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.rate) / 1000);
      this.#updatedAt = now;
    } else if (elapsed < 0) {
      // The wall clock went back: refill from now rather than wait for it to catch up.
      this.#updatedAt = now;
    }
  }
}

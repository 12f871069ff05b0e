/** A sliding-window limit per key (user id): at most `limit` events in `windowMs`. */
export class RateLimiter {
  private readonly events = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records an event and returns 0, or returns how many ms to wait without recording it. */
  take(key: string): number {
    const now = this.now();
    const recent = (this.events.get(key) ?? []).filter((t) => now - t < this.windowMs);
    if (recent.length >= this.limit) {
      this.events.set(key, recent);
      return this.windowMs - (now - recent[0]);
    }
    recent.push(now);
    this.events.set(key, recent);
    return 0;
  }
}

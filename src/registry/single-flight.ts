// Coalesces concurrent calls for the same key into one: later callers share the first one's result.
// Owned by an instance: no module-global state.
export class SingleFlight<V> {
  private readonly flights = new Map<string, Promise<V>>();

  /** Whether a call for `key` is under way (a run() now would share it). */
  has(key: string): boolean {
    return this.flights.has(key);
  }

  run(key: string, fn: () => Promise<V>): Promise<V> {
    const existing = this.flights.get(key);
    if (existing) return existing;
    const flight = fn().finally(() => {
      if (this.flights.get(key) === flight) this.flights.delete(key);
    });
    this.flights.set(key, flight);
    return flight;
  }
}

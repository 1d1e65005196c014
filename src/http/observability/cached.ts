// A value computed at most once per ttlMs (a query behind /metrics and /api/stats, which a dashboard
// or Prometheus may ask for often); callers arriving meanwhile share the pending computation. A
// failure is not kept: the next call computes again.
export function cachedFor<T>(ttlMs: number, compute: () => Promise<T>, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const t = now();
    if (last && t - last.at < ttlMs) return last.value;
    const value = compute();
    const entry = { at: t, value };
    last = entry;
    value.catch(() => {
      if (last === entry) last = undefined;
    });
    return value;
  };
}

import type { PickCandidate } from "@meshlite/core";

/**
 * Of two candidates, the one with clearly fewer calls in flight for its
 * effective weight: the one that, with this call added, would still have no
 * more in flight per unit of weight than the other has now. Undefined when
 * neither is. With equal weights that is simply the one with fewer calls in
 * flight; with unequal ones, an idle low-weight endpoint (a new one ramping
 * up in slow start) does not win every pair just for being idle: counts are
 * whole numbers, and "0 in flight" says little about a share of 0.1.
 */
export function fewerInFlight(a: PickCandidate, b: PickCandidate): PickCandidate | undefined {
  const ia = a.load.inFlight;
  const ib = b.load.inFlight;
  const wa = a.weight;
  const wb = b.weight;
  if (wa === wb) return ia === ib ? undefined : ib < ia ? b : a;
  if ((ia + 1) / wa <= ib / wb) return a;
  if ((ib + 1) / wb <= ia / wa) return b;
  return undefined;
}

/**
 * Of two candidates, the one called less often lately for its weight, so
 * that shares follow the weights (a tie goes to `a`).
 */
export function lessCalledFor(a: PickCandidate, b: PickCandidate, now: number): PickCandidate {
  return b.load.callRate(now) / b.weight < a.load.callRate(now) / a.weight ? b : a;
}

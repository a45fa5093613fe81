/** A job's state as of `at`: from a live event, or from a read (its updatedAt). */
export interface TimedState {
  at: string;
  progress: number;
}

/**
 * Whether `candidate` is at least as recent as `known`: by time, and within one millisecond (a
 * claim and the first progress report often share one, and may arrive in either order) by
 * progress, which only grows within an attempt.
 */
export function isAtLeastAsRecent(candidate: TimedState, known: TimedState): boolean {
  return candidate.at !== known.at ? candidate.at > known.at : candidate.progress >= known.progress;
}

/**
 * The part of a job id shown where the whole would not fit: its last eight characters. Job ids are
 * UUIDv7, whose first eight are the creation time's high bits and the same for every job created
 * within about a minute; the last eight are random.
 */
export function shortId(id: string): string {
  return id.slice(-8);
}

/**
 * Where a write landed in the corpus log: for each shard it touched, the stream sequence of its
 * last message. A reader that passes it to the router (readAfter) sees the write: each shard's
 * chosen replica answers only once it has applied that sequence. Shards the write did not touch
 * need no wait, which is why the position is per shard and not one stream sequence.
 */
export type LogPosition = Readonly<Record<number, number>>;

/** The later of two positions, shard by shard (a session's reads after several writes). */
export function laterPosition(a: LogPosition, b: LogPosition): LogPosition {
  const out: Record<number, number> = { ...a };
  for (const [shard, seq] of Object.entries(b)) out[Number(shard)] = Math.max(out[Number(shard)] ?? 0, seq);
  return out;
}

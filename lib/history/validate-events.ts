/** Checks of events and read arguments, shared by both stores: a bad batch is refused whole, naming the field. */
import { invalid } from '../validate';
import type { HistoryEvent, StoredEvent } from './types';

/** Longest user id and item id, and longest action name, in characters. */
export const maxIdLength = 256;
export const maxActionLength = 64;
const maxItemId = (1n << 63n) - 1n;
// No control characters (the Redis store separates fields with a tab; ids are shown in logs) and no
// lone surrogate, which UTF-8 (the snapshot, Redis) cannot carry: the id would come back changed.
const unsafeText = /[\u0000-\u001F\u007F]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function checkUserId(userId: unknown, name: string): string {
  if (typeof userId !== 'string' || userId.length === 0 || userId.length > maxIdLength || unsafeText.test(userId)) {
    throw invalid(`a user id of 1 to ${maxIdLength} characters of printable text`, name, userId);
  }
  return userId;
}

function checkItem(item: unknown, name: string): string {
  if (typeof item === 'bigint') {
    if (item < 0n || item > maxItemId) throw invalid('an item id from 0 to 2^63-1', name, item);
    return item.toString();
  }
  if (typeof item !== 'string' || item.length === 0 || item.length > maxIdLength || unsafeText.test(item)) {
    throw invalid(`an item id (a bigint, or a string of 1 to ${maxIdLength} characters of printable text)`, name, item);
  }
  return item;
}

function checkAction(action: unknown, name: string): string {
  if (action === undefined) return '';
  if (typeof action !== 'string' || action.length > maxActionLength || unsafeText.test(action)) {
    throw invalid(`an action name of at most ${maxActionLength} characters of printable text`, name, action);
  }
  return action;
}

function checkTime(time: unknown, name: string): number {
  if (typeof time !== 'number' || !Number.isFinite(time) || time < 0) throw invalid('a finite time in seconds, >= 0', name, time);
  return time;
}

/** The batch grouped by user (first appearance order), each user's events in batch order; throws on the first bad event. */
export function groupEvents(events: readonly HistoryEvent[]): Map<string, StoredEvent[]> {
  if (!Array.isArray(events)) throw invalid('an array of events', 'events', events);
  const byUser = new Map<string, StoredEvent[]>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e === null || typeof e !== 'object') throw invalid('an event object', `events[${i}]`, e);
    const userId = checkUserId(e.userId, `events[${i}].userId`);
    const stored = { item: checkItem(e.item, `events[${i}].item`), action: checkAction(e.action, `events[${i}].action`), time: checkTime(e.time, `events[${i}].time`) };
    const list = byUser.get(userId);
    if (list) list.push(stored);
    else byUser.set(userId, [stored]);
  }
  return byUser;
}

/** Checks a read's user ids; returns how many events it gives per user: `limit` (at least 1, at most maxEvents) or maxEvents. */
export function checkRead(userIds: readonly string[], limit: unknown, maxEvents: number): number {
  if (!Array.isArray(userIds)) throw invalid('an array of user ids', 'userIds', userIds);
  userIds.forEach((id, i) => checkUserId(id, `userIds[${i}]`));
  if (limit === undefined) return maxEvents;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) throw invalid('an integer >= 1', 'limit', limit);
  return Math.min(limit, maxEvents);
}

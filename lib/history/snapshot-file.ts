/**
 * The in-process store's snapshot: a binary file written atomically (writeFileAtomically: temp
 * file, fsync, rename). Layout, little-endian:
 *
 *   header   "CGUSRHST" | u32 version (1) | u32 maxEvents | u32 users | u32 0 | f64 events
 *   users    u16 id bytes | id (UTF-8) | u32 count | count x (f64 time | u16 bytes | action | u16 bytes | item)
 *            least recently used first, each user's events oldest first
 *   trailer  u32 CRC-32 of everything before it
 *
 * A file whose magic, version, lengths or checksum do not hold is damaged: readSnapshot says why.
 */
import { readFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { writeFileAtomically } from '../atomic-file';
import type { EventRing } from './ring';

const magic = Buffer.from('CGUSRHST', 'latin1');
const version = 1;
const headerBytes = 32;
const chunkBytes = 1 << 20;

/** Takes one user's events, oldest first, as a snapshot is read. */
export type EventSink = (item: string, action: string, time: number) => void;

/** Appends values to a list of 1 MiB buffers, so a large snapshot is never one huge allocation. */
class ChunkWriter {
  readonly chunks: Buffer[] = [];
  private buffer = Buffer.allocUnsafe(chunkBytes);
  private at = 0;

  private room(bytes: number): void {
    if (this.at + bytes <= this.buffer.length) return;
    this.flush();
    this.buffer = Buffer.allocUnsafe(Math.max(chunkBytes, bytes));
  }

  private flush(): void {
    if (this.at === 0) return;
    this.chunks.push(this.buffer.subarray(0, this.at));
    this.at = 0;
  }

  u16(v: number): void {
    this.room(2);
    this.at = this.buffer.writeUInt16LE(v, this.at);
  }

  u32(v: number): void {
    this.room(4);
    this.at = this.buffer.writeUInt32LE(v, this.at);
  }

  f64(v: number): void {
    this.room(8);
    this.at = this.buffer.writeDoubleLE(v, this.at);
  }

  bytes(b: Buffer): void {
    this.room(b.length);
    this.at += b.copy(this.buffer, this.at);
  }

  /** A string as u16 byte length and UTF-8 bytes, encoded in place (ids are at most 256 UTF-16 units: 768 bytes). */
  text(s: string): void {
    this.room(2 + 3 * s.length); // a UTF-16 unit takes at most 3 UTF-8 bytes
    const n = this.buffer.write(s, this.at + 2, 'utf8');
    this.buffer.writeUInt16LE(n, this.at);
    this.at += 2 + n;
  }

  /** The chunks, ended by the CRC-32 of everything written; `patch` may first change bytes already written (a header). */
  finish(patch: (first: Buffer) => void = () => undefined): Buffer[] {
    this.flush();
    if (this.chunks.length > 0) patch(this.chunks[0]!);
    let crc = 0;
    for (const chunk of this.chunks) crc = crc32(chunk, crc);
    const trailer = Buffer.allocUnsafe(4);
    trailer.writeUInt32LE(crc >>> 0, 0);
    this.chunks.push(trailer);
    return this.chunks;
  }
}

/** Events encoded between two yields to the event loop (a few ms of work). */
const eventsPerSlice = 10_000;

/**
 * Encodes the users given (least recently used first) into buffers, a slice at a time so that a
 * large store does not stall the event loop. Each user is encoded in one go, so the file holds,
 * for each user, a state its history had during the snapshot; appends go on meanwhile.
 */
export async function encodeSnapshot(maxEvents: number, users: readonly (readonly [string, EventRing])[]): Promise<Buffer[]> {
  const w = new ChunkWriter();
  w.bytes(magic);
  w.u32(version);
  w.u32(maxEvents);
  w.u32(users.length);
  w.u32(0);
  w.f64(0); // the event count, set once known
  const writeEvent = (item: string, action: string, time: number) => {
    w.f64(time);
    w.text(action);
    w.text(item);
  };
  let events = 0;
  let slice = 0;
  for (const [userId, ring] of users) {
    w.text(userId);
    w.u32(ring.length);
    ring.forEach(writeEvent);
    events += ring.length;
    slice += ring.length + 1;
    if (slice >= eventsPerSlice) {
      slice = 0;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  // The header is all in the first chunk (at least 1 MiB).
  return w.finish((first) => first.writeDoubleLE(events, 24));
}

export async function writeSnapshot(path: string, chunks: readonly Buffer[]): Promise<void> {
  await writeFileAtomically(path, chunks);
}

/** A snapshot file that cannot be used, and why. */
export class DamagedSnapshot extends Error {}

/**
 * Reads the snapshot at `path`, handing each user (least recently used first) to `onUser`, whose
 * sink takes that user's events; false when there is no file. Throws DamagedSnapshot naming what
 * is wrong: before any user is handed over when the checksum fails, after some only for a file
 * whose checksum holds but whose structure does not (a writer's bug).
 */
export async function readSnapshot(path: string, onUser: (userId: string) => EventSink): Promise<boolean> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new DamagedSnapshot(`cannot be read: ${(error as Error).message}`);
  }
  decodeSnapshot(data, onUser);
  return true;
}

function decodeSnapshot(data: Buffer, onUser: (userId: string) => EventSink): void {
  if (data.length < headerBytes + 4) throw new DamagedSnapshot(`is ${data.length} bytes, shorter than a header and checksum`);
  if (!data.subarray(0, 8).equals(magic)) throw new DamagedSnapshot('is not a user-history snapshot (wrong magic)');
  const fileVersion = data.readUInt32LE(8);
  if (fileVersion !== version) throw new DamagedSnapshot(`has format version ${fileVersion}; this cangen reads version ${version}`);
  const body = data.subarray(0, data.length - 4);
  const expected = data.readUInt32LE(data.length - 4);
  const actual = crc32(body) >>> 0;
  if (actual !== expected) throw new DamagedSnapshot(`fails its checksum (stored ${expected}, computed ${actual}): truncated or overwritten`);
  const userCount = data.readUInt32LE(16);
  const eventCount = data.readDoubleLE(24);
  let at = headerBytes;
  let u = 0;
  const need = (bytes: number) => {
    if (at + bytes > body.length) throw new DamagedSnapshot(`ends inside user ${u} at byte ${at}`);
  };
  const text = () => {
    need(2);
    const n = body.readUInt16LE(at);
    need(2 + n);
    const s = body.toString('utf8', at + 2, at + 2 + n);
    at += 2 + n;
    return s;
  };
  let events = 0;
  for (; u < userCount; u++) {
    const sink = onUser(text());
    need(4);
    const count = body.readUInt32LE(at);
    at += 4;
    for (let i = 0; i < count; i++) {
      need(8);
      const time = body.readDoubleLE(at);
      at += 8;
      const action = text();
      sink(text(), action, time);
    }
    events += count;
  }
  if (at !== body.length) throw new DamagedSnapshot(`has ${body.length - at} bytes after its last user`);
  if (events !== eventCount) throw new DamagedSnapshot(`holds ${events} events but its header says ${eventCount}`);
}

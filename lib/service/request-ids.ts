/**
 * Signed request ids. The pipeline's ids are a per-process counter (easy to guess); the service
 * hands out `<id>.<issued ms, base 36>.<HMAC-SHA256 of both, 128 bits, base64url>` and accepts
 * feedback only for ids it signed, within `maxAgeMs`. Replicas that share the secret accept each
 * other's ids.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type VerifiedId = { ok: true; id: string } | { ok: false; reason: 'bad_signature' | 'expired' };

export class RequestIdSigner {
  private readonly secret: Buffer;

  /** `secret` undefined: a random one for this process (ids signed elsewhere then fail). */
  constructor(
    secret: string | undefined,
    readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.secret = secret === undefined ? randomBytes(32) : Buffer.from(secret);
  }

  sign(id: string, issuedAt = this.now()): string {
    const body = `${id}.${issuedAt.toString(36)}`;
    return `${body}.${this.mac(body)}`;
  }

  verify(signed: string): VerifiedId {
    const macAt = signed.lastIndexOf('.');
    const timeAt = signed.lastIndexOf('.', macAt - 1);
    if (timeAt <= 0) return { ok: false, reason: 'bad_signature' };
    const body = signed.slice(0, macAt);
    const given = Buffer.from(signed.slice(macAt + 1));
    const expected = Buffer.from(this.mac(body));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'bad_signature' };
    const issuedAt = parseInt(signed.slice(timeAt + 1, macAt), 36);
    const age = this.now() - issuedAt;
    if (!(age <= this.maxAgeMs)) return { ok: false, reason: 'expired' };
    return { ok: true, id: signed.slice(0, timeAt) };
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest().subarray(0, 16).toString('base64url');
  }
}

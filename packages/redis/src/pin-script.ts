import { hash } from 'node:crypto';
import type { Pin, PinUpdate } from '@freshgate/core';
import { MAX_LSN } from '@freshgate/core/adapter';

/**
 * Name under which the extend script is registered with `defineCommand`. Versioned: a
 * changed script gets a new name, so that two library versions on one client never share a
 * definition.
 */
export const EXTEND_COMMAND = 'freshgatePinExtendV1';

/** Version tag that starts every stored value. */
const VALUE_VERSION = '1';

/**
 * Stored value: `1:<lsn>:<expiresAt>:<ttlMs>:<node>`, where `lsn` is 16 lowercase hex digits
 * (or empty: no LSN) and `node` is last because a route may contain `:`. One string, so that
 * a read is a single GET; the expiry travels inside because GET does not return the TTL.
 *
 * LSNs are 64-bit and Lua numbers are doubles, so the script never turns an LSN into one
 * number: it compares the two 32-bit halves, each exact in a double. (String comparison in
 * Lua goes through strcoll, which depends on the server's locale.)
 *
 * KEYS[1] the pin; ARGV: lsn, node action (`k` keep, `c` clear, `s` set), node, ttl (ms),
 * expiry (ms since the epoch, writer's clock).
 */
export const EXTEND_SCRIPT = `
local function above(a, b)
  local ah, bh = tonumber(string.sub(a, 1, 8), 16), tonumber(string.sub(b, 1, 8), 16)
  if ah ~= bh then return ah > bh end
  return tonumber(string.sub(a, 9, 16), 16) > tonumber(string.sub(b, 9, 16), 16)
end
local lsn, node = '', ''
local current = redis.call('GET', KEYS[1])
if current then
  local l, n = string.match(current, '^${VALUE_VERSION}:(%x*):%d+:%d+:(.*)$')
  if l and (l == '' or string.len(l) == 16) then lsn, node = l, n end
end
local incoming = ARGV[1]
if incoming ~= '' and (lsn == '' or above(incoming, lsn)) then lsn = incoming end
if ARGV[2] == 's' then node = ARGV[3] elseif ARGV[2] == 'c' then node = '' end
redis.call('SET', KEYS[1], '${VALUE_VERSION}:' .. lsn .. ':' .. ARGV[5] .. ':' .. ARGV[4] .. ':' .. node, 'PX', ARGV[4])
return 1
`;

/** Fixed-width hex form of an LSN, the only form the script compares. */
export function encodeLsn(lsn: bigint): string {
  if (lsn < 0n || lsn > MAX_LSN) throw new RangeError(`LSN out of range: ${lsn}`);
  return lsn.toString(16).padStart(16, '0');
}

/** The script's arguments for one update, written at `now` by the writer's clock. */
export function extendArguments(update: PinUpdate, now: number): (string | number)[] {
  const ttlMs = Math.max(1, Math.ceil(update.ttlMs));
  const action = update.node === undefined ? 'k' : update.node === null ? 'c' : 's';
  return [
    update.lsn === null ? '' : encodeLsn(update.lsn),
    action,
    update.node ?? '',
    ttlMs,
    now + ttlMs,
  ];
}

const VALUE = /^1:([0-9a-f]{16})?:(\d+):(\d+):([\s\S]*)$/;

/**
 * Parses a stored value; `null` when it is not one this version wrote. Liveness is Redis's
 * call (the key exists), so the remaining TTL is only an estimate: clamped to [1, ttl] to
 * absorb clock skew between the writer and this process.
 */
export function decodePin(value: string, now: number): Pin | null {
  const match = VALUE.exec(value);
  if (match === null) return null;
  const [, lsn, expiresAt, ttl, node] = match;
  const ttlMs = Number(ttl);
  return {
    lsn: lsn === undefined ? null : BigInt(`0x${lsn}`),
    node: node === '' || node === undefined ? null : node,
    ttlMs: Math.min(ttlMs, Math.max(1, Number(expiresAt) - now)),
  };
}

/**
 * The Redis key of a session: prefix + SHA-256 (base64url, 128 bits) of the key the engine
 * passes. The engine already hashes session keys, but a custom `hashSessionKey` or a direct
 * caller could pass a raw one; hashing here means nothing raw is ever written. base64url has
 * no `{`, so the key's slot is spread over the cluster by its hash.
 */
export function pinKey(prefix: string, key: string): string {
  // One-shot: no Hash object per pin read.
  return prefix + hash('sha256', key, 'base64url').slice(0, 22);
}

/** Name under which the store's meta script (generation and heartbeats) is registered. */
export const META_COMMAND = 'freshgatePinMetaV1';

/**
 * One hash per prefix, `<prefix>meta`, without a TTL (a `volatile-*` eviction policy never
 * takes it): field `gen` is the store's generation, a random value written by the first
 * instance that finds the hash missing; fields `i:<instance>` are heartbeats (ms since the
 * epoch, the instance's clock). A changed or missing `gen` means the store lost every pin
 * written before (restart without persistence, failover to a copy without it, `FLUSHALL`).
 *
 * KEYS[1] the hash; ARGV: candidate generation, instance id (`''`: no heartbeat), heartbeat
 * time, time before which heartbeats are forgotten (instances gone for good). Returns the hash.
 */
export const META_SCRIPT = `
if not redis.call('HGET', KEYS[1], 'gen') then redis.call('HSET', KEYS[1], 'gen', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'i:' .. ARGV[2], ARGV[3]) end
local all = redis.call('HGETALL', KEYS[1])
local forget = tonumber(ARGV[4])
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == 'i:' and (tonumber(all[i + 1]) or 0) < forget then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return all
`;

/** Name under which the read script is registered with `defineCommand` (versioned, as above). */
export const READ_COMMAND = 'freshgatePinReadV1';

/**
 * One pin read on a single Redis server (standalone, Sentinel): the pin's value, then the meta
 * hash's generation, in one command. A GET and an HGET sent side by side cost the client about
 * twice what one command does (two commands, two replies, two promises joined); on Redis
 * Cluster they stay two commands, the keys being in different slots. A missing value is
 * `false` in Lua, which keeps both places of the reply (a `nil` would end the array).
 *
 * KEYS[1] the pin, KEYS[2] the meta hash. Returns `[value or nil, generation or nil]`.
 */
export const READ_SCRIPT = `return { redis.call('GET', KEYS[1]), redis.call('HGET', KEYS[2], 'gen') }`;

/** The meta hash of a prefix. Pin keys are the prefix + 22 characters, so it cannot collide. */
export function metaKey(prefix: string): string {
  return `${prefix}meta`;
}

import { decodeTime, isValid } from 'ulid';
import { describe, expect, it } from 'vitest';
import { idFactory, isoCache } from '../../src/controller/core.js';

describe('instance and audit ids', () => {
  it('are valid ULIDs that sort in the order they were made, thousands within one millisecond', () => {
    let now = 1_700_000_000_000;
    const next = idFactory(() => now);
    const ids: string[] = [];
    // 5000 ids in one millisecond carry past the last two characters several times
    for (let i = 0; i < 5000; i++) ids.push(next());
    now += 1;
    for (let i = 0; i < 10; i++) ids.push(next());
    for (const id of ids) expect(isValid(id)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(decodeTime(ids[0])).toBe(1_700_000_000_000);
    expect(decodeTime(ids[ids.length - 1])).toBe(1_700_000_000_001);
  });

  it('keep increasing when the clock goes back', () => {
    let now = 1_700_000_000_500;
    const next = idFactory(() => now);
    const first = next();
    now -= 400;
    const second = next();
    expect(second > first).toBe(true);
    expect(decodeTime(second)).toBe(1_700_000_000_500);
  });

  it('timestamps are the ISO strings of their millisecond', () => {
    const iso = isoCache();
    expect(iso(0)).toBe('1970-01-01T00:00:00.000Z');
    expect(iso(1_700_000_000_123)).toBe(new Date(1_700_000_000_123).toISOString());
    expect(iso(1_700_000_000_123)).toBe(iso(1_700_000_000_123));
    expect(iso(1_700_000_000_124)).toBe('2023-11-14T22:13:20.124Z');
  });
});

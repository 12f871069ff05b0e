import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ownsNamespace, registersCommands, shardOf } from '../src/bot/shards.js';
import { loadShardingConfig } from '../src/config.js';
import { isAppError } from '../src/errors.js';

const invalid = (env: Record<string, string>, pattern: RegExp) =>
  assert.throws(() => loadShardingConfig(env), (error: unknown) => isAppError(error, 'CONFIG_INVALID') && pattern.test((error as Error).message));

describe('sharding settings', () => {
  test('unset: one process as before; SHARDS=auto|N, TOTAL_SHARDS with SHARD_LIST ranges', () => {
    assert.deepEqual(loadShardingConfig({}), { mode: 'single' });
    assert.deepEqual(loadShardingConfig({ SHARDS: 'auto' }), { mode: 'manager', total: 'auto' });
    assert.deepEqual(loadShardingConfig({ SHARDS: '4' }), { mode: 'manager', total: 4 });
    assert.deepEqual(loadShardingConfig({ TOTAL_SHARDS: '4', SHARD_LIST: '0-1' }), { mode: 'manager', total: 4, list: [0, 1] });
    assert.deepEqual(loadShardingConfig({ SHARDS: '6', SHARD_LIST: '5, 2-3,2' }), { mode: 'manager', total: 6, list: [2, 3, 5] });
    // A process the manager started: discord.js's own SHARDS (its id) is not the operator's setting.
    assert.deepEqual(loadShardingConfig({ SHARDING_MANAGER: 'true', SHARDS: '1', SHARD_COUNT: '2' }), { mode: 'shard' });
  });

  test('contradictions and impossible ids are refused with the variable named', () => {
    invalid({ SHARDS: '0' }, /SHARDS must be a whole number/);
    invalid({ SHARDS: 'many' }, /SHARDS must be a whole number/);
    invalid({ SHARDS: '2', TOTAL_SHARDS: '4' }, /disagree/);
    invalid({ SHARD_LIST: '0-1' }, /SHARD_LIST needs TOTAL_SHARDS/);
    invalid({ SHARDS: 'auto', SHARD_LIST: '0' }, /SHARD_LIST needs TOTAL_SHARDS/);
    invalid({ TOTAL_SHARDS: '2', SHARD_LIST: '2' }, /"2" is not a shard id/);
    invalid({ TOTAL_SHARDS: '4', SHARD_LIST: '3-1' }, /"3-1"/);
    invalid({ TOTAL_SHARDS: '4', SHARD_LIST: ',' }, /names no shard/);
  });

  test('a guild belongs to shard (id >> 22) % total; a process owns only its shards’ namespaces', () => {
    // 175928847299117063 is Discord's documented example: (id >> 22) = 41944705796.
    assert.equal(shardOf('175928847299117063', 2), 41944705796 % 2);
    assert.equal(shardOf('175928847299117063', 7), 41944705796 % 7);
    const guild = '175928847299117063';
    const own = shardOf(guild, 4);
    assert.ok(ownsNamespace({ ids: [own], total: 4 }, guild));
    assert.ok(!ownsNamespace({ ids: [(own + 1) % 4], total: 4 }, guild));
    assert.ok(ownsNamespace(undefined, guild), 'unsharded owns everything');
    assert.ok(ownsNamespace({ ids: [0], total: 2 }, 'local') && !ownsNamespace({ ids: [1], total: 2 }, 'local'));
    assert.ok(registersCommands(undefined) && registersCommands({ ids: [0, 1], total: 4 }) && !registersCommands({ ids: [2, 3], total: 4 }));
  });
});

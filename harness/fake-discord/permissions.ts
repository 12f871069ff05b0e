import { ChannelType, OverwriteType, PermissionFlagsBits } from 'discord-api-types/v10';
import type { FakeChannel, FakeState } from './state.js';

const ALL_PERMISSIONS = Object.values(PermissionFlagsBits).reduce((all, bit) => all | bit, 0n);

/** Guild-level permissions: @everyone plus the member's roles; owners and administrators get everything. */
export function computeBasePermissions(state: FakeState, guildId: string, userId: string): bigint {
  const guild = state.guilds.get(guildId);
  const member = state.member(guildId, userId);
  if (!guild || !member) return 0n;
  if (guild.ownerId === userId) return ALL_PERMISSIONS;
  let permissions = state.roles.get(guildId)?.permissions ?? 0n;
  for (const roleId of member.roleIds) permissions |= state.roles.get(roleId)?.permissions ?? 0n;
  return (permissions & PermissionFlagsBits.Administrator) !== 0n ? ALL_PERMISSIONS : permissions;
}

/**
 * Discord's documented order: base permissions, then the @everyone overwrite, then all role overwrites together
 * (denies before allows), then the member's own overwrite. Administrator bypasses every overwrite.
 */
export function computeChannelPermissions(state: FakeState, channelId: string, userId: string): bigint {
  const channel = state.channels.get(channelId);
  if (!channel) return 0n;
  if (channel.thread) return computeThreadPermissions(state, channel, userId);
  const base = computeBasePermissions(state, channel.guildId, userId);
  if (base === ALL_PERMISSIONS) return base;
  const member = state.member(channel.guildId, userId);
  if (!member) return 0n;
  const overwrites = channel.overwrites;
  let permissions = base;
  const everyone = overwrites.find((overwrite) => overwrite.id === channel.guildId);
  if (everyone) permissions = (permissions & ~BigInt(everyone.deny)) | BigInt(everyone.allow);
  let roleDeny = 0n;
  let roleAllow = 0n;
  for (const overwrite of overwrites) {
    if (overwrite.type !== OverwriteType.Role || !member.roleIds.includes(overwrite.id)) continue;
    roleDeny |= BigInt(overwrite.deny);
    roleAllow |= BigInt(overwrite.allow);
  }
  permissions = (permissions & ~roleDeny) | roleAllow;
  const own = overwrites.find((overwrite) => overwrite.type === OverwriteType.Member && overwrite.id === userId);
  if (own) permissions = (permissions & ~BigInt(own.deny)) | BigInt(own.allow);
  // Without View Channel a member can do nothing else in the channel, whatever the other bits say.
  return (permissions & PermissionFlagsBits.ViewChannel) === 0n ? 0n : permissions;
}

export function hasPermissions(granted: bigint, required: bigint): boolean {
  return (granted & required) === required;
}

/**
 * A thread has no overwrites of its own: permissions are the parent's. A private thread is visible only to its
 * members and to those who may Manage Threads in the parent (owners and administrators have that too).
 */
function computeThreadPermissions(state: FakeState, thread: FakeChannel, userId: string): bigint {
  const inParent = thread.parentId ? computeChannelPermissions(state, thread.parentId, userId) : 0n;
  if (thread.type !== ChannelType.PrivateThread) return inParent;
  const manages = (inParent & PermissionFlagsBits.ManageThreads) !== 0n;
  return manages || thread.thread!.members.has(userId) ? inParent : 0n;
}

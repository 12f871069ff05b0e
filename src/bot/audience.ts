import { OverwriteType, PermissionFlagsBits, Routes, type APIThreadMember, type Guild, type GuildMember, type NonThreadGuildBasedChannel } from 'discord.js';
import { canReadPlace, Memberships, Places, type Place, type SourceRef } from './access.js';
import { checkEnabled } from './privacy-checks.js';

/** The three permissions that decide who reads a place: View Channel, Read Message History, Manage Threads. */
const VIEW = 1;
const HISTORY = 2;
const MANAGE_THREADS = 4;

function bitsOf(permissions: bigint): number {
  return (
    ((permissions & PermissionFlagsBits.ViewChannel) !== 0n ? VIEW : 0) |
    ((permissions & PermissionFlagsBits.ReadMessageHistory) !== 0n ? HISTORY : 0) |
    ((permissions & PermissionFlagsBits.ManageThreads) !== 0n ? MANAGE_THREADS : 0)
  );
}

/**
 * A set of roles, summarised as what decides the two places' permissions: the OR of their base permissions (bits
 * 0-2) and of their overwrites' allows and denies in the answer's channel (3-5, 6-8) and the source's (9-11, 12-14).
 * Discord applies all role overwrites of a member together (denies, then allows), so ORs are exact.
 */
function roleVector(guild: Guild, roleId: string, base: bigint, answer: NonThreadGuildBasedChannel, source: NonThreadGuildBasedChannel): number {
  let vector = bitsOf(base);
  for (const [channel, offset] of [[answer, 3], [source, 9]] as const) {
    const overwrite = channel.permissionOverwrites.cache.get(roleId);
    if (overwrite && overwrite.type === OverwriteType.Role) vector |= (bitsOf(overwrite.allow.bitfield) << offset) | (bitsOf(overwrite.deny.bitfield) << (offset + 3));
  }
  return roleId === guild.id ? 0 : vector;
}

/** Discord's order for a member without an overwrite of their own: base, @everyone overwrite, role overwrites. */
function permissionsOf(guild: Guild, channel: NonThreadGuildBasedChannel, roles: number, offset: number): number {
  let bits = bitsOf(guild.roles.everyone.permissions.bitfield) | (roles & 7);
  const everyone = channel.permissionOverwrites.cache.get(guild.id);
  if (everyone) bits = (bits & ~bitsOf(everyone.deny.bitfield)) | bitsOf(everyone.allow.bitfield);
  bits = (bits & ~((roles >> (offset + 3)) & 7)) | ((roles >> offset) & 7);
  return (bits & VIEW) === 0 ? 0 : bits;
}

/**
 * Someone who is not a member of a private thread sees it only with Manage Threads in the parent. An answer is seen
 * by whoever may view its channel (new messages need no history); a source needs history too.
 */
function readsAsNonMember(place: Place, bits: number, need = VIEW | HISTORY): boolean {
  return (bits & need) === need && (!place.privateThread || (bits & MANAGE_THREADS) !== 0);
}

/**
 * Whether some combination of roles (without an overwrite of its own, and not a member of any private thread)
 * sees the answer's place but cannot read the source's. Every combination that can exist is tried: the OR-closure of the
 * roles' vectors has at most 2^15 entries, and roles with Administrator are left out (they read everything).
 */
function someRoleSetExposed(guild: Guild, answer: Place, source: Place): boolean {
  const vectors = new Set<number>();
  for (const role of guild.roles.cache.values()) {
    if (role.permissions.has(PermissionFlagsBits.Administrator)) continue;
    vectors.add(roleVector(guild, role.id, role.permissions.bitfield, answer.channel, source.channel));
  }
  const sets = new Set<number>([0]);
  for (const vector of vectors) for (const set of [...sets]) sets.add(set | vector);
  for (const set of sets) {
    if (readsAsNonMember(answer, permissionsOf(guild, answer.channel, set, 3), VIEW) && !readsAsNonMember(source, permissionsOf(guild, source.channel, set, 9))) return true;
  }
  return false;
}

function memberOverwriteIds(channel: NonThreadGuildBasedChannel): string[] {
  return [...channel.permissionOverwrites.cache.values()].filter((o) => o.type === OverwriteType.Member).map((o) => o.id);
}

/**
 * Who can read an answer's channel, compared with who can read each source: an answer may show an image only
 * when everyone who can read the answer can also read the image where it was posted. Covers every combination of
 * roles, members with overwrites of their own in either channel, and private threads (an answer in one is read by
 * its members and thread managers; an image from one by the same).
 */
export class AnswerAudience {
  readonly #memberships = new Memberships();
  readonly #known = new Map<string, Promise<boolean>>();
  readonly #members = new Map<string, Promise<GuildMember | null>>();
  #threadMembers: Promise<string[] | null> | undefined;

  constructor(
    private readonly guild: Guild,
    private readonly answer: Place,
    private readonly places: Places = new Places(guild),
  ) {}

  /** True when showing an image from `ref` here would show it to someone who cannot read it in Discord. */
  exposes(ref: SourceRef): Promise<boolean> {
    const key = `${ref.channelId}/${ref.threadId ?? ''}`;
    let known = this.#known.get(key);
    if (!known) {
      known = this.#exposes(ref);
      this.#known.set(key, known);
    }
    return known;
  }

  async #exposes(ref: SourceRef): Promise<boolean> {
    if (!checkEnabled('audience')) return false;
    const source = await this.places.of(ref);
    if (!source) return true;
    // Even an image from the answer's own channel can expose something: someone may view new messages there
    // without being allowed to read its history.
    // Without the members of a private answer thread, its audience is taken as its parent's: more people, never fewer.
    const threadMembers = this.answer.privateThread && checkEnabled('thread-members') ? await this.#listThreadMembers() : [];
    const answer = threadMembers === null ? { channel: this.answer.channel } : this.answer;
    if (someRoleSetExposed(this.guild, answer, source)) return true;
    const overwritten = checkEnabled('member-overwrites') ? [...memberOverwriteIds(answer.channel), ...memberOverwriteIds(source.channel)] : [];
    const explicit = new Set([...overwritten, ...(threadMembers ?? [])]);
    explicit.delete(this.guild.client.user.id);
    for (const id of explicit) {
      const member = await this.#member(id);
      if (!member) continue;
      if ((await canReadPlace(member, answer, this.#memberships, true)) && !(await canReadPlace(member, source, this.#memberships))) return true;
    }
    return false;
  }

  /** Fresh from Discord: without the Guild Members intent the bot is not told of role changes. */
  #member(id: string): Promise<GuildMember | null> {
    let known = this.#members.get(id);
    if (!known) {
      known = this.guild.members.fetch({ user: id, force: true }).catch(() => null);
      this.#members.set(id, known);
    }
    return known;
  }

  /** The answer thread's members (Discord's list route needs the Guild Members intent enabled for the app). */
  #listThreadMembers(): Promise<string[] | null> {
    this.#threadMembers ??= (async () => {
      const thread = this.answer.privateThread!;
      const ids: string[] = [];
      for (;;) {
        const query = new URLSearchParams({ limit: '100', ...(ids.length ? { after: ids[ids.length - 1] } : {}) });
        const page = (await thread.client.rest.get(Routes.threadMembers(thread.id), { query })) as APIThreadMember[];
        ids.push(...page.map((member) => member.user_id!));
        if (page.length < 100) return ids;
      }
    })().catch(() => null);
    return this.#threadMembers;
  }
}

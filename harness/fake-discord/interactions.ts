import {
  ApplicationCommandOptionType,
  ApplicationIntegrationType,
  InteractionContextType,
  InteractionType,
  type InteractionResponseType,
  type APIAttachment,
  type APIChatInputApplicationCommandInteraction,
  type APIInteractionDataResolved,
  type APIInteractionDataResolvedChannel,
  type APIInteractionDataResolvedGuildMember,
  type APIInteractionResponseCallbackData,
  type APIMessageApplicationCommandInteraction,
  type APIRole,
  type APIUser,
} from 'discord-api-types/v10';
import type { LoggedFile } from './http.js';

export type FakeInteraction = APIChatInputApplicationCommandInteraction | APIMessageApplicationCommandInteraction;

export interface InteractionCallback {
  type: InteractionResponseType;
  /** The request body (or decoded `payload_json`): `data` is the message for types 4 and 7, `{ flags }` for 5. */
  body: { type: InteractionResponseType; data?: APIInteractionResponseCallbackData };
  files: LoggedFile[];
  at: number;
}

/** Everything the bot did in answer to one interaction. */
export interface InteractionRecord {
  id: string;
  token: string;
  payload: FakeInteraction;
  createdAt: number;
  /** From then on the token is refused (`interactionTokenLifetimeMs` after `createdAt`). */
  tokenExpiresAt: number;
  callbacks: InteractionCallback[];
  /** The id of the original response message (ephemeral ones are kept too, but never in channel history). */
  originalMessageId: string | null;
  followUpMessageIds: string[];
  /** Milliseconds from INTERACTION_CREATE to the first callback. */
  ackLatencyMs: number | null;
  /** Milliseconds to the first time the original response held a real (not "thinking…") message. */
  replyLatencyMs: number | null;
}

/** Resolved entries the option values point at, which discord.js requires in `data.resolved`. */
export interface ResolvedSources {
  attachment(id: string): APIAttachment | undefined;
  user(id: string): APIUser | undefined;
  member(id: string): APIInteractionDataResolvedGuildMember | undefined;
  role(id: string): APIRole | undefined;
  channel(id: string): APIInteractionDataResolvedChannel | undefined;
}

/**
 * A command option as a test writes it. discord-api-types' option union ties each `type` to its value type, so a
 * helper building options generically could not produce one without a cast; this shape is checked at run time instead.
 */
export interface CommandOptionInput {
  name: string;
  type: ApplicationCommandOptionType;
  value?: string | number | boolean;
  /** For subcommands and subcommand groups. */
  options?: CommandOptionInput[];
}

/** Fills `resolved` from the option values, walking into subcommands. */
export function resolveOptions(
  options: CommandOptionInput[],
  sources: ResolvedSources,
): APIInteractionDataResolved {
  const resolved: Required<Omit<APIInteractionDataResolved, 'messages'>> = {
    attachments: {},
    users: {},
    members: {},
    roles: {},
    channels: {},
  };
  const addUser = (id: string): void => {
    const user = sources.user(id);
    const member = sources.member(id);
    if (user) resolved.users[id] = user;
    if (member) resolved.members[id] = member;
  };
  const visit = (option: CommandOptionInput): void => {
    if (option.options) {
      for (const child of option.options) visit(child);
      return;
    }
    if (option.value === undefined) return;
    const id = String(option.value);
    switch (option.type) {
      case ApplicationCommandOptionType.Attachment: {
        const attachment = sources.attachment(id);
        if (!attachment) throw new Error(`fake Discord: option ${option.name} names unknown attachment ${id}`);
        resolved.attachments[id] = attachment;
        break;
      }
      case ApplicationCommandOptionType.User:
        addUser(id);
        break;
      case ApplicationCommandOptionType.Role: {
        const role = sources.role(id);
        if (role) resolved.roles[id] = role;
        break;
      }
      case ApplicationCommandOptionType.Channel: {
        const channel = sources.channel(id);
        if (channel) resolved.channels[id] = channel;
        break;
      }
      case ApplicationCommandOptionType.Mentionable:
        addUser(id);
        if (sources.role(id)) resolved.roles[id] = sources.role(id) as APIRole;
        break;
      default:
        break;
    }
  };
  for (const option of options) visit(option);
  // discord.js reads `resolved.attachments` unconditionally when building attachment options, so keep every map.
  return resolved;
}

/** The fields every guild interaction carries; discord.js 14.28 fails on payloads without them. */
export interface InteractionBase {
  id: string;
  applicationId: string;
  token: string;
  guildId: string;
  guildLocale: string;
  channel: APIChatInputApplicationCommandInteraction['channel'];
  member: APIChatInputApplicationCommandInteraction['member'];
  appPermissions: bigint;
  locale: string;
}

/** An application-command interaction (chat input or context menu) around its `data`. */
export function commandInteraction<T extends FakeInteraction>(base: InteractionBase, data: T['data']): T {
  return { ...interactionFields(base), type: InteractionType.ApplicationCommand, data } as unknown as T;
}

/** The fields of a guild interaction other than `type` and `data`. */
export function interactionFields(base: InteractionBase) {
  return {
    id: base.id,
    application_id: base.applicationId,
    token: base.token,
    version: 1 as const,
    guild_id: base.guildId,
    guild: { id: base.guildId, locale: base.guildLocale, features: [] },
    guild_locale: base.guildLocale,
    channel: base.channel,
    channel_id: base.channel.id,
    member: base.member,
    app_permissions: base.appPermissions.toString(),
    locale: base.locale,
    entitlements: [],
    authorizing_integration_owners: { [ApplicationIntegrationType.GuildInstall]: base.guildId },
    context: InteractionContextType.Guild,
    attachment_size_limit: 10 * 1024 * 1024,
  };
}

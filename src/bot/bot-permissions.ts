import { PermissionFlagsBits, type GuildBasedChannel } from 'discord.js';

/** What the bot needs to read a channel's history, with the names Discord's settings show. */
const TO_READ: Array<[bigint, string]> = [
  [PermissionFlagsBits.ViewChannel, 'View Channel'],
  [PermissionFlagsBits.ReadMessageHistory, 'Read Message History'],
];

/** What answering searches in a channel uses, and what each is for. */
const TO_ANSWER: Array<[bigint, string]> = [
  [PermissionFlagsBits.SendMessages, 'Send Messages (answers to mentions)'],
  [PermissionFlagsBits.EmbedLinks, 'Embed Links (result cards)'],
  [PermissionFlagsBits.AttachFiles, 'Attach Files (the overview picture)'],
  [PermissionFlagsBits.AddReactions, 'Add Reactions (the ⬅️ ➡️ 🔎 ❌ controls)'],
  [PermissionFlagsBits.ManageMessages, 'Manage Messages (to reset a control after use)'],
];

export interface MissingPermissions {
  /** Without these the channel's history cannot be read: a /watch is refused. */
  read: string[];
  /** Without these results cannot be shown there in full. */
  answer: string[];
}

/** The bot's own permissions in `channel`, as Discord computes them (roles, then the channel's overwrites). */
export async function missingBotPermissions(channel: GuildBasedChannel): Promise<MissingPermissions> {
  const me = channel.guild.members.me ?? (await channel.guild.members.fetchMe());
  const granted = channel.permissionsFor(me);
  const missing = (list: Array<[bigint, string]>) => list.filter(([bit]) => !granted.has(bit)).map(([, name]) => name);
  // Without View Channel nothing else applies in the channel, whatever the other bits say.
  if (!granted.has(PermissionFlagsBits.ViewChannel)) return { read: TO_READ.map(([, name]) => name), answer: TO_ANSWER.map(([, name]) => name) };
  return { read: missing(TO_READ), answer: missing(TO_ANSWER) };
}

/** "A", "A and B", "A, B and C" */
export function listInWords(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** The refusal of a /watch: exactly what is missing, and what to do. */
export function cannotWatchText(channelId: string, missing: MissingPermissions): string {
  const lines = [
    `I cannot watch <#${channelId}>: I am missing ${listInWords(missing.read)} there, so I cannot read its messages. It is not watched.`,
    `Give my role (or me) ${missing.read.length === 1 ? 'that permission' : 'these permissions'} in the channel's settings, then use /watch again.`,
  ];
  if (missing.answer.length > 0) lines.push(`To answer searches there I would also need: ${listInWords(missing.answer)}.`);
  return lines.join('\n');
}

/** The note after a /watch that can read the channel but cannot answer there in full. */
export function cannotAnswerFullyText(channelId: string, missing: string[]): string {
  return `I can read <#${channelId}>, but to answer searches there I also need: ${listInWords(missing)}.`;
}

import { MessageFlags, type GuildMember } from 'discord.js';
import { checkQueryRate } from '../bot/answer.js';
import { editReplyOrPost, followUpPrivately } from '../bot/late-answer.js';
import { answerRulesIn } from '../bot/answer-rules.js';
import { ANSWER_POSTS, describePosts, earlierPosts } from '../bot/reposts.js';
import { downloadAttachment } from '../bot/search.js';
import { AppError } from '../errors.js';
import type { ImageRecord } from '../index/store.js';
import type { SlashCommand } from './command.js';
import { repostsDefinition } from './definitions.js';

/**
 * "Was this posted before?" on demand, with the privacy rules of /relevant: only posts the asker can read, and the
 * answer goes only to the asker when a post it lists is in a channel not everyone here can read.
 */
export const reposts: SlashCommand = {
  data: repostsDefinition,
  async execute(ctx, interaction) {
    checkQueryRate(ctx, interaction.user.id);
    const ephemeral = interaction.options.getBoolean('private') ?? false;
    await interaction.deferReply(ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    const guild = interaction.guild;
    const member = interaction.member as GuildMember | null;
    const rules = guild && member && interaction.channelId ? await answerRulesIn(guild, member, interaction.channelId) : undefined;
    if (!guild || !rules) throw new AppError('NOT_PERMITTED', 'Earlier posts can only be looked up in a server channel.');
    const bytes = await downloadAttachment(ctx, interaction.options.getAttachment('image', true));
    const exposing = new Set<string>();
    const filter = async (view: ImageRecord) => {
      if (!(await rules.readable(view))) return false;
      if (!ephemeral && (await rules.exposes(view))) exposing.add(view.extra?.messageId ?? '');
      return true;
    };
    const posts = await earlierPosts(ctx, guild, [bytes], filter, ANSWER_POSTS);
    if (posts.length === 0) {
      await editReplyOrPost(ctx, interaction, { content: 'Not posted before, as far as I can see in the channels you can read.' });
      return;
    }
    const answer = { content: `Posted before:\n${describePosts(posts)}`, allowedMentions: { parse: [] } };
    if (!posts.some((p) => exposing.has(p.messageId))) {
      await editReplyOrPost(ctx, interaction, answer);
      return;
    }
    const note = await editReplyOrPost(
      ctx,
      interaction,
      { content: 'Some earlier posts are in channels not everyone here can read, so I sent the answer only to you.' },
      { content: 'Some earlier posts are in channels not everyone here can read, and Discord no longer lets me send them only to you (it allows 15 minutes): please ask again.' },
    );
    if (note.via === 'reply') await followUpPrivately(ctx, interaction, answer);
  },
};

import { MessageFlags, type Attachment, type ChatInputCommandInteraction, type Message, type MessageContextMenuCommandInteraction } from 'discord.js';
import { AppError } from '../errors.js';
import { answerMention, answerRelevant, checkQueryRate, type AnswerOptions } from './answer.js';
import type { BotContext } from './context.js';
import { downloadPolicy } from './download-policy.js';
import { downloadImage } from './download.js';
import { MAX_RESULTS } from './limits.js';
import { imagesOf } from './message-images.js';

/** Where a search by image was asked, with what that entry point brings. */
export type SearchRequest =
  /** `/relevant`: the uploaded attachment and the command's options. */
  | { via: 'command'; interaction: ChatInputCommandInteraction; attachment: Attachment; options: AnswerOptions }
  /** The "Find relevant images" context menu on a message: its first image. */
  | { via: 'menu'; interaction: MessageContextMenuCommandInteraction }
  /** "@bot" in a reply to a message: the replied-to message's first image, answered in the channel. */
  | { via: 'mention'; message: Message };

/** The context menu has no options: every result the asker may see, from the whole server, in the channel. */
const MENU_ANSWER: AnswerOptions = { k: MAX_RESULTS, sameChannelOnly: false, ephemeral: false };

/**
 * The one search use case behind its three entry points: the asker's rate is checked, the image to search with
 * found and downloaded (from the CDN hosts only), and the answer given where it was asked. Errors are thrown as
 * AppErrors for the entry point's own error handling to tell the asker.
 */
export async function searchByImage(ctx: BotContext, request: SearchRequest): Promise<void> {
  checkQueryRate(ctx, request.via === 'mention' ? request.message.author.id : request.interaction.user.id);
  const url = await imageToSearch(ctx, request);
  if (url === undefined) return;
  const bytes = await downloadImage(url, downloadPolicy(ctx.config));
  if (request.via === 'mention') await answerMention(ctx, request.message, bytes);
  else await answerRelevant(ctx, request.interaction, bytes, request.via === 'command' ? request.options : MENU_ANSWER);
}

/**
 * The URL of the image to search with; for an interaction, once its reply is deferred (the download and the query
 * can outlast the 3 s Discord allows for a first answer). Undefined when the asker has been told there is none.
 */
async function imageToSearch(ctx: BotContext, request: SearchRequest): Promise<string | undefined> {
  switch (request.via) {
    case 'command':
      await request.interaction.deferReply(request.options.ephemeral ? { flags: MessageFlags.Ephemeral } : {});
      return imageAttachment(request.attachment).url;
    case 'menu': {
      const [image] = imagesOf(request.interaction.targetMessage, ctx.config.cdnHosts);
      // Refused before deferring, so the refusal goes only to the asker.
      if (!image) throw new AppError('IMAGE_UNSUPPORTED', 'That message has no image to search with.');
      await request.interaction.deferReply();
      return image.url;
    }
    case 'mention': {
      const [image] = imagesOf(await request.message.fetchReference(), ctx.config.cdnHosts);
      if (!image) await request.message.reply({ content: 'Reply to a message with an image and mention me to find relevant images.' });
      return image?.url;
    }
  }
}

/** An uploaded attachment's bytes from the CDN (the image options of /relevant and /reposts). */
export async function downloadAttachment(ctx: BotContext, attachment: Attachment): Promise<Buffer> {
  return downloadImage(imageAttachment(attachment).url, downloadPolicy(ctx.config));
}

/** The attachment, unless it says it is no image (one that claims to be one is still checked when decoded). */
function imageAttachment(attachment: Attachment): Attachment {
  if (attachment.contentType && !attachment.contentType.startsWith('image/')) {
    throw new AppError('IMAGE_UNSUPPORTED', 'That attachment is not an image.');
  }
  return attachment;
}

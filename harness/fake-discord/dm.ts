import {
  ApplicationCommandType,
  ApplicationIntegrationType,
  ChannelType,
  InteractionContextType,
  InteractionType,
  PermissionFlagsBits,
  type APIApplicationCommandInteractionDataOption,
} from 'discord-api-types/v10';
import type { CommandOptionInput, FakeInteraction } from './interactions.js';
import { userPayload } from './payloads.js';
import type { FakeState } from './state.js';

/** What Discord grants an app in a direct message with its bot user. */
const DM_APP_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.AddReactions;

/**
 * A chat-input command used in the bot's direct messages, as Discord sends it: no `guild_id`, no `member` (a
 * `user` instead), a DM `channel` with the user as recipient and `context` 1 (BotDM). A guild-installed app sees
 * `"0"` as the owner of its guild installation in a DM. Discord only offers a command there when its `contexts`
 * include BotDM; the fake sends it anyway, as a stale registration or another client might.
 */
export function dmCommandInteraction(
  state: FakeState,
  input: { id: string; commandId: string; applicationId: string; token: string; userId: string; dmChannelId: string; name: string; options?: CommandOptionInput[]; locale?: string },
): FakeInteraction {
  const user = userPayload(state, input.userId);
  return {
    id: input.id,
    application_id: input.applicationId,
    token: input.token,
    version: 1,
    type: InteractionType.ApplicationCommand,
    data: {
      id: input.commandId,
      name: input.name,
      type: ApplicationCommandType.ChatInput,
      options: (input.options ?? []) as APIApplicationCommandInteractionDataOption[],
    },
    user,
    channel: { id: input.dmChannelId, type: ChannelType.DM, recipients: [user], last_message_id: null, flags: 0 },
    channel_id: input.dmChannelId,
    app_permissions: DM_APP_PERMISSIONS.toString(),
    locale: input.locale ?? 'en-US',
    entitlements: [],
    authorizing_integration_owners: { [ApplicationIntegrationType.GuildInstall]: '0' },
    context: InteractionContextType.BotDM,
    attachment_size_limit: 10 * 1024 * 1024,
  } as unknown as FakeInteraction;
}

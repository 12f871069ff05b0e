import { Events, type Client } from 'discord.js';
import type { FakeDiscord } from './index.js';

/**
 * Logs the client in to the fake and resolves on `clientReady`: `login()` itself resolves as soon as the shards
 * are connected, before the guilds have arrived.
 */
export async function loginToFake(client: Client, fake: FakeDiscord): Promise<void> {
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(fake.token);
  await ready;
}

import { Events, type Client, type ClientOptions } from 'discord.js';
import type { FakeDiscord } from './index.js';

/** What a client needs to reach a fake, also from another process (the crash test's bot child). */
export interface FakeEndpoints {
  token: string;
  apiUrl: string;
  cdnUrl: string;
}

/** The discord.js options that point a client at the fake; spread them into `new Client({ intents, ...options })`. */
export function fakeClientOptions(endpoints: FakeEndpoints): Pick<ClientOptions, 'rest' | 'ws'> {
  return {
    rest: { api: endpoints.apiUrl, cdn: endpoints.cdnUrl },
    ws: { buildIdentifyThrottler: () => ({ waitForIdentify: async () => undefined }) },
  };
}

/** The bot's environment against the fake: its token and REST URL, and only the fake's CDN host (plain http). */
export function fakeBotEnv(endpoints: FakeEndpoints): Record<string, string> {
  return {
    DISCORD_TOKEN: endpoints.token,
    DISCORD_API_URL: endpoints.apiUrl,
    CDN_HOSTS: new URL(endpoints.cdnUrl).host,
    ALLOW_INSECURE_CDN: 'true',
  };
}

/**
 * Logs the client in to the fake and resolves on `clientReady`: `login()` itself resolves as soon as the shards
 * are connected, before the guilds have arrived.
 */
export async function loginToFake(client: Client, fake: FakeDiscord): Promise<void> {
  const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
  await client.login(fake.token);
  await ready;
}

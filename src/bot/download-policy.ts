import type { BotConfig } from '../config.js';
import type { DownloadPolicy } from './download.js';

export function downloadPolicy(config: BotConfig): DownloadPolicy {
  return { hosts: config.cdnHosts, allowInsecure: config.allowInsecureCdn, maxBytes: config.maxDownloadBytes };
}

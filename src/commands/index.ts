import type { MessageMenuCommand, SlashCommand } from './command.js';
import { findRelevant } from './find-relevant.js';
import { forgetMe, indexMe } from './forget-me.js';
import { purge } from './purge.js';
import { relevanceStatus } from './relevance-status.js';
import { relevant } from './relevant.js';
import { reposts } from './reposts.js';
import { retrain } from './retrain.js';
import { unwatch, watch, watching } from './watch.js';

// The handlers, found by name when an interaction arrives. What is registered with Discord is the data alone,
// in ./definitions.ts.
export const slashCommands: SlashCommand[] = [relevant, watch, unwatch, watching, retrain, relevanceStatus, forgetMe, indexMe, purge, reposts];
export const messageMenuCommands: MessageMenuCommand[] = [findRelevant];

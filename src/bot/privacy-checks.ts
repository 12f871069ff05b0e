/**
 * The privacy checks the bot makes, by name. Tests only: the randomized leak test (test/bot-leak.e2e.test.ts)
 * switches one off at a time to show that each is needed (with it off, the test finds leaks). Nothing in the bot's
 * configuration can switch them off.
 */
export type PrivacyCheck =
  /** The asker must be able to read an image where it was posted. */
  | 'asker-can-read'
  /** A public answer shows no image that someone who reads the answer's channel cannot read (every answer path). */
  | 'audience'
  /** …counting members with permission overwrites of their own. */
  | 'member-overwrites'
  /** …counting members of a private thread the answer is in. */
  | 'thread-members'
  /** A private thread is read only by its members and thread managers, not by everyone who reads its parent. */
  | 'private-threads'
  /** Every page of a result message is checked again, not only the first answer. */
  | 'recheck-pages'
  /** 🔎 on a public message applies the audience check to its new results. */
  | 'audience-on-more'
  /** 👍/👎 on a public message applies the audience check to the re-ranked results. */
  | 'audience-on-feedback'
  /** Age-restricted images only in age-restricted channels. */
  | 'nsfw';

const disabled = new Set<PrivacyCheck>();

export function checkEnabled(check: PrivacyCheck): boolean {
  return !disabled.has(check);
}

/** Tests only. */
export function disablePrivacyChecksForTest(checks: PrivacyCheck[]): void {
  disabled.clear();
  for (const check of checks) disabled.add(check);
}

// Tag patterns of warm.images and `wharf warm` (`alpine:3.*`): `*` matches any run of characters, `?` one
// character; anything else stands for itself. Neither character can be part of a tag, so a pattern is
// never mistaken for one.
const GLOB_CHARS = /^[A-Za-z0-9_.*?-]{1,128}$/;

/** Whether `text` is a tag pattern (holds `*` or `?` and otherwise only tag characters). */
export const isTagGlob = (text: string): boolean => GLOB_CHARS.test(text) && /[*?]/.test(text);

/** A matcher for one pattern, anchored at both ends. */
export function tagMatcher(pattern: string): (tag: string) => boolean {
  const source = pattern.replace(/[.*?-]/g, (c) => (c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`));
  const re = new RegExp(`^${source}$`);
  return (tag) => re.test(tag);
}

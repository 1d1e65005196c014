// The Markdown shipped in the repository links only within it: no http(s) links to other sites (they
// rot, and a README is read offline from a clone or an image), relative links only, and every one of them
// resolves to a file of the repository (and, with a #fragment, to one of its headings).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', 'data', '.git', '.tap']);

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (SKIP.has(e.name)) return [];
    const p = join(dir, e.name);
    return e.isDirectory() ? markdownFiles(p) : e.name.endsWith('.md') ? [p] : [];
  });
}

/** The prose: fenced blocks and code spans removed (a URL shown as code is not a link). */
export function prose(md: string): string {
  return md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/(`+)[\s\S]*?\1/g, '');
}

/** Link targets: inline `[text](target)`, images, reference definitions `[x]: target`, autolinks `<...>`. */
export function linkTargets(md: string): string[] {
  const text = prose(md);
  const out: string[] = [];
  for (const m of text.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]!);
  for (const m of text.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)) out.push(m[1]!);
  for (const m of text.matchAll(/<([a-z][a-z0-9+.-]*:[^>\s]*)>/gi)) out.push(m[1]!);
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(md: string): Set<string> {
  const out = new Set<string>();
  for (const m of md.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    out.add(m[1]!.toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-'));
  }
  return out;
}

t.test('the checks find the link forms they look for', async (t) => {
  const md = '[a](https://x.example) ![i](img.png "t") see <https://y.example>\n[ref]: http://z.example\n`[c](https://code.example)`\n```\n[d](https://fenced.example)\n```\n';
  t.strictSame(linkTargets(md), ['https://x.example', 'img.png', 'http://z.example', 'https://y.example']);
  t.notMatch(prose(md), /code\.example|fenced\.example/);
});

const files = markdownFiles(root);
t.ok(files.some((f) => relative(root, f) === 'README.md'), 'README.md is checked');

for (const file of files) {
  const name = relative(root, file);
  t.test(`${name} links nothing outside the repository, and its links resolve`, async (t) => {
    const md = readFileSync(file, 'utf8');
    // Bare URLs in prose are links too (GitHub autolinks them).
    t.strictSame([...prose(md).matchAll(/\b(?:https?|ftp):\/\/\S+/gi)].map((m) => m[0]), [], 'no URL to another site in the prose');
    const outside = [...md.matchAll(/(?:^|[\s`("'])(\.\.\/[^\s`)"']*)/g)].map((m) => m[1]!).filter((p) => !resolve(dirname(file), p).startsWith(root));
    t.strictSame(outside, [], 'no path that leaves the repository');
    for (const target of linkTargets(md)) {
      t.notMatch(target, /^[a-z][a-z0-9+.-]*:|^\/\//i, `${target}: a relative link, not an absolute URL`);
      if (/^[a-z][a-z0-9+.-]*:|^\/\//i.test(target)) continue;
      const [path, fragment] = target.split('#') as [string, string | undefined];
      const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
      t.ok(dest.startsWith(root.endsWith(sep) ? root : root + sep) && existsSync(dest), `${target}: resolves to a file in the repository`);
      if (fragment !== undefined && existsSync(dest) && statSync(dest).isFile() && dest.endsWith('.md')) {
        t.ok(anchors(readFileSync(dest, 'utf8')).has(fragment), `${target}: names a heading of ${relative(root, dest)}`);
      }
    }
  });
}

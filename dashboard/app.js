// @ts-check
// The Wharf dashboard: one module, no framework. Everything it shows comes from the management API
// (/api, docs in README "Dashboard"); every value is inserted as text (textContent, text nodes,
// attributes), never as markup: repository names, tags and error messages come from clients and
// upstreams. The page's Content-Security-Policy allows no inline script or style.
//
// Sign-in: the user name and password go once to /auth/token (Basic), asking for the management
// API's scope (wharf:api:manage, granted to admins only) and a refresh token (offline_token=true, the
// Docker token spec's refresh flow). Only the tokens are kept, in this tab's sessionStorage (gone
// when the tab closes or on Sign out), never the password. The access token goes as Bearer with each
// call; shortly before it expires, or once after a 401, it is renewed with the refresh token
// (POST /auth/token, grant_type=refresh_token). With auth off nothing is asked.

const STORAGE_KEY = 'wharf.dashboard.session';
const SCOPE = 'wharf:api:manage';
const REFRESH_MS = 30_000;
/** An access token this close to its end is renewed before it is used. */
const RENEW_BEFORE_MS = 30_000;
const PAGE_SIZE = 100;

/**
 * @typedef {{ access: string, refresh: string | null, expiresAt: number }} Session
 * expiresAt: when the access token ends, by this browser's clock (issue time + expires_in).
 */

/** @returns {Session | null} */
function storedSession() {
  // A Basic value kept by an older version of this page goes.
  sessionStorage.removeItem('wharf.dashboard.authorization');
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    if (value && typeof value.access === 'string' && typeof value.expiresAt === 'number') {
      return { access: value.access, refresh: typeof value.refresh === 'string' ? value.refresh : null, expiresAt: value.expiresAt };
    }
  } catch {
    // unreadable: as if signed out
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return null;
}

/** @type {Session | null} the tokens, when signed in */
let session = storedSession();
/** @type {Promise<boolean> | null} the renewal in flight, shared by every call that waits for it */
let renewing = null;
/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;
/** @type {string | null} the repository whose tags are open */
let openRepository = null;
let loading = false;

/** @param {string} id */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no #${id}`);
  return node;
}

/**
 * An element with text and children; strings become text nodes.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{ className?: string, title?: string, text?: string, attrs?: Record<string, string> }} [props]
 * @param {(Node | string)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  if (props.className) node.className = props.className;
  if (props.title) node.title = props.title;
  if (props.text !== undefined) node.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

// ---- formatting ------------------------------------------------------------------------------

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes in binary units, three significant digits: 1536 → "1.50 KiB". @param {number} bytes */
function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return '—';
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toPrecision(3)} ${UNITS[unit]}`;
}

/** A size cell: readable text, the exact number in data-bytes and the tooltip. @param {number} bytes */
function bytesCell(bytes) {
  return el('td', { className: 'num', text: formatBytes(bytes), title: `${bytes} bytes`, attrs: { 'data-bytes': String(bytes) } });
}

/** @param {number | null | undefined} n */
const formatCount = (n) => (typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en') : '—');

/** "3 min ago" with the full time in a <time>. @param {string | null | undefined} iso */
function timeNode(iso) {
  if (!iso) return el('span', { className: 'muted', text: 'never' });
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return el('span', { text: String(iso) });
  return el('time', { text: ago(at), title: at.toLocaleString(), attrs: { datetime: at.toISOString() } });
}

/** @param {Date} at */
function ago(at) {
  const s = Math.round((Date.now() - at.getTime()) / 1000);
  if (s < 0) return at.toLocaleString();
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** @param {number | null | undefined} ratio */
const percent = (ratio) => (typeof ratio === 'number' ? `${(ratio * 100).toFixed(1)} %` : '—');

/**
 * A table; each row is a list of cells (a <td> as it is, anything else as a cell's content).
 * @param {string[]} headings
 * @param {(Node | string)[][]} rows
 * @param {string[]} [numeric] headings whose column is right-aligned
 */
function table(headings, rows, numeric = []) {
  const head = el('tr', {}, ...headings.map((h) => el('th', { text: h, className: numeric.includes(h) ? 'num' : '' })));
  const body = rows.map((cells) =>
    el('tr', {}, ...cells.map((c, i) => (c instanceof HTMLTableCellElement ? c : el('td', { className: numeric.includes(headings[i] ?? '') ? 'num' : '' }, c)))),
  );
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

// ---- the API ---------------------------------------------------------------------------------

/**
 * @typedef {{ status: number, body: any, headers: Headers, message: string, code: string }} ApiResponse
 */

/**
 * A call with the session's access token (renewed first when it is about to end; renewed and retried
 * once after a 401), or with `auth` as given.
 * @param {string} path @param {string | null} [auth] @returns {Promise<ApiResponse>}
 */
async function api(path, auth) {
  if (auth !== undefined) return request(path, auth);
  if (session && session.refresh && session.expiresAt - Date.now() < RENEW_BEFORE_MS) await renew();
  const sent = session;
  const res = await request(path, sent ? `Bearer ${sent.access}` : null);
  if (res.status !== 401 || !sent || !sent.refresh) return res;
  // Another call may have renewed it meanwhile; otherwise renew now. Then once more, and no further.
  if (session === sent && !(await renew())) return res;
  return session ? request(path, `Bearer ${session.access}`) : res;
}

/** @param {string} path @param {string | null} auth @param {RequestInit} [init] @returns {Promise<ApiResponse>} */
async function request(path, auth, init = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json', ...(/** @type {Record<string, string>} */ (init.headers ?? {})) };
  if (auth) headers['authorization'] = auth;
  const res = await fetch(path, { ...init, headers, cache: 'no-store', credentials: 'omit' });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: status and text below say enough
  }
  const first = body && Array.isArray(body.errors) ? body.errors[0] : undefined;
  const message = first && typeof first.message === 'string' ? first.message : `${res.status} ${res.statusText}`;
  const code = first && typeof first.code === 'string' ? first.code : '';
  return { status: res.status, body, headers: res.headers, message, code };
}

/** The tokens of a /auth/token answer as a session (`refresh` kept when the answer brings none). @param {any} body @param {string | null} refresh */
function sessionFrom(body, refresh) {
  const access = typeof body?.access_token === 'string' ? body.access_token : body?.token;
  if (typeof access !== 'string') return null;
  const lifetime = Number(body.expires_in) > 0 ? Number(body.expires_in) : 60;
  return { access, refresh: typeof body.refresh_token === 'string' ? body.refresh_token : refresh, expiresAt: Date.now() + lifetime * 1000 };
}

/** @param {Session | null} next */
function keep(next) {
  session = next;
  if (next) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(STORAGE_KEY);
}

/** A new access token for the refresh token; one renewal at a time. Whether it worked. */
function renew() {
  renewing ??= (async () => {
    const current = session;
    if (!current || !current.refresh) return false;
    try {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: current.refresh, scope: SCOPE, client_id: 'wharf-dashboard' });
      const res = await request('/auth/token', null, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
      const next = res.status === 200 ? sessionFrom(res.body, current.refresh) : null;
      // Signed out (or in again) while this ran: its answer is not ours to keep.
      if (session !== current) return session !== null;
      if (next) keep(next);
      return next !== null;
    } catch {
      return false;
    }
  })().finally(() => {
    renewing = null;
  });
  return renewing;
}

/** An error the panel shows as its note; 401/403 end the session instead. */
class PanelError extends Error {
  /** @param {string} message @param {'unavailable' | 'error'} kind */
  constructor(message, kind) {
    super(message);
    this.kind = kind;
  }
}

/** The JSON of a GET, or a PanelError ("not available" for an endpoint this server lacks). @param {string} path */
async function getJson(path) {
  const res = await api(path);
  if (res.status === 200) return { body: res.body, headers: res.headers };
  if (res.status === 401 || res.status === 403) {
    signOut(res.status === 401 ? 'Signed out: the server no longer accepts these credentials.' : `Signed out: ${res.message}`);
    throw new PanelError(res.message, 'error');
  }
  if (res.status === 404 && (res.code === 'NOT_FOUND' || res.code === '')) throw new PanelError('not available on this server', 'unavailable');
  throw new PanelError(res.message, 'error');
}

/** The next page's path from a Link header, only when it stays under /api/. @param {Headers} headers */
function nextPage(headers) {
  const link = headers.get('link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  if (!m || !m[1]) return null;
  const url = new URL(m[1], location.href);
  return url.origin === location.origin && url.pathname.startsWith('/api/') ? url.pathname + url.search : null;
}

/** A repository name in a path: each component escaped, slashes kept. @param {string} name */
const repositoryPath = (name) => name.split('/').map(encodeURIComponent).join('/');

// ---- panels ----------------------------------------------------------------------------------

/**
 * Runs a panel's loader, showing "loading", "not available" or the error in its note.
 * @param {string} id
 * @param {(content: HTMLElement) => Promise<void>} load
 */
async function panel(id, load) {
  const section = byId(id);
  const note = /** @type {HTMLElement} */ (section.querySelector('.note'));
  const content = /** @type {HTMLElement} */ (section.querySelector('.content'));
  if (!content.hasChildNodes()) note.textContent = 'Loading…';
  try {
    await load(content);
    note.textContent = '';
    note.className = 'note';
    section.classList.remove('unavailable');
  } catch (err) {
    content.replaceChildren();
    const kind = err instanceof PanelError ? err.kind : 'error';
    note.className = kind === 'unavailable' ? 'note muted' : 'note error';
    note.textContent = kind === 'unavailable' ? 'Not available on this server.' : `Could not load: ${err instanceof Error ? err.message : String(err)}`;
    section.classList.toggle('unavailable', kind === 'unavailable');
  }
}

/** @param {any} repo */
function repositoryRow(repo) {
  const open = el('button', { className: 'link', text: String(repo.name), attrs: { type: 'button', 'data-repository': String(repo.name) } });
  open.addEventListener('click', () => void showTags(String(repo.name)));
  const kind = repo.kind === 'cached' ? `cached${repo.upstream ? ` from ${repo.upstream}` : ''}` : String(repo.kind ?? '');
  return [
    el('td', {}, open),
    kind,
    bytesCell(Number(repo.sizeBytes)),
    formatCount(repo.tagCount),
    timeNode(repo.lastPush),
    timeNode(repo.lastPull),
  ];
}

const REPO_HEADINGS = ['Name', 'Kind', 'Size', 'Tags', 'Last push', 'Last pull'];
const REPO_NUMERIC = ['Size', 'Tags'];

/** @param {HTMLElement} content */
async function loadRepositories(content) {
  const { body, headers } = await getJson(`/api/repositories?n=${PAGE_SIZE}`);
  const repos = Array.isArray(body?.repositories) ? body.repositories : [];
  if (repos.length === 0) {
    content.replaceChildren(el('p', { className: 'muted', text: 'No repositories yet.' }));
    return;
  }
  const tbl = table(REPO_HEADINGS, repos.map(repositoryRow), REPO_NUMERIC);
  content.replaceChildren(tbl);
  addMoreButton(content, tbl, nextPage(headers));
}

/**
 * A "More" button under the repositories, appending the next pages.
 * @param {HTMLElement} content @param {HTMLTableElement} tbl @param {string | null} next
 */
function addMoreButton(content, tbl, next) {
  if (!next) return;
  const more = el('button', { text: 'More', attrs: { type: 'button' } });
  let path = next;
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const { body, headers } = await getJson(path);
      const items = Array.isArray(body?.repositories) ? body.repositories : [];
      const extra = table(REPO_HEADINGS, items.map(repositoryRow), REPO_NUMERIC);
      tbl.tBodies[0]?.append(...Array.from(extra.tBodies[0]?.rows ?? []));
      const following = nextPage(headers);
      if (following) path = following;
      else more.remove();
    } catch (err) {
      more.textContent = `More (failed: ${err instanceof Error ? err.message : String(err)})`;
    } finally {
      more.disabled = false;
    }
  });
  content.append(more);
}

/** @param {string} name */
async function showTags(name) {
  openRepository = name;
  const section = byId('tags');
  section.hidden = false;
  byId('tags-repository').textContent = name;
  byId('tags').querySelector('.content')?.replaceChildren();
  await loadTags();
  section.scrollIntoView({ block: 'nearest' });
}

async function loadTags() {
  const name = openRepository;
  if (name === null) return;
  await panel('tags', async (content) => {
    const { body, headers } = await getJson(`/api/repositories/${repositoryPath(name)}/-/tags?n=${PAGE_SIZE}`);
    if (openRepository !== name) return;
    const tags = Array.isArray(body?.tags) ? body.tags : [];
    if (tags.length === 0) {
      content.replaceChildren(el('p', { className: 'muted', text: 'No tags.' }));
      return;
    }
    /** @param {any} tag */
    const row = (tag) => [
      String(tag.name),
      el('td', { className: 'digest', text: String(tag.digest).replace(/^(sha256:[0-9a-f]{12})[0-9a-f]*$/, '$1…'), title: String(tag.digest) }),
      String(tag.mediaType ?? ''),
      bytesCell(Number(tag.sizeBytes)),
      timeNode(tag.pushedAt),
    ];
    const tbl = table(['Tag', 'Digest', 'Media type', 'Size', 'Pushed'], tags.map(row), ['Size']);
    content.replaceChildren(tbl);
    if (nextPage(headers)) content.append(el('p', { className: 'muted', text: `The first ${PAGE_SIZE} tags are shown.` }));
  });
}

/** @param {HTMLElement} content @param {any} stats */
function renderCache(content, stats) {
  const c = stats.cache ?? {};
  /** @type {[string, string][]} */
  const facts = [
    ['Hit ratio', percent(c.hitRatio)],
    ['Hits', formatCount(c.hits)],
    ['Misses', formatCount(c.misses)],
    ['Coalesced', formatCount(c.coalesced)],
    ['Served stale', formatCount(c.stale)],
    ['Bytes served', formatBytes(Number(c.bytesServed))],
    ['from the cache', formatBytes(Number(c.bytesServedFromCache))],
    ['Fills in flight', formatCount(c.fillsInFlight)],
  ];
  const dl = el('dl', { className: 'facts' }, ...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  content.replaceChildren(dl, hitRatioChart(Array.isArray(stats.history) ? stats.history : []));
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * @param {string} tag @param {Record<string, string | number>} attrs
 * @returns {SVGElement}
 */
function svg(tag, attrs) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG, tag));
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * The hit ratio per minute as a line over the minute's request count as bars; minutes without
 * requests leave a gap in the line.
 * @param {{ at: string, hits: number, misses: number }[]} history
 */
function hitRatioChart(history) {
  const W = 600;
  const H = 150;
  const PAD = 24;
  const figure = el('figure', { className: 'chart' });
  if (history.length === 0) {
    figure.append(el('figcaption', { className: 'muted', text: 'No history yet.' }));
    return figure;
  }
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'cache hit ratio per minute' });
  const title = svg('title', {});
  title.textContent = 'Cache hit ratio per minute';
  chart.append(title);
  const plotW = W - PAD * 2;
  const plotH = H - PAD * 2;
  const step = plotW / Math.max(1, history.length);
  const maxRequests = Math.max(1, ...history.map((h) => Number(h.hits) + Number(h.misses)));
  for (const ratio of [0, 0.5, 1]) {
    const y = PAD + plotH * (1 - ratio);
    chart.append(svg('line', { x1: PAD, x2: W - PAD, y1: y, y2: y, class: 'grid' }));
    const label = svg('text', { x: 2, y: y + 4, class: 'axis' });
    label.textContent = `${ratio * 100}%`;
    chart.append(label);
  }
  /** @type {string[]} */
  const segments = [];
  let points = '';
  history.forEach((h, i) => {
    const requests = Number(h.hits) + Number(h.misses);
    const x = PAD + step * i;
    if (requests > 0) {
      const barH = (plotH * requests) / maxRequests;
      const bar = svg('rect', { x: x + 1, y: PAD + plotH - barH, width: Math.max(1, step - 2), height: barH, class: 'bar' });
      const tip = svg('title', {});
      tip.textContent = `${new Date(h.at).toLocaleTimeString()}: ${h.hits} hits, ${h.misses} misses`;
      bar.append(tip);
      chart.append(bar);
      points += `${(x + step / 2).toFixed(1)},${(PAD + plotH * (1 - Number(h.hits) / requests)).toFixed(1)} `;
    } else if (points) {
      segments.push(points);
      points = '';
    }
  });
  if (points) segments.push(points);
  for (const p of segments) {
    const trimmed = p.trim();
    // A lone point gets a dot, or it would not show.
    if (!trimmed.includes(' ')) {
      const [cx, cy] = trimmed.split(',');
      chart.append(svg('circle', { cx: cx ?? 0, cy: cy ?? 0, r: 2.5, class: 'ratio-dot' }));
    } else chart.append(svg('polyline', { points: trimmed, class: 'ratio' }));
  }
  figure.append(chart, el('figcaption', { text: `Hit ratio (line) and requests (bars) per minute, last ${history.length} minutes` }));
  return figure;
}

/** @param {HTMLElement} content @param {any} stats */
function renderStorage(content, stats) {
  const storage = stats.storage ?? {};
  const namespaces = Array.isArray(storage.namespaces) ? storage.namespaces : [];
  const total = Number(storage.totalBytes) || 0;
  const rows = namespaces.map((/** @type {any} */ ns) => [
    String(ns.namespace),
    formatCount(ns.repositories),
    bytesCell(Number(ns.bytes)),
    el('meter', { attrs: { min: '0', max: String(Math.max(1, total)), value: String(Number(ns.bytes) || 0) } }),
  ]);
  content.replaceChildren(
    el('p', {}, 'Total: ', el('strong', { text: formatBytes(total), title: `${total} bytes`, attrs: { 'data-bytes': String(total) } })),
    rows.length ? table(['Namespace', 'Repositories', 'Size', 'Share'], rows, ['Repositories', 'Size']) : el('p', { className: 'muted', text: 'Nothing stored yet.' }),
  );
}

/** @param {HTMLElement} content @param {any} stats */
function renderUpstreams(content, stats) {
  const upstreams = Array.isArray(stats.upstreams) ? stats.upstreams : [];
  if (upstreams.length === 0) {
    content.replaceChildren(el('p', { className: 'muted', text: 'No upstreams configured.' }));
    return;
  }
  const rows = upstreams.map((/** @type {any} */ u) => {
    const rl = u.rateLimit ?? {};
    const limit = typeof rl.remaining === 'number' ? `${rl.remaining}${typeof rl.limit === 'number' ? ` / ${rl.limit}` : ''}` : '—';
    const health = String(u.health ?? 'unknown');
    return [
      el('td', {}, el('strong', { text: String(u.name) }), el('br'), el('span', { className: 'muted', text: String(u.url ?? '') })),
      el('td', {}, el('span', { className: `health health-${/^[a-z]+$/.test(health) ? health : 'unknown'}`, text: health })),
      formatCount(u.requests),
      formatCount(u.errors),
      bytesCell(Number(u.bytesFetched)),
      limit,
      u.lastError ? el('td', {}, el('span', { className: 'error', text: String(u.lastError) }), ' ', timeNode(u.lastErrorAt)) : el('td', { className: 'muted', text: 'none' }),
    ];
  });
  content.replaceChildren(table(['Upstream', 'Health', 'Requests', 'Errors', 'Fetched', 'Rate limit left', 'Last error'], rows, ['Requests', 'Errors', 'Fetched']));
}

/** @param {HTMLElement} content */
async function loadGc(content) {
  const { body } = await getJson('/api/gc');
  const runs = Array.isArray(body?.runs) ? body.runs : [];
  if (runs.length === 0) {
    content.replaceChildren(el('p', { className: 'muted', text: 'No runs yet.' }));
    return;
  }
  const rows = runs.map((/** @type {any} */ r) => [
    timeNode(r.startedAt),
    r.dryRun ? 'dry run' : 'collection',
    `${formatCount(r.durationMs)} ms`,
    formatCount(r.manifestsDeleted),
    formatCount(r.tagsDeleted),
    formatCount(r.blobsDeleted),
    formatCount(Number(r.evictedByAge ?? 0) + Number(r.evictedBySize ?? 0)),
    bytesCell(Number(r.bytesReclaimed)),
    bytesCell(Number(r.bytesKept)),
  ]);
  content.replaceChildren(
    table(['Started', 'Kind', 'Duration', 'Manifests', 'Tags', 'Blobs', 'Evicted', 'Reclaimed', 'Kept'], rows, ['Duration', 'Manifests', 'Tags', 'Blobs', 'Evicted', 'Reclaimed', 'Kept']),
  );
}

/** @param {HTMLElement} content */
async function loadWarm(content) {
  const { body } = await getJson('/api/warm');
  const jobs = Array.isArray(body?.jobs) ? body.jobs : [];
  if (jobs.length === 0) {
    content.replaceChildren(el('p', { className: 'muted', text: 'No warm jobs.' }));
    return;
  }
  // Running jobs first, then the newest.
  const order = (/** @type {any} */ j) => (j.state === 'running' ? 0 : 1);
  jobs.sort((/** @type {any} */ a, /** @type {any} */ b) => order(a) - order(b) || String(b.startedAt).localeCompare(String(a.startedAt)));
  const rows = jobs.map((/** @type {any} */ j) => {
    /** @type {string[]} */
    const images = Array.isArray(j.images) ? j.images.map(String) : [];
    const failures = Array.isArray(j.failures) ? j.failures : [];
    return [
      el('td', { className: 'images' }, ...images.flatMap((img, i) => (i ? [el('br'), img] : [img]))),
      el('td', {}, el('span', { className: `state state-${j.state === 'running' || j.state === 'done' ? j.state : 'failed'}`, text: String(j.state) })),
      timeNode(j.startedAt),
      formatCount(j.manifests),
      formatCount(j.blobs),
      bytesCell(Number(j.bytesFetched)),
      bytesCell(Number(j.bytesCached)),
      failures.length
        ? el('td', { className: 'error' }, ...failures.flatMap((/** @type {any} */ f, /** @type {number} */ i) => [...(i ? [el('br')] : []), `${String(f.image)}: ${String(f.reason)}`]))
        : el('td', { className: 'muted', text: 'none' }),
    ];
  });
  content.replaceChildren(table(['Images', 'State', 'Started', 'Manifests', 'Blobs', 'Fetched', 'Already cached', 'Failures'], rows, ['Manifests', 'Blobs', 'Fetched', 'Already cached']));
}

/** Every panel, at once; /api/stats feeds three of them. */
async function refresh() {
  if (loading) return;
  loading = true;
  try {
    /** @type {Promise<any> | undefined} */
    let stats;
    const statsOnce = () => (stats ??= getJson('/api/stats').then((r) => r.body));
    await Promise.all([
      panel('repositories', loadRepositories),
      panel('cache', async (c) => renderCache(c, await statsOnce())),
      panel('storage', async (c) => renderStorage(c, await statsOnce())),
      panel('upstreams', async (c) => renderUpstreams(c, await statsOnce())),
      panel('gc', loadGc),
      panel('warm', loadWarm),
      loadTags(),
    ]);
    byId('status').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } finally {
    loading = false;
  }
}

// ---- signing in and out ----------------------------------------------------------------------

/** Basic credentials for /auth/token, UTF-8 as servers expect. @param {string} user @param {string} password */
function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return `Basic ${btoa(binary)}`;
}

/** @param {string | null} user */
function showDashboard(user) {
  byId('sign-in').hidden = true;
  byId('dashboard').hidden = false;
  byId('refresh').hidden = false;
  byId('sign-out').hidden = user === null;
  byId('who').textContent = user === null ? 'Auth is off: the management API is open to all.' : `Signed in as ${user}`;
  void refresh();
  clearInterval(timer);
  timer = setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

/** Forgets the credentials and everything shown with them. @param {string} [message] */
function signOut(message = '') {
  keep(null);
  clearInterval(timer);
  openRepository = null;
  for (const node of document.querySelectorAll('#dashboard .content, #dashboard .note')) node.replaceChildren();
  byId('tags').hidden = true;
  byId('tags-repository').textContent = '';
  byId('dashboard').hidden = true;
  byId('refresh').hidden = true;
  byId('sign-out').hidden = true;
  byId('who').textContent = '';
  byId('status').textContent = '';
  byId('sign-in').hidden = false;
  const password = /** @type {HTMLInputElement} */ (byId('password'));
  password.value = '';
  byId('sign-in-error').textContent = message;
  /** @type {HTMLInputElement} */ (byId('username')).focus();
}

/** @param {SubmitEvent} event */
async function onSignIn(event) {
  event.preventDefault();
  const user = /** @type {HTMLInputElement} */ (byId('username')).value;
  const password = /** @type {HTMLInputElement} */ (byId('password')).value;
  const error = byId('sign-in-error');
  const button = /** @type {HTMLButtonElement} */ (byId('sign-in-form').querySelector('button'));
  error.textContent = '';
  button.disabled = true;
  try {
    // The password is sent once, for the tokens; it is kept nowhere.
    const query = new URLSearchParams({ scope: SCOPE, offline_token: 'true', client_id: 'wharf-dashboard' });
    const issued = await request(`/auth/token?${query}`, basic(user, password));
    const next = issued.status === 200 ? sessionFrom(issued.body, null) : null;
    const res = next ? await request('/api/whoami', `Bearer ${next.access}`) : issued;
    if (res.status === 401) error.textContent = 'Wrong user name or password.';
    else if (res.status !== 200 || !next) error.textContent = res.message;
    else if (!res.body?.admin) error.textContent = `${user} is not a member of the admin group (auth.adminGroup).`;
    else {
      keep(next);
      /** @type {HTMLInputElement} */ (byId('password')).value = '';
      showDashboard(typeof res.body.user === 'string' ? res.body.user : user);
    }
  } catch (err) {
    error.textContent = `The server did not answer: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    button.disabled = false;
  }
}

async function start() {
  byId('sign-in-form').addEventListener('submit', (e) => void onSignIn(/** @type {SubmitEvent} */ (e)));
  byId('sign-out').addEventListener('click', () => signOut());
  byId('refresh').addEventListener('click', () => void refresh());
  byId('tags-close').addEventListener('click', () => {
    openRepository = null;
    byId('tags').hidden = true;
  });
  try {
    const res = await api('/api/whoami');
    if (res.status === 200 && res.body?.authEnabled === false) showDashboard(null);
    else if (res.status === 200 && res.body?.admin) showDashboard(String(res.body.user));
    else if (res.status === 200) signOut(session ? `${res.body?.user} is not a member of the admin group (auth.adminGroup).` : '');
    else signOut(res.status === 401 && session ? 'Signed out: the server no longer accepts these credentials.' : res.status === 401 ? '' : res.message);
  } catch (err) {
    byId('status').textContent = `The server did not answer: ${err instanceof Error ? err.message : String(err)}`;
  }
}

void start();

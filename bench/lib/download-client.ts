// One verified download in its own process (as the pull-through benchmark's client would be on
// another machine): prints "<MiB/s> <verified>". Usage: node --import tsx bench/lib/download-client.ts URL DIGEST
import { Agent } from 'undici';
import { download, mbps } from './measure.js';

const [url, digest] = process.argv.slice(2);
if (!url || !digest) throw new Error('usage: download-client.ts URL DIGEST');
const agent = new Agent();
const d = await download(url, digest, agent);
console.log(`${mbps(d.bytes, d.seconds)} ${d.verified}`);
await agent.close();

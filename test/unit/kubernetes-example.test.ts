// The single-node Kubernetes example (examples/kubernetes/): its configuration passes verify-config in the pod
// the Deployment makes (the Secret's token as the variable the configuration names, the ConfigMap mounted where
// the image reads it, the claim mounted where the data goes), the Service, the claim and the Deployment agree,
// and the probes ask paths that a Wharf started from that very configuration answers 200.
import { join } from 'node:path';
import t from 'tap';
import { buildApp } from '../../src/app.js';
import { parseListen } from '../../src/config/listen.js';
import { IMAGE_CONFIG, KubernetesSet, inside, kubernetesBytes, list, obj, portOf, rawConfig, root, str, variablesNamed, verifyIn } from '../helpers/example-container.js';

const kube = new KubernetesSet(join(root, 'examples', 'kubernetes'));
const { deployment, podSpec, podLabels, container } = kube;

t.test('kubernetes/: one pod on a persistent volume, whose configuration passes verify-config', async (t) => {
  t.ok(deployment, 'a Deployment');
  t.equal(Number(obj(deployment.spec).replicas), 1, 'of one replica: the metadata database is one process’s');
  t.equal(obj(obj(deployment.spec).strategy).type, 'Recreate', 'replaced by stopping the old pod first (the volume is ReadWriteOnce)');
  const c = kube.podContainer(t);
  const checked = await verifyIn(c);
  t.strictSame(checked.violations, [], 'verify-config finds nothing');
  t.strictSame(checked.warnings, [], 'and warns of nothing (no WHARF_* variable that is no key)');
  const config = checked.config;
  if (!config) return;
  t.notOk(config.metadata.postgres, 'metadata in SQLite on the volume');
  t.notOk(config.storage.s3, 'blobs on the volume');
  const named = variablesNamed(rawConfig(c, c.env.WHARF_CONFIG ?? IMAGE_CONFIG));
  for (const v of named) t.ok(list(container.env).some((e) => obj(e).name === v), `${v}, which the configuration names, is set by the Deployment`);
  t.equal(config.upstreams[0]?.password, kube.keyValue('Secret', 'wharf', 'dockerhub-token'), "the Secret's token reaches the Docker Hub upstream");
  t.same(config.upstreams.map((u) => u.registry).sort(), ['docker.io', 'ghcr.io', 'quay.io'], 'docker.io, ghcr.io and quay.io through one Wharf');

  // The data directory is the claim's mount, and the claim is larger than the cache may grow.
  const mount = list(container.volumeMounts).map(obj).find((m) => inside(c, str(m.mountPath) ?? '') === config.storage.path);
  t.ok(mount, `storage.path is a mount of the pod (${mount?.mountPath})`);
  const volume = list(podSpec.volumes).map(obj).find((v) => v.name === mount?.name);
  const claimName = str(obj(volume?.persistentVolumeClaim).claimName);
  const claim = kube.find('PersistentVolumeClaim', claimName ?? '');
  t.ok(claim, `the mount is the PersistentVolumeClaim ${claimName}`);
  t.strictSame(obj(claim?.spec).accessModes, ['ReadWriteOnce'], 'written by one pod');
  const size = kubernetesBytes(str(obj(obj(obj(claim?.spec).resources).requests).storage) ?? '0');
  t.ok(config.cache.maxSize > 0 && config.cache.maxSize < size, `cache.maxSize (${config.cache.maxSize}) leaves room on the claim (${size})`);
  t.ok(Number(podSpec.terminationGracePeriodSeconds ?? 30) * 1000 > config.shutdownTimeoutMs, 'terminationGracePeriodSeconds exceeds shutdownTimeoutMs');
});

t.test('kubernetes/: the probes ask what a Wharf started from the configuration answers 200, on its port', async (t) => {
  const c = kube.podContainer(t);
  const config = (await verifyIn(c)).config;
  if (!config) return t.fail('the configuration does not load');
  const port = parseListen(config.listen).port;
  const app = await buildApp({ ...config, gc: { ...config.gc, interval: 0 } }, { logStream: { write: () => undefined } });
  t.teardown(() => app.close());
  await app.ready();
  const paths = new Set<string>();
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
    const get = obj(obj(container[probe]).httpGet);
    t.ok(get.path, `${probe} is an HTTP GET`);
    t.equal(portOf(container, get.port), port, `${probe} on the port the configuration listens on`);
    const res = await app.inject({ method: 'GET', url: str(get.path) ?? '/' });
    t.equal(res.statusCode, 200, `${probe}: GET ${get.path} answers 200`);
    paths.add(str(get.path) ?? '');
  }
  t.ok(paths.has('/readyz'), 'readiness asks /readyz (the stores answer), not only /healthz (the process lives)');
});

t.test('kubernetes/: the Service reaches the pod on the port Wharf listens on', async (t) => {
  const selects = (selector: Record<string, unknown>): boolean => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => podLabels[k] === v);
  t.ok(selects(obj(obj(deployment.spec).selector).matchLabels as Record<string, unknown>), "the Deployment's selector matches its pod");
  const config = (await verifyIn(kube.podContainer(t))).config;
  const port = config ? parseListen(config.listen).port : undefined;
  const services = kube.ofKind('Service');
  t.ok(services.length > 0, 'a Service');
  for (const svc of services) {
    t.ok(selects(obj(obj(svc.spec).selector)), `Service ${svc.metadata.name} selects the pod`);
    for (const p of list(obj(svc.spec).ports).map(obj)) t.equal(portOf(container, p.targetPort ?? p.port), port, `port ${p.port} reaches the port Wharf listens on`);
  }
});

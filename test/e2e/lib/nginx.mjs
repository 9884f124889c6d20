// The real nginx binary with the repo's template (deploy/nginx/gateway.conf.template), rendered
// as the official nginx image renders /etc/nginx/templates/*.template: ${VAR} replaced by the
// environment's value. Several gateway replicas: the template's `server ${GATEWAY_ADDR} ...;`
// line once per replica (what nginx itself does for a name with several addresses, as the
// compose file's `gateway` alias is), every parameter of the line kept.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { REPO, freePort, sleep, isAlive } from './harness.mjs';
import { connect } from './http.mjs';

export const TEMPLATE = path.join(REPO, 'deploy/nginx/gateway.conf.template');

// envsubst as the nginx image's 20-envsubst-on-templates.sh runs it: only ${NAME} of the given
// variables is replaced (nginx's own $host etc. stay).
export function envsubst(text, vars) {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, name) => (name in vars ? vars[name] : m));
}

// The template's variables (${NAME}, outside comments).
export function templateVars(text) {
  const names = new Set();
  for (const line of text.split('\n')) {
    const code = line.replace(/#.*/, '');
    for (const m of code.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) names.add(m[1]);
  }
  return [...names].sort();
}

export function renderSite({ listen, gateways }) {
  const template = fs.readFileSync(TEMPLATE, 'utf8');
  const lines = template.split('\n');
  const i = lines.findIndex((l) => /^\s*server\s+\$\{GATEWAY_ADDR\}/.test(l));
  if (i < 0) throw new Error('the template has no `server ${GATEWAY_ADDR}` line');
  const serverLines = gateways.map((addr) => envsubst(lines[i], { GATEWAY_ADDR: addr }));
  const expanded = [...lines.slice(0, i), ...serverLines, ...lines.slice(i + 1)].join('\n');
  return envsubst(expanded, { NGINX_PORT: listen, GATEWAY_ADDR: gateways[0] });
}

const running = new Set();
process.on('exit', () => { for (const p of running) try { p.kill('SIGKILL'); } catch { /* gone */ } });

// Starts nginx in dir/nginx on a free port in front of the gateway addresses (host:port).
// The access log (one JSON object per request: upstream_addr, status, uri, request_time) is
// what tells which replica answered. -> {proc, port, dir, accessLog(), errorLog(), stop()}
export async function startNginx(dir, gateways, { workerConnections = 1024 } = {}) {
  const port = await freePort();
  const prefix = path.join(dir, 'nginx');
  fs.mkdirSync(prefix, { recursive: true });
  const accessLogFile = path.join(prefix, 'access.log');
  const errorLogFile = path.join(prefix, 'error.log');
  fs.writeFileSync(path.join(prefix, 'site.conf'), renderSite({ listen: `127.0.0.1:${port}`, gateways }));
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), `
    worker_processes 1;
    pid ${prefix}/nginx.pid;
    error_log ${errorLogFile} warn;
    events { worker_connections ${workerConnections}; }
    http {
      log_format probe escape=json '{"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
                                   '"status":$status,"uri":"$request_uri","request_time":$request_time}';
      access_log ${accessLogFile} probe;
      client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy;
      fastcgi_temp_path ${prefix}/fcgi; uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;
      include ${prefix}/site.conf;
    }`);
  const proc = spawn('nginx', ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'inherit', 'inherit'] });
  running.add(proc);
  const exited = new Promise((r) => proc.once('exit', r));
  exited.then(() => running.delete(proc));
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGQUIT');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    // The master is gone; make sure no worker outlives it.
    for (let i = 0; i < 50 && isAlive(proc.pid); i++) await sleep(20);
  };
  for (let i = 0; i < 100; i++) {
    try {
      (await connect(port)).destroy();
      return {
        proc, port, dir: prefix, stop,
        accessLog: () => (fs.existsSync(accessLogFile) ? fs.readFileSync(accessLogFile, 'utf8') : '')
          .split('\n').filter(Boolean).map((l) => JSON.parse(l)),
        errorLog: () => (fs.existsSync(errorLogFile) ? fs.readFileSync(errorLogFile, 'utf8') : ''),
      };
    } catch { await sleep(50); }
  }
  await stop();
  throw new Error(`nginx did not start:\n${fs.existsSync(errorLogFile) ? fs.readFileSync(errorLogFile, 'utf8') : ''}`);
}

// Streaming upstream and stream clients for bench/run.sh: one single-threaded epoll process, so
// the load side of the streaming benchmarks costs a few µs of CPU per chunk (Node or Python would
// need several times that, and 1,000 streams x 50 chunks/s would saturate the load-side core).
// Built by run.sh: cc -O2 -o streamer bench/streamer.c
//
//   streamer upstream [--port 0] [--chunks 8] [--interval 2]
//     An OpenAI-like upstream: POST <anything>/chat/completions. With "stream": true it answers a
//     chunked SSE stream shaped by the body field "bench" (nginx and the gateway forward it as is):
//       "bench":{"chunks":C,"interval_ms":I}  C content chunks I ms apart (defaults: --chunks and
//                                             --interval, used as they are when a proxy drops the
//                                             field, as Portkey does), then a finish chunk with
//                                             usage and `data: [DONE]`
//       "bench":{"idle":1}                    headers and one chunk, then nothing until the peer
//                                             closes the connection
//     Every content chunk's delta content is "<index>:<send time>;", the send time being
//     CLOCK_MONOTONIC in ns read just before the write(2) (one write per chunk). Without
//     "stream": true, a canned chat.completion. Prints {"listening":PORT}; SIGUSR1 prints
//     {"open_idle":N,"streams":N}.
//
//   streamer stream --port P --key K --model M --conns N --chunks C --interval I --rounds R
//                   [--header "Name: value"]...  (up to 8 extra request headers)
//     N keep-alive connections, each running R streamed requests back to back; connection k starts
//     k*C*I/N ms after the first, so the load is even. The first and the last round (ramp-up,
//     ramp-down) are not measured when R >= 3. Prints one JSON line with percentiles in µs of
//       ttfb_us         request written -> first content chunk read
//       first_delay_us  upstream wrote chunk 0 -> client read it (one-way delay of the first byte)
//       chunk_delay_us  upstream wrote chunk i -> client read it, for i >= 1
//     and error counts (non-200, closed connections, missing chunks, timeout) and its CPU time.
//
//   streamer idle --port P --key K --model M --n N [--window 500] [--hold-max 300]
//     Opens N idle streams ("bench":{"idle":1}), at most W not yet answered at a time; when each
//     got its first chunk (or failed) prints {"phase":"holding",...}, holds them until SIGUSR2 /
//     SIGTERM (or --hold-max s), prints {"phase":"released",...} (a stream that closed while held
//     is an error) and exits, closing them all.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "streamer: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(1);
}

// ---- growable byte buffer -----------------------------------------------------------------------
typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_append(buf_t *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 1024;
    while (c < b->len + n + 1) c *= 2;
    b->p = realloc(b->p, c);
    if (!b->p) die("out of memory");
    b->cap = c;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void buf_consume(buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
  } else {
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
  }
  if (b->p) b->p[b->len] = 0;
}
static void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

// ---- timers: a binary min-heap of (due, fd, generation) -----------------------------------------
typedef struct {
  uint64_t due;
  int fd;
  uint32_t gen;
} tmr_t;
static tmr_t *heap;
static size_t heap_n, heap_cap;

static void heap_push(uint64_t due, int fd, uint32_t gen) {
  if (heap_n == heap_cap) {
    heap_cap = heap_cap ? heap_cap * 2 : 1024;
    heap = realloc(heap, heap_cap * sizeof *heap);
    if (!heap) die("out of memory");
  }
  size_t i = heap_n++;
  heap[i] = (tmr_t){due, fd, gen};
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (heap[p].due <= heap[i].due) break;
    tmr_t t = heap[p];
    heap[p] = heap[i];
    heap[i] = t;
    i = p;
  }
}
static tmr_t heap_pop(void) {
  tmr_t top = heap[0];
  heap[0] = heap[--heap_n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < heap_n && heap[l].due < heap[m].due) m = l;
    if (r < heap_n && heap[r].due < heap[m].due) m = r;
    if (m == i) break;
    tmr_t t = heap[m];
    heap[m] = heap[i];
    heap[i] = t;
    i = m;
  }
  return top;
}
// epoll_wait timeout (ms, rounded up) until the next timer; -1 when there is none
static int heap_timeout(int cap_ms) {
  if (!heap_n) return cap_ms;
  uint64_t t = now_ns();
  if (heap[0].due <= t) return 0;
  uint64_t ms = (heap[0].due - t + 999999) / 1000000;
  if (cap_ms >= 0 && ms > (uint64_t)cap_ms) return cap_ms;
  return (int)ms;
}

// ---- helpers ------------------------------------------------------------------------------------
static int epfd;
static uint32_t next_gen = 1;

static void ep_add(int fd, uint32_t ev) {
  struct epoll_event e = {.events = ev, .data.fd = fd};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl add: %s", strerror(errno));
}
static void ep_mod(int fd, uint32_t ev) {
  struct epoll_event e = {.events = ev, .data.fd = fd};
  epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &e);
}
static int max_fds(void) {
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : (int)rl.rlim_cur;
}
static int signal_fd(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  sigaddset(&s, SIGUSR2);
  sigaddset(&s, SIGTERM);
  sigaddset(&s, SIGINT);
  sigprocmask(SIG_BLOCK, &s, NULL);
  signal(SIGPIPE, SIG_IGN);
  int fd = signalfd(-1, &s, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) die("signalfd: %s", strerror(errno));
  return fd;
}
static int read_signal(int sfd) {
  struct signalfd_siginfo si;
  if (read(sfd, &si, sizeof si) != sizeof si) return 0;
  return (int)si.ssi_signo;
}

// "key" (with quotes) in JSON text -> the number after it; def when absent
static double json_num(const char *s, const char *key, double def) {
  const char *p = strstr(s, key);
  if (!p) return def;
  p += strlen(key);
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (*p != ':') return def;
  p++;
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
  if (!strncmp(p, "true", 4)) return 1;
  if (!strncmp(p, "false", 5)) return 0;
  char *e;
  double v = strtod(p, &e);
  return e == p ? def : v;
}

// case-insensitive header value of a request/response head (NUL-terminated copy); NULL if absent
static const char *header(const char *head, size_t hlen, const char *name, char *out, size_t outsz) {
  size_t nl = strlen(name);
  const char *p = head, *end = head + hlen;
  while (p < end) {
    const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
      const char *v = p + nl + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      size_t n = (size_t)(eol - v);
      if (n >= outsz) n = outsz - 1;
      memcpy(out, v, n);
      out[n] = 0;
      return out;
    }
    p = eol + 2;
  }
  return NULL;
}

// Decodes a chunked body at s (n bytes) into out; returns bytes consumed, or 0 when incomplete.
static size_t dechunk(const char *s, size_t n, buf_t *out) {
  size_t i = 0;
  for (;;) {
    const char *eol = memmem(s + i, n - i, "\r\n", 2);
    if (!eol) return 0;
    unsigned long size = strtoul(s + i, NULL, 16);
    i = (size_t)(eol - s) + 2;
    if (size == 0) {  // trailers until the empty line
      for (;;) {
        const char *e2 = memmem(s + i, n - i, "\r\n", 2);
        if (!e2) return 0;
        size_t ll = (size_t)(e2 - (s + i));
        i += ll + 2;
        if (ll == 0) return i;
      }
    }
    if (n - i < size + 2) return 0;
    buf_append(out, s + i, size);
    i += size + 2;
  }
}

// ================================================================================================
// upstream
// ================================================================================================
typedef struct {
  int used;
  uint32_t gen;
  buf_t in, out;
  int streaming;  // a streamed response is in progress: no further request is parsed
  int idle;
  int chunks, sent;
  double interval_ms;
  uint64_t t0;
} sconn_t;
static sconn_t *sc;
static int def_chunks = 8;         // when the body has no "bench" (a proxy that drops unknown
static double def_interval = 2;    // fields, like Portkey): upstream --chunks / --interval
static int sc_n;
static long open_idle, streams_served;

static const char CHUNK_HEAD[] =
    "data: {\"id\":\"chatcmpl-benchstream\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_bench\",\"choices\":[{\"index\":0,\"delta\":{";
static const char CANNED[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\",\"refusal\":null},"
    "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,"
    "\"total_tokens\":13}}";

static void s_close(int fd) {
  sconn_t *c = &sc[fd];
  if (!c->used) return;
  if (c->streaming && c->idle) open_idle--;
  buf_free(&c->in);
  buf_free(&c->out);
  memset(c, 0, sizeof *c);
  close(fd);
}

// writes (or queues behind what is already queued); 0 on a dead connection
static int s_write(int fd, const char *p, size_t n) {
  sconn_t *c = &sc[fd];
  if (c->out.len == 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return 0;
      w = 0;
    }
    if ((size_t)w == n) return 1;
    p += w;
    n -= (size_t)w;
    ep_mod(fd, EPOLLIN | EPOLLOUT);
  }
  buf_append(&c->out, p, n);
  return 1;
}

// one HTTP chunk holding content chunk i (and, for the last one, the finish chunk, [DONE] and the
// terminating zero-size chunk), in one write
static int s_send_chunk(int fd) {
  sconn_t *c = &sc[fd];
  char frame[1024], msg[1200];
  int i = c->sent;
  int n = snprintf(frame, sizeof frame, "%s%s\"content\":\"%d:%llu;\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
                   CHUNK_HEAD, i == 0 ? "\"role\":\"assistant\"," : "", i, (unsigned long long)now_ns());
  int m = snprintf(msg, sizeof msg, "%x\r\n%.*s\r\n", n, n, frame);
  c->sent++;
  if (!c->idle && c->sent == c->chunks) {
    int f = snprintf(frame, sizeof frame,
                     "%s},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,"
                     "\"completion_tokens\":%d,\"total_tokens\":%d}}\n\ndata: [DONE]\n\n",
                     CHUNK_HEAD, c->chunks, 12 + c->chunks);
    m += snprintf(msg + m, sizeof msg - (size_t)m, "%x\r\n%.*s\r\n0\r\n\r\n", f, f, frame);
    c->streaming = 0;
    streams_served++;
  }
  return s_write(fd, msg, (size_t)m);
}

static void s_respond_plain(int fd, int status, const char *body) {
  char head[256];
  int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                   status, status == 200 ? "OK" : "Not Found", strlen(body));
  buf_t t = {0};
  buf_append(&t, head, (size_t)n);
  buf_append(&t, body, strlen(body));
  if (!s_write(fd, t.p, t.len)) s_close(fd);
  buf_free(&t);
}

// parses and answers every complete request in the input buffer (only one while streaming)
static void s_process(int fd) {
  sconn_t *c = &sc[fd];
  while (c->used && !c->streaming && c->in.len) {
    char *he = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!he) return;
    size_t hlen = (size_t)(he - c->in.p), bstart = hlen + 4, consumed;
    char v[64];
    buf_t body = {0};
    if (header(c->in.p, hlen, "content-length", v, sizeof v)) {
      size_t cl = strtoul(v, NULL, 10);
      if (c->in.len - bstart < cl) return;
      buf_append(&body, c->in.p + bstart, cl);
      consumed = bstart + cl;
    } else if (header(c->in.p, hlen, "transfer-encoding", v, sizeof v) && strcasestr(v, "chunked")) {
      size_t used = dechunk(c->in.p + bstart, c->in.len - bstart, &body);
      if (!used) {
        buf_free(&body);
        return;
      }
      consumed = bstart + used;
    } else {
      consumed = bstart;
    }
    buf_append(&body, "", 0);
    int is_chat = 0;
    {
      const char *sp = memchr(c->in.p, ' ', hlen);
      const char *sp2 = sp ? memchr(sp + 1, ' ', hlen - (size_t)(sp + 1 - c->in.p)) : NULL;
      const char *q = sp2 ? memchr(sp + 1, '?', (size_t)(sp2 - sp - 1)) : NULL;
      const char *pe = q ? q : sp2;
      static const char suf[] = "/chat/completions";
      if (!strncmp(c->in.p, "POST ", 5) && pe && (size_t)(pe - sp - 1) >= sizeof suf - 1 &&
          !memcmp(pe - (sizeof suf - 1), suf, sizeof suf - 1))
        is_chat = 1;
    }
    buf_consume(&c->in, consumed);
    if (!is_chat) {
      s_respond_plain(fd, 404, "{\"error\":{\"message\":\"not found\",\"type\":\"invalid_request_error\"}}");
    } else if (json_num(body.p, "\"stream\"", 0) != 1) {
      s_respond_plain(fd, 200, CANNED);
    } else {
      c->streaming = 1;
      c->idle = json_num(body.p, "\"idle\"", 0) != 0;
      c->chunks = (int)json_num(body.p, "\"chunks\"", def_chunks);
      if (c->chunks < 1) c->chunks = 1;
      c->interval_ms = json_num(body.p, "\"interval_ms\"", def_interval);
      c->sent = 0;
      c->t0 = now_ns();
      static const char H[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n";
      // the headers go out with chunk 0, in one write: s_write queues nothing when the socket takes it all
      char frame[1024], msg[1400];
      int n = snprintf(frame, sizeof frame,
                       "%s\"role\":\"assistant\",\"content\":\"0:%llu;\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
                       CHUNK_HEAD, (unsigned long long)now_ns());
      int m = snprintf(msg, sizeof msg, "%s%x\r\n%.*s\r\n", H, n, n, frame);
      c->sent = 1;
      if (c->idle) {
        open_idle++;
        if (!s_write(fd, msg, (size_t)m)) s_close(fd);
      } else if (c->chunks == 1) {
        // rare: a single chunk; send the head, then let s_send_chunk finish (sent is reset to 0)
        c->sent = 0;
        if (!s_write(fd, H, sizeof H - 1) || !s_send_chunk(fd)) s_close(fd);
      } else {
        if (!s_write(fd, msg, (size_t)m)) s_close(fd);
        else heap_push(c->t0 + (uint64_t)(c->interval_ms * 1e6), fd, c->gen);
      }
    }
    buf_free(&body);
  }
}

static int run_upstream(int port) {
  sc_n = max_fds();
  sc = calloc((size_t)sc_n, sizeof *sc);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  int sfd = signal_fd();
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0) die("bind: %s", strerror(errno));
  if (listen(ls, 4096) < 0) die("listen: %s", strerror(errno));
  socklen_t al = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &al);
  printf("{\"listening\":%d}\n", ntohs(a.sin_port));
  fflush(stdout);
  ep_add(ls, EPOLLIN);
  ep_add(sfd, EPOLLIN);
  struct epoll_event evs[512];
  char rb[65536];
  for (;;) {
    int n = epoll_wait(epfd, evs, 512, heap_timeout(-1));
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int k = 0; k < n; k++) {
      int fd = evs[k].data.fd;
      if (fd == sfd) {
        int sig = read_signal(sfd);
        if (sig == SIGUSR1) {
          printf("{\"open_idle\":%ld,\"streams\":%ld}\n", open_idle, streams_served);
          fflush(stdout);
        } else if (sig) {
          return 0;
        }
      } else if (fd == ls) {
        for (;;) {
          int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          if (cfd >= sc_n) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          sc[cfd].used = 1;
          sc[cfd].gen = next_gen++;
          ep_add(cfd, EPOLLIN);
        }
      } else {
        sconn_t *c = &sc[fd];
        if (!c->used) continue;
        if (evs[k].events & EPOLLOUT) {
          ssize_t w = send(fd, c->out.p, c->out.len, MSG_NOSIGNAL);
          if (w < 0 && errno != EAGAIN) {
            s_close(fd);
            continue;
          }
          if (w > 0) buf_consume(&c->out, (size_t)w);
          if (!c->out.len) ep_mod(fd, EPOLLIN);
        }
        if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          ssize_t r = read(fd, rb, sizeof rb);
          if (r == 0 || (r < 0 && errno != EAGAIN)) {
            s_close(fd);
            continue;
          }
          if (r > 0) {
            buf_append(&c->in, rb, (size_t)r);
            s_process(fd);
          }
        }
      }
    }
    // due chunks (up to 100 µs early: epoll_wait's resolution is 1 ms)
    uint64_t t = now_ns() + 100000;
    while (heap_n && heap[0].due <= t) {
      tmr_t tm = heap_pop();
      sconn_t *c = &sc[tm.fd];
      if (!c->used || c->gen != tm.gen || !c->streaming || c->idle) continue;
      if (!s_send_chunk(tm.fd)) {
        s_close(tm.fd);
        continue;
      }
      if (c->streaming)
        heap_push(c->t0 + (uint64_t)(c->sent * c->interval_ms * 1e6), tm.fd, tm.gen);
      else
        s_process(tm.fd);  // a request that arrived meanwhile
    }
  }
}

// ================================================================================================
// clients
// ================================================================================================
typedef struct {
  double *v;
  size_t n, cap;
} samples_t;
static void sample(samples_t *s, double x) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 4096;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    if (!s->v) die("out of memory");
  }
  s->v[s->n++] = x;
}
static int cmpd(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}
static void print_stats(const char *name, samples_t *s) {
  if (!s->n) {
    printf("\"%s\":null", name);
    return;
  }
  qsort(s->v, s->n, sizeof *s->v, cmpd);
  double sum = 0;
  for (size_t i = 0; i < s->n; i++) sum += s->v[i];
#define Q(p) s->v[(size_t)((p) / 100.0 * (double)s->n + 0.999999) > 0 ? (size_t)((p) / 100.0 * (double)s->n + 0.999999) - 1 : 0]
  printf("\"%s\":{\"n\":%zu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f}", name, s->n,
         sum / (double)s->n, Q(50), Q(90), Q(99), Q(99.9), s->v[s->n - 1]);
#undef Q
}

static const char *extra_headers[8];  // --header "Name: value" (stream and idle clients)
static int n_extra_headers;

static char *request_text(const char *key, const char *model, int port, const char *bench, size_t *len) {
  char body[1024], extra[2048] = "";
  for (int i = 0; i < n_extra_headers; i++) {
    size_t l = strlen(extra);
    snprintf(extra + l, sizeof extra - l, "%s\r\n", extra_headers[i]);
  }
  int bl = snprintf(body, sizeof body,
                    "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a concise assistant.\"},"
                    "{\"role\":\"user\",\"content\":\"Stream a short answer, please.\"}],\"stream\":true,\"bench\":%s}",
                    model, bench);
  char *r = malloc(4096);
  int n = snprintf(r, 4096,
                   "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nAccept: text/event-stream\r\n%sContent-Length: %d\r\n\r\n%s",
                   port, key, extra, bl, body);
  *len = (size_t)n;
  return r;
}

static int connect_nb(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

// error tally by message
#define MAXERR 16
static struct {
  char msg[96];
  long n;
} errs[MAXERR];
static void tally(const char *m) {
  for (int i = 0; i < MAXERR; i++) {
    if (!errs[i].n) {
      snprintf(errs[i].msg, sizeof errs[i].msg, "%s", m);
      errs[i].n = 1;
      return;
    }
    if (!strcmp(errs[i].msg, m)) {
      errs[i].n++;
      return;
    }
  }
}
static void print_errs(void) {
  printf("\"error_messages\":{");
  for (int i = 0; i < MAXERR && errs[i].n; i++) {
    printf("%s\"", i ? "," : "");
    for (const char *p = errs[i].msg; *p; p++)
      if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) putchar(*p);
    printf("\":%ld", errs[i].n);
  }
  printf("}");
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// ---- stream client ------------------------------------------------------------------------------
enum { P_HEAD, P_SIZE, P_DATA, P_TRAILER, P_FIXED };
typedef struct {
  int fd;  // -1 when not started / finished
  int connected, round, state, status, seen, finished;
  long left;
  uint64_t tsend;
  buf_t in, sse;
} cconn_t;

static struct {
  int port, conns, chunks, rounds, warm, tail;
  double interval;
  char *req;
  size_t req_len;
  cconn_t *c;
  int done;
  long streams, st_ok, st_other, e_status, e_conn, e_missing, e_parse, e_timeout;
  samples_t ttfb, first, delay;
} S;

static void c_finish(int k, int as_error) {
  cconn_t *c = &S.c[k];
  if (c->finished) return;
  c->finished = 1;
  if (as_error) S.e_conn++;
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  buf_free(&c->in);
  buf_free(&c->sse);
  S.done++;
}

static void c_send(int k) {
  cconn_t *c = &S.c[k];
  c->seen = 0;
  c->state = P_HEAD;
  c->tsend = now_ns();
  ssize_t w = send(c->fd, S.req, S.req_len, MSG_NOSIGNAL);
  if (w != (ssize_t)S.req_len) {
    tally(w < 0 ? strerror(errno) : "short write of the request");
    c_finish(k, 1);
  }
}

static void c_event(int k, const char *ev, size_t n, uint64_t rx) {
  cconn_t *c = &S.c[k];
  const char *p = memmem(ev, n, "\"content\":\"", 11);
  if (!p) return;
  p += 11;
  char *e;
  long i = strtol(p, &e, 10);
  if (*e != ':') return;
  unsigned long long tx = strtoull(e + 1, &e, 10);
  if (*e != ';') return;
  c->seen++;
  if (c->round < S.warm || c->round >= S.rounds - S.tail) return;
  if (i == 0) {
    sample(&S.ttfb, (double)(rx - c->tsend) / 1e3);
    sample(&S.first, ((double)rx - (double)tx) / 1e3);
  } else {
    sample(&S.delay, ((double)rx - (double)tx) / 1e3);
  }
}

static void c_body(int k, const char *s, size_t n, uint64_t rx) {
  cconn_t *c = &S.c[k];
  buf_append(&c->sse, s, n);
  size_t off = 0;
  for (;;) {
    char *e = memmem(c->sse.p + off, c->sse.len - off, "\n\n", 2);
    if (!e) break;
    c_event(k, c->sse.p + off, (size_t)(e - (c->sse.p + off)), rx);
    off = (size_t)(e - c->sse.p) + 2;
  }
  buf_consume(&c->sse, off);
}

// a response ended: next round or done
static void c_end(int k) {
  cconn_t *c = &S.c[k];
  S.streams++;
  if (c->status == 200) {
    S.st_ok++;
    if (c->seen != S.chunks) S.e_missing++;
  } else {
    S.st_other++;
    S.e_status++;
  }
  c->sse.len = 0;
  if (++c->round < S.rounds)
    c_send(k);
  else
    c_finish(k, 0);
}

static void c_feed(int k, uint64_t rx) {
  cconn_t *c = &S.c[k];
  for (;;) {
    if (c->finished) return;
    buf_t *b = &c->in;
    if (c->state == P_HEAD) {
      char *he = memmem(b->p, b->len, "\r\n\r\n", 4);
      if (!he) return;
      size_t hlen = (size_t)(he - b->p);
      c->status = atoi(b->p + 9);
      char v[64];
      if (header(b->p, hlen, "transfer-encoding", v, sizeof v) && strcasestr(v, "chunked")) {
        c->state = P_SIZE;
      } else if (header(b->p, hlen, "content-length", v, sizeof v)) {
        c->state = P_FIXED;
        c->left = strtol(v, NULL, 10);
      } else {
        tally("response without length or chunked framing");
        S.e_parse++;
        c_finish(k, 0);
        return;
      }
      buf_consume(b, hlen + 4);
    } else if (c->state == P_FIXED) {
      size_t take = (size_t)c->left < b->len ? (size_t)c->left : b->len;
      c_body(k, b->p, take, rx);
      buf_consume(b, take);
      c->left -= (long)take;
      if (c->left > 0) return;
      c_end(k);
    } else if (c->state == P_SIZE) {
      char *e = memmem(b->p, b->len, "\r\n", 2);
      if (!e) return;
      long size = strtol(b->p, NULL, 16);
      buf_consume(b, (size_t)(e - b->p) + 2);
      if (size == 0) {
        c->state = P_TRAILER;
      } else {
        c->state = P_DATA;
        c->left = size;
      }
    } else if (c->state == P_DATA) {
      if (c->left > 0) {
        size_t take = (size_t)c->left < b->len ? (size_t)c->left : b->len;
        if (!take) return;
        c_body(k, b->p, take, rx);
        buf_consume(b, take);
        c->left -= (long)take;
        if (c->left > 0) return;
      }
      if (b->len < 2) return;
      buf_consume(b, 2);  // CRLF after the chunk data
      c->state = P_SIZE;
    } else if (c->state == P_TRAILER) {
      char *e = memmem(b->p, b->len, "\r\n", 2);
      if (!e) return;
      size_t ll = (size_t)(e - b->p);
      buf_consume(b, ll + 2);
      if (ll == 0) c_end(k);
    }
  }
}

static int run_stream(const char *key, const char *model, double timeout_s) {
  char bench[128];
  snprintf(bench, sizeof bench, "{\"chunks\":%d,\"interval_ms\":%g}", S.chunks, S.interval);
  S.req = request_text(key, model, S.port, bench, &S.req_len);
  S.warm = S.rounds >= 3 ? 1 : 0;
  S.tail = S.rounds >= 3 ? 1 : 0;
  S.c = calloc((size_t)S.conns, sizeof *S.c);
  int nfd = max_fds();
  int *by_fd = malloc((size_t)nfd * sizeof(int));
  for (int i = 0; i < nfd; i++) by_fd[i] = -1;
  for (int k = 0; k < S.conns; k++) S.c[k].fd = -1;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  signal(SIGPIPE, SIG_IGN);
  double cpu0 = cpu_us();
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(timeout_s * 1e9);
  double stagger_ns = S.conns > 1 ? (double)S.chunks * S.interval * 1e6 / S.conns : 0;
  for (int k = 0; k < S.conns; k++) heap_push(t0 + (uint64_t)(k * stagger_ns), k, 0);
  struct epoll_event evs[512];
  char rb[65536];
  while (S.done < S.conns) {
    if (now_ns() > deadline) {
      for (int k = 0; k < S.conns; k++)
        if (!S.c[k].finished) {
          S.e_timeout++;
          c_finish(k, 0);
        }
      break;
    }
    int n = epoll_wait(epfd, evs, 512, heap_timeout(100));
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    uint64_t rx = now_ns();
    for (int i = 0; i < n; i++) {
      int k = by_fd[evs[i].data.fd];
      if (k < 0) continue;
      cconn_t *c = &S.c[k];
      if (c->finished) continue;
      if (!c->connected) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
          tally(strerror(err));
          by_fd[c->fd] = -1;
          c_finish(k, 1);
          continue;
        }
        c->connected = 1;
        ep_mod(c->fd, EPOLLIN);
        c_send(k);
        continue;
      }
      ssize_t r = read(c->fd, rb, sizeof rb);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        tally(r == 0 ? "connection closed by the server" : strerror(errno));
        by_fd[c->fd] = -1;
        c_finish(k, 1);
        continue;
      }
      buf_append(&c->in, rb, (size_t)r);
      int fd = c->fd;
      c_feed(k, rx);
      if (c->finished && fd >= 0) by_fd[fd] = -1;
    }
    uint64_t t = now_ns();
    while (heap_n && heap[0].due <= t) {
      tmr_t tm = heap_pop();
      cconn_t *c = &S.c[tm.fd];
      c->fd = connect_nb(S.port);
      if (c->fd < 0) {
        tally(strerror(errno));
        c_finish(tm.fd, 1);
        continue;
      }
      if (c->fd >= nfd) die("fd %d beyond the limit", c->fd);
      by_fd[c->fd] = tm.fd;
      ep_add(c->fd, EPOLLOUT);
    }
  }
  double wall = (double)(now_ns() - t0) / 1e9;
  printf("{\"mode\":\"stream\",\"conns\":%d,\"chunks\":%d,\"interval_ms\":%g,\"rounds\":%d,\"measured_rounds\":%d,"
         "\"streams\":%ld,\"statuses\":{\"200\":%ld,\"other\":%ld},\"errors\":{\"status\":%ld,\"conn\":%ld,"
         "\"missing\":%ld,\"parse\":%ld,\"timeout\":%ld},",
         S.conns, S.chunks, S.interval, S.rounds, S.rounds - S.warm - S.tail, S.streams, S.st_ok, S.st_other,
         S.e_status, S.e_conn, S.e_missing, S.e_parse, S.e_timeout);
  print_errs();
  printf(",");
  print_stats("ttfb_us", &S.ttfb);
  printf(",");
  print_stats("first_delay_us", &S.first);
  printf(",");
  print_stats("chunk_delay_us", &S.delay);
  printf(",\"client_cpu_us\":%.0f,\"wall_s\":%.3f}\n", cpu_us() - cpu0, wall);
  fflush(stdout);
  return 0;
}

// ---- idle client --------------------------------------------------------------------------------
enum { I_FREE, I_CONNECTING, I_WAITING, I_HELD, I_DONE };
static int run_idle(int port, const char *key, const char *model, int n, int window, double hold_max) {
  size_t req_len;
  char *req = request_text(key, model, port, "{\"idle\":1}", &req_len);
  int nfd = max_fds();
  unsigned char *st = calloc((size_t)nfd, 1);
  buf_t *in = calloc((size_t)nfd, sizeof *in);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  int sfd = signal_fd();
  ep_add(sfd, EPOLLIN);
  int started = 0, pending = 0, held = 0, failed = 0, non200 = 0, dropped = 0, ready = 0, released = 0;
  uint64_t t0 = now_ns();
  struct epoll_event evs[512];
  char rb[4096];
  const char *why = "hold-max";
  for (;;) {
    while (!released && pending < window && started < n) {
      started++;
      int fd = connect_nb(port);
      if (fd < 0) {
        tally(strerror(errno));
        failed++;
        continue;
      }
      if (fd >= nfd) die("fd %d beyond the limit", fd);
      st[fd] = I_CONNECTING;
      pending++;
      ep_add(fd, EPOLLOUT);
    }
    if (!ready && held + failed == n) {
      ready = 1;
      printf("{\"phase\":\"holding\",\"n\":%d,\"held\":%d,\"failed\":%d,\"non_200\":%d,\"open_s\":%.3f,", n, held,
             failed, non200, (double)(now_ns() - t0) / 1e9);
      print_errs();
      printf("}\n");
      fflush(stdout);
    }
    if (released) break;
    if ((double)(now_ns() - t0) / 1e9 > hold_max) break;
    int m = epoll_wait(epfd, evs, 512, 1000);
    if (m < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < m; i++) {
      int fd = evs[i].data.fd;
      if (fd == sfd) {
        int sig = read_signal(sfd);
        if (sig == SIGUSR2 || sig == SIGTERM || sig == SIGINT) {
          released = 1;
          why = "signal";
        }
        continue;
      }
      if (st[fd] == I_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
          tally(err ? strerror(err) : "request write failed");
          goto fail;
        }
        st[fd] = I_WAITING;
        ep_mod(fd, EPOLLIN);
        continue;
      }
      ssize_t r = read(fd, rb, sizeof rb);
      if (r < 0 && errno == EAGAIN) continue;
      if (r <= 0) {
        if (st[fd] == I_HELD) {
          held--;
          dropped++;
          tally("closed while held");
          st[fd] = I_DONE;
          epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
          close(fd);
          buf_free(&in[fd]);
          continue;
        }
        tally(r == 0 ? "closed before the first chunk" : strerror(errno));
        goto fail;
      }
      if (st[fd] != I_WAITING) continue;  // held: more bytes are fine, ignored
      buf_append(&in[fd], rb, (size_t)r);
      if (in[fd].len >= 12 && strncmp(in[fd].p, "HTTP/1.1 200", 12) != 0) {
        char line[64];
        char *e = memchr(in[fd].p, '\r', in[fd].len);
        snprintf(line, sizeof line, "%.*s", e ? (int)(e - in[fd].p) : 12, in[fd].p);
        tally(line);
        non200++;
        goto fail;
      }
      if (memmem(in[fd].p, in[fd].len, "data:", 5)) {
        st[fd] = I_HELD;
        pending--;
        held++;
        buf_free(&in[fd]);
      }
      continue;
    fail:
      st[fd] = I_DONE;
      pending--;
      failed++;
      epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
      close(fd);
      buf_free(&in[fd]);
    }
  }
  printf("{\"phase\":\"released\",\"why\":\"%s\",\"n\":%d,\"held_at_release\":%d,\"dropped_while_held\":%d,"
         "\"failed\":%d,\"non_200\":%d,\"client_cpu_us\":%.0f,",
         why, n, held, dropped, failed, non200, cpu_us());
  print_errs();
  printf("}\n");
  fflush(stdout);
  return 0;  // exit closes every socket
}

int main(int argc, char **argv) {
  if (argc < 2) die("usage: streamer upstream|stream|idle [--options] (see the head of bench/streamer.c)");
  const char *mode = argv[1];
  int port = 0, conns = 1, chunks = 8, rounds = 3, n = 100, window = 500;
  double interval = 2, timeout = 0, hold_max = 300;
  const char *key = "sk-bench", *model = "gpt-bench-stream";
  for (int i = 2; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--conns")) conns = atoi(v);
    else if (!strcmp(k, "--chunks")) chunks = atoi(v);
    else if (!strcmp(k, "--rounds")) rounds = atoi(v);
    else if (!strcmp(k, "--interval")) interval = atof(v);
    else if (!strcmp(k, "--timeout")) timeout = atof(v);
    else if (!strcmp(k, "--n")) n = atoi(v);
    else if (!strcmp(k, "--window")) window = atoi(v);
    else if (!strcmp(k, "--hold-max")) hold_max = atof(v);
    else if (!strcmp(k, "--key")) key = v;
    else if (!strcmp(k, "--model")) model = v;
    else if (!strcmp(k, "--header")) {
      if (n_extra_headers == (int)(sizeof extra_headers / sizeof *extra_headers)) die("too many --header");
      extra_headers[n_extra_headers++] = v;
    }
    else die("unknown option %s", k);
  }
  if (!strcmp(mode, "upstream")) {
    def_chunks = chunks;
    def_interval = interval;
    return run_upstream(port);
  }
  if (!strcmp(mode, "stream")) {
    S.port = port;
    S.conns = conns;
    S.chunks = chunks;
    S.rounds = rounds;
    S.interval = interval;
    if (timeout <= 0) timeout = 30 + (rounds + 2) * chunks * interval / 1000 * 3;
    return run_stream(key, model, timeout);
  }
  if (!strcmp(mode, "idle")) return run_idle(port, key, model, n, window, hold_max);
  die("unknown mode %s", mode);
}

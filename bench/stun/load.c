/*
 * Closed-loop STUN Binding load generator for bench/stun.
 *
 * Keeps `window` requests outstanding on each of `sockets` connected UDP sockets. Every request
 * is a plain 20-byte Binding request (RFC 8489 §5, §6.1) whose transaction id names its slot
 * (bytes 0-3), a generation (4-7) and 4 random bytes (8-11). A datagram counts only if it is a
 * Binding success response (type 0x0101), carries the magic cookie, has a length field that
 * matches its size, and echoes the transaction id the slot is currently waiting for; the slot
 * is then reissued at once with a new id. A slot that waits longer than `timeout-ms` (request
 * or response dropped) is reissued too and counted as a timeout, so drops shrink the window
 * only briefly.
 *
 * Batched with recvmmsg/sendmmsg and driven by epoll, so that one core of generator costs far
 * less per request than one core of server: the bench checks this against bench/stun/echo.c.
 *
 * Bounded: runs warm-up + duration and exits. Prints one JSON object on stdout.
 *
 *   load --port P [--host 127.0.0.1] [--sockets 4] [--window 32] [--warmup-ms 3000]
 *        [--duration-ms 5000] [--timeout-ms 200] [--server-pid PID]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../support/load.h"

#define MAX_SOCKETS 64
#define MAX_WINDOW 4096
#define BATCH 64
#define HEADER 20
#define MAGIC_COOKIE 0x2112A442u

struct slot {
  uint8_t request[HEADER];
  uint32_t generation;
  int queued; /* answered (or late) and waiting in the send queue: further copies are stale */
  uint64_t sent_ns;
};

struct peer_socket {
  int fd;
  struct slot *slots;
  uint32_t queue[MAX_WINDOW]; /* slots waiting to be (re)sent */
  int queued;
};

static struct peer_socket sockets_[MAX_SOCKETS];
static int n_sockets = 4, window = 32;
static uint64_t sent, valid, invalid, stale, timeouts, send_errors;
static uint32_t rng_state = 0x9e3779b9u;

static uint32_t xorshift32(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

/* A fresh Binding request for slot `index`: type 0x0001, length 0, cookie, new transaction id. */
static void renew(struct slot *s, uint32_t index) {
  s->generation++;
  uint8_t *r = s->request;
  r[0] = 0x00; r[1] = 0x01; r[2] = 0; r[3] = 0;
  put32(r + 4, MAGIC_COOKIE);
  put32(r + 8, index);
  put32(r + 12, s->generation);
  put32(r + 16, xorshift32());
}

static void flush(struct peer_socket *ps) {
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  int done = 0;
  uint64_t t = now_ns();
  while (done < ps->queued) {
    int n = ps->queued - done < BATCH ? ps->queued - done : BATCH;
    for (int i = 0; i < n; i++) {
      struct slot *s = &ps->slots[ps->queue[done + i]];
      renew(s, ps->queue[done + i]);
      s->queued = 0;
      s->sent_ns = t;
      mmsg_entry(&msgs[i], &iov[i], s->request, HEADER, NULL, 0);
    }
    int m = sendmmsg(ps->fd, msgs, n, MSG_DONTWAIT);
    if (m < 0) m = 0;
    sent += m;
    /* Unsent requests keep their fresh send time: the timeout scan reissues them. */
    send_errors += n - m;
    done += n;
  }
  ps->queued = 0;
}

/* Is `b` (n bytes) the Binding success response slot `index` of `ps` waits for? */
static int accept_response(struct peer_socket *ps, const uint8_t *b, unsigned n) {
  if (n < HEADER || b[0] != 0x01 || b[1] != 0x01) return -1;
  unsigned length = ((unsigned)b[2] << 8) | b[3];
  if (length % 4 != 0 || length + HEADER != n || get32(b + 4) != MAGIC_COOKIE) return -1;
  uint32_t index = get32(b + 8);
  if (index >= (uint32_t)window) return -1;
  if (ps->slots[index].queued || memcmp(b + 8, ps->slots[index].request + 8, 12) != 0) return 0; /* late or duplicate */
  return (int)index + 1;
}

static void drain(struct peer_socket *ps) {
  static uint8_t buffers[BATCH][1500];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) mmsg_entry(&msgs[i], &iov[i], buffers[i], sizeof buffers[i], NULL, 0);
    int m = recvmmsg(ps->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (m <= 0) break;
    for (int i = 0; i < m; i++) {
      int r = accept_response(ps, buffers[i], msgs[i].msg_len);
      if (r < 0) invalid++;
      else if (r == 0) stale++;
      else {
        valid++;
        ps->slots[r - 1].queued = 1;
        ps->queue[ps->queued++] = (uint32_t)(r - 1);
      }
    }
    if (m < BATCH) break;
  }
  flush(ps);
}

static void reissue_late(uint64_t timeout_ns) {
  uint64_t t = now_ns();
  for (int k = 0; k < n_sockets; k++) {
    struct peer_socket *ps = &sockets_[k];
    for (int i = 0; i < window; i++) {
      if (!ps->slots[i].queued && t - ps->slots[i].sent_ns > timeout_ns) {
        timeouts++;
        ps->slots[i].queued = 1;
        ps->queue[ps->queued++] = (uint32_t)i;
      }
    }
    flush(ps);
  }
}

static void usage(const char *why) {
  fprintf(stderr, "load: %s\nusage: load --port P [--host 127.0.0.1] [--sockets 4] [--window 32] "
          "[--warmup-ms 3000] [--duration-ms 5000] [--timeout-ms 200] [--server-pid PID]\n", why);
  exit(2);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  int port = 0;
  struct load_timing timing = { .warmup_ms = 3000, .duration_ms = 5000, .timeout_ms = 200 };
  int handled;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage("every option takes a value");
    const char *k = argv[i], *v = argv[++i];
    if (!strcmp(k, "--host")) host = v;
    else if (!strcmp(k, "--port")) port = atoi(v);
    else if (!strcmp(k, "--sockets")) n_sockets = atoi(v);
    else if (!strcmp(k, "--window")) window = atoi(v);
    else if ((handled = timing_option(k, v, &timing)) < 0) usage("durations must be positive");
    else if (!handled) usage("unknown option");
  }
  if (port <= 0 || port > 65535) usage("--port must be 1-65535");
  if (n_sockets < 1 || n_sockets > MAX_SOCKETS) usage("--sockets must be 1-64");
  if (window < 1 || window > MAX_WINDOW) usage("--window must be 1-4096");

  struct sockaddr_in server = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  if (inet_pton(AF_INET, host, &server.sin_addr) != 1) usage("--host must be an IPv4 address");
  struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr = server.sin_addr };
  rng_state ^= (uint32_t)now_ns() | 1u;

  int ep = epoll_create1(0);
  if (ep < 0) { perror("load: epoll_create1"); return 1; }
  for (int k = 0; k < n_sockets; k++) {
    struct peer_socket *ps = &sockets_[k];
    ps->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int size = 4 << 20;
    setsockopt(ps->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(ps->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    if (ps->fd < 0 || bind(ps->fd, (struct sockaddr *)&local, sizeof local) < 0 ||
        connect(ps->fd, (struct sockaddr *)&server, sizeof server) < 0) {
      perror("load: socket");
      return 1;
    }
    ps->slots = calloc((size_t)window, sizeof *ps->slots);
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
    epoll_ctl(ep, EPOLL_CTL_ADD, ps->fd, &ev);
    for (int i = 0; i < window; i++) {
      ps->slots[i].queued = 1;
      ps->queue[ps->queued++] = (uint32_t)i;
    }
    flush(ps);
  }

  const uint64_t start = now_ns();
  const uint64_t measure_from = start + (uint64_t)timing.warmup_ms * 1000000u;
  const uint64_t measure_to = measure_from + (uint64_t)timing.duration_ms * 1000000u;
  const uint64_t timeout_ns = (uint64_t)timing.timeout_ms * 1000000u;
  uint64_t next_scan = start + timeout_ns / 2, t0 = 0, t1 = 0;
  uint64_t valid0 = 0, sent0 = 0, timeouts0 = 0, invalid0 = 0, stale0 = 0;
  struct cpu_mark mark0, mark1;
  int measuring = 0;
  struct epoll_event events[MAX_SOCKETS];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_SOCKETS, 5);
    if (n < 0 && errno != EINTR) { perror("load: epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) drain(&sockets_[events[i].data.u32]);
    uint64_t t = now_ns();
    if (t >= next_scan) {
      reissue_late(timeout_ns);
      next_scan = t + timeout_ns / 2;
    }
    if (!measuring && t >= measure_from) {
      measuring = 1;
      t0 = t;
      valid0 = valid; sent0 = sent; timeouts0 = timeouts; invalid0 = invalid; stale0 = stale;
      cpu_mark(&mark0, timing.server_pid);
    }
    if (measuring && t >= measure_to) {
      t1 = t;
      break;
    }
  }
  const double seconds = (double)(t1 - t0) / 1e9;
  cpu_mark(&mark1, timing.server_pid);
  const uint64_t counted = valid - valid0;
  printf("{\"valid\":%llu,\"seconds\":%.6f,\"rate\":%.1f,\"sent\":%llu,\"timeouts\":%llu,\"stale\":%llu,\"invalid\":%llu,"
         "\"sendErrors\":%llu,\"sockets\":%d,\"window\":%d,",
         (unsigned long long)counted, seconds, (double)counted / seconds, (unsigned long long)(sent - sent0),
         (unsigned long long)(timeouts - timeouts0), (unsigned long long)(stale - stale0),
         (unsigned long long)(invalid - invalid0), (unsigned long long)send_errors, n_sockets, window);
  print_cpu_span(stdout, &mark0, &mark1, seconds);
  printf("}\n");
  return 0;
}

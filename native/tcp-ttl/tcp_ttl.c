/*
 * natpunch tcp-ttl: the few socket calls Node has no API for, for low-TTL SYN priming
 * (Guha & Francis, "Characterization and Measurement of TCP Traversal through NATs and
 * Firewalls", IMC 2005, §4 STUNT) and for measuring where the own NAT sits on the path.
 *
 * Linux only (IP_RECVERR, MSG_ERRQUEUE, IP_MINTTL). Every call returns at once, except
 * traceHops, which runs on the libuv thread pool (napi async work) and is bounded by waitMs.
 * Errors are thrown as Error with `code` set to the errno name (EADDRINUSE, ...) and a message
 * that says which call failed on which endpoint.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACE_TTL 16
/* First destination port of the probes, as traceroute(8) -U uses (IANA: traceroute). */
#define TRACE_BASE_PORT 33434

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char message[512];
  const char *name = strerrorname_np(err);
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, name ? name : "EUNKNOWN", message);
  return NULL;
}

static int get_string(napi_env env, napi_value value, char *out, size_t size) {
  size_t len = 0;
  return napi_get_value_string_utf8(env, value, out, size, &len) == napi_ok ? 0 : -1;
}

static int get_int(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok ? 0 : -1;
}

static int parse_endpoint(const char *address, int32_t port, struct sockaddr_in *out) {
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, address, &out->sin_addr) == 1 && port >= 0 && port <= 65535 ? 0 : -1;
}

/* Arguments shared by primeSyn and primedConnect: localAddress, localPort, remoteAddress, remotePort, ttl. */
struct syn_args {
  struct sockaddr_in local, remote;
  int32_t ttl;
  int quiet;
  char where[200];
};

static int read_syn_args(napi_env env, napi_callback_info info, struct syn_args *a) {
  size_t argc = 6;
  napi_value argv[6];
  char local[64], remote[64];
  int32_t lport, rport;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      get_string(env, argv[0], local, sizeof local) || get_int(env, argv[1], &lport) ||
      get_string(env, argv[2], remote, sizeof remote) || get_int(env, argv[3], &rport) ||
      get_int(env, argv[4], &a->ttl)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (localAddress: string, localPort: number, remoteAddress: string, remotePort: number, ttl: number, quiet?: boolean)");
    return -1;
  }
  if (parse_endpoint(local, lport, &a->local) || parse_endpoint(remote, rport, &a->remote) || a->ttl < 1 || a->ttl > 255) {
    char message[300];
    snprintf(message, sizeof message, "expected IPv4 addresses, ports 0-65535 and a TTL 1-255, got %s:%d -> %s:%d TTL %d", local, lport, remote, rport, a->ttl);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return -1;
  }
  snprintf(a->where, sizeof a->where, "%s:%d -> %s:%d (TTL %d)", local, lport, remote, rport, a->ttl);
  a->quiet = 1;
  bool quiet;
  if (argc >= 6 && napi_get_value_bool(env, argv[5], &quiet) == napi_ok) a->quiet = quiet;
  return 0;
}

/*
 * socket, SO_REUSEADDR (as libuv sets it on Node's sockets bound to L, so this bind may share
 * L with the kept STUN/TCP connection and the punching connects), bind, IP_TTL, optionally
 * IP_MINTTL, non-blocking connect: the SYN leaves at once with the low TTL (EINPROGRESS).
 * Returns the fd, or -1 with the exception thrown.
 */
static int send_low_ttl_syn(napi_env env, struct syn_args *a, int quiet) {
  char what[256];
  int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "tcp-ttl: socket()"), -1;
  const char *step = "setsockopt(SO_REUSEADDR)";
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
  step = "bind";
  if (bind(fd, (struct sockaddr *)&a->local, sizeof a->local) < 0) goto fail;
  step = "setsockopt(IP_TTL)";
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &a->ttl, sizeof a->ttl) < 0) goto fail;
  if (quiet) {
    /*
     * The SYN's ICMP time-exceeded comes back through our NAT, and Linux aborts a SYN-SENT
     * socket on it (tcp_v4_err: EHOSTUNREACH). IP_MINTTL 255 (RFC 5082 GTSM) makes tcp_v4_err
     * and tcp_v4_rcv ignore everything for this socket until endQuiet(): the ICMP error, and
     * an early SYN of the other peer, which is dropped silently rather than answered with RST
     * (the other side's kernel retransmits it).
     */
    int min_ttl = 255;
    step = "setsockopt(IP_MINTTL)";
    if (setsockopt(fd, IPPROTO_IP, IP_MINTTL, &min_ttl, sizeof min_ttl) < 0) goto fail;
  }
  step = "connect";
  if (connect(fd, (struct sockaddr *)&a->remote, sizeof a->remote) < 0 && errno != EINPROGRESS) goto fail;
  return fd;
fail: {
    int err = errno;
    close(fd);
    snprintf(what, sizeof what, "tcp-ttl: %s %s", step, a->where);
    throw_errno(env, err, what);
    return -1;
  }
}

/*
 * primeSyn(localAddress, localPort, remoteAddress, remotePort, ttl): one SYN with a low TTL,
 * then close. Closing a socket in SYN-SENT sends nothing (tcp_close: SYN-SENT -> CLOSE, no FIN
 * and no RST; seen with tcpdump in the lab, test/lab/connect-tcp-rst.test.ts), so the only
 * packet is the SYN that dies on the way and leaves a conntrack entry in the NATs it passed.
 */
static napi_value prime_syn(napi_env env, napi_callback_info info) {
  struct syn_args a;
  if (read_syn_args(env, info, &a)) return NULL;
  int fd = send_low_ttl_syn(env, &a, 0);
  if (fd < 0) return NULL;
  close(fd);
  return NULL;
}

/*
 * primedConnect(localAddress, localPort, remoteAddress, remotePort, ttl, quiet = true) -> fd: the same SYN,
 * but the socket stays in SYN-SENT and becomes the connection: its TTL goes back to the
 * default at once (its retransmitted SYN and its SYN-ACK in a simultaneous open reach the
 * peer), and it ignores ICMP and inbound segments until endQuiet(fd). Keeping the socket keeps
 * one initial sequence number for the NAT's conntrack entry and leaves no moment in which the
 * other peer's SYN finds no socket and is answered with RST.
 */
static napi_value primed_connect(napi_env env, napi_callback_info info) {
  struct syn_args a;
  if (read_syn_args(env, info, &a)) return NULL;
  int fd = send_low_ttl_syn(env, &a, a.quiet);
  if (fd < 0) return NULL;
  int dflt = -1; /* -1: the route's default TTL (ip(7)) */
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &dflt, sizeof dflt) < 0) {
    int err = errno;
    close(fd);
    char what[256];
    snprintf(what, sizeof what, "tcp-ttl: setsockopt(IP_TTL, default) %s", a.where);
    return throw_errno(env, err, what);
  }
  napi_value result;
  napi_create_int32(env, fd, &result);
  return result;
}

static int fd_arg(napi_env env, napi_callback_info info, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || get_int(env, argv[0], fd) || *fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected a file descriptor from primedConnect()");
    return -1;
  }
  return 0;
}

/* endQuiet(fd): IP_MINTTL back to 0, so the primed socket takes the other peer's packets. */
static napi_value end_quiet(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (fd_arg(env, info, &fd)) return NULL;
  int zero = 0;
  if (setsockopt(fd, IPPROTO_IP, IP_MINTTL, &zero, sizeof zero) < 0) return throw_errno(env, errno, "tcp-ttl: setsockopt(IP_MINTTL, 0)");
  return NULL;
}

/* connectState(fd) -> 'connecting' | 'connected' | errno name (the connect failed). Never blocks. */
static napi_value connect_state(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (fd_arg(env, info, &fd)) return NULL;
  struct pollfd p = { .fd = fd, .events = POLLOUT };
  const char *state = "connecting";
  if (poll(&p, 1, 0) < 0) return throw_errno(env, errno, "tcp-ttl: poll");
  if (p.revents & POLLNVAL) return throw_errno(env, EBADF, "tcp-ttl: connectState");
  if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return throw_errno(env, errno, "tcp-ttl: getsockopt(SO_ERROR)");
    if (err == 0 && (p.revents & POLLOUT)) state = "connected";
    else if (err != 0) state = strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN";
    else state = "ECONNRESET";
  }
  napi_value result;
  napi_create_string_utf8(env, state, NAPI_AUTO_LENGTH, &result);
  return result;
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (fd_arg(env, info, &fd)) return NULL;
  close(fd);
  return NULL;
}

/*
 * traceHops(targetAddress, maxTtl, waitMs, localAddress) -> Promise<{ ttl, offender, type, code }[]>
 * A traceroute without privileges (as traceroute(8) does without root): one UDP datagram per
 * TTL 1..maxTtl to ports 33434+ttl of targetAddress, each carrying its TTL, from a socket with
 * IP_RECVERR; the ICMP errors they cause are read from the error queue (MSG_ERRQUEUE) with the
 * offender's address (SO_EE_OFFENDER). Unanswered TTLs are probed once more after a third of
 * waitMs (one lost probe or rate-limited ICMP error must not look like a silent hop).
 * One entry per answered TTL: type 11 (time exceeded) from a router on the way, type 3
 * (unreachable) from the target or a router that refused it.
 */
struct hop { int ttl, type, code; char offender[INET_ADDRSTRLEN]; };
struct trace_work {
  napi_async_work work;
  napi_deferred deferred;
  struct sockaddr_in target, local;
  int max_ttl, wait_ms, err;
  char failed_step[64];
  struct hop hops[MAX_TRACE_TTL + 1];
};

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int send_probe(int fd, struct trace_work *w, int ttl) {
  struct sockaddr_in dst = w->target;
  unsigned char payload[4] = { 'n', 'p', 't', (unsigned char)ttl };
  dst.sin_port = htons((uint16_t)(TRACE_BASE_PORT + ttl));
  if (setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl) < 0) return -1;
  /* ECONNREFUSED & co. here report an earlier probe's error: the error queue has the details. */
  if (sendto(fd, payload, sizeof payload, 0, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH) return -1;
  return 0;
}

static void drain_errors(int fd, struct trace_work *w) {
  for (;;) {
    unsigned char payload[64];
    char control[512];
    struct sockaddr_in from;
    struct iovec iov = { payload, sizeof payload };
    struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    ssize_t n = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) return;
    if (n < 4 || memcmp(payload, "npt", 3) != 0) continue;
    int ttl = payload[3];
    if (ttl < 1 || ttl > w->max_ttl) continue;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_IP || c->cmsg_type != IP_RECVERR) continue;
      struct sock_extended_err *ee = (struct sock_extended_err *)CMSG_DATA(c);
      if (ee->ee_origin != SO_EE_ORIGIN_ICMP) continue;
      struct sockaddr_in *off = (struct sockaddr_in *)SO_EE_OFFENDER(ee);
      struct hop *h = &w->hops[ttl];
      h->ttl = ttl;
      h->type = ee->ee_type;
      h->code = ee->ee_code;
      if (off->sin_family == AF_INET) inet_ntop(AF_INET, &off->sin_addr, h->offender, sizeof h->offender);
    }
  }
}

static void trace_execute(napi_env env, void *data) {
  (void)env;
  struct trace_work *w = data;
  int one = 1, fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const char *step = "socket()";
  if (fd < 0) goto fail;
  step = "setsockopt(IP_RECVERR)";
  if (setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one) < 0) goto fail;
  step = "bind";
  if (bind(fd, (struct sockaddr *)&w->local, sizeof w->local) < 0) goto fail;
  step = "sendto";
  for (int ttl = 1; ttl <= w->max_ttl; ttl++) if (send_probe(fd, w, ttl) < 0) goto fail;
  long start = now_ms(), resent = 0;
  for (;;) {
    long elapsed = now_ms() - start;
    if (elapsed >= w->wait_ms) break;
    if (!resent && elapsed >= w->wait_ms / 3) {
      resent = 1;
      for (int ttl = 1; ttl <= w->max_ttl; ttl++) if (w->hops[ttl].ttl == 0 && send_probe(fd, w, ttl) < 0) goto fail;
    }
    long until = resent ? w->wait_ms : w->wait_ms / 3;
    struct pollfd p = { .fd = fd, .events = 0 };
    int r = poll(&p, 1, (int)(until - elapsed > 0 ? until - elapsed : 1));
    if (r < 0 && errno != EINTR) goto fail;
    if (r > 0) drain_errors(fd, w);
  }
  close(fd);
  return;
fail:
  w->err = errno;
  snprintf(w->failed_step, sizeof w->failed_step, "%s", step);
  if (fd >= 0) close(fd);
}

static void trace_complete(napi_env env, napi_status status, void *data) {
  struct trace_work *w = data;
  if (w->err || status != napi_ok) {
    char message[200];
    napi_value error, code, msg;
    int err = w->err ? w->err : EIO;
    snprintf(message, sizeof message, "tcp-ttl: traceHops %s: %s", w->failed_step, strerror(err));
    napi_create_string_utf8(env, strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &error);
    napi_reject_deferred(env, w->deferred, error);
  } else {
    napi_value list;
    uint32_t n = 0;
    napi_create_array(env, &list);
    for (int ttl = 1; ttl <= w->max_ttl; ttl++) {
      struct hop *h = &w->hops[ttl];
      if (h->ttl == 0) continue;
      napi_value item, v;
      napi_create_object(env, &item);
      napi_create_int32(env, h->ttl, &v); napi_set_named_property(env, item, "ttl", v);
      napi_create_int32(env, h->type, &v); napi_set_named_property(env, item, "type", v);
      napi_create_int32(env, h->code, &v); napi_set_named_property(env, item, "code", v);
      if (h->offender[0]) napi_create_string_utf8(env, h->offender, NAPI_AUTO_LENGTH, &v);
      else napi_get_null(env, &v);
      napi_set_named_property(env, item, "offender", v);
      napi_set_element(env, list, n++, item);
    }
    napi_resolve_deferred(env, w->deferred, list);
  }
  napi_delete_async_work(env, w->work);
  free(w);
}

static napi_value trace_hops(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], promise, name;
  char target[64], local[64];
  int32_t max_ttl, wait_ms;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      get_string(env, argv[0], target, sizeof target) || get_int(env, argv[1], &max_ttl) ||
      get_int(env, argv[2], &wait_ms) || get_string(env, argv[3], local, sizeof local)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "expected (targetAddress: string, maxTtl: number, waitMs: number, localAddress: string)");
    return NULL;
  }
  struct trace_work *w = calloc(1, sizeof *w);
  if (!w) return throw_errno(env, ENOMEM, "tcp-ttl: traceHops");
  if (parse_endpoint(target, 0, &w->target) || parse_endpoint(local, 0, &w->local) || max_ttl < 1 || max_ttl > MAX_TRACE_TTL || wait_ms < 1 || wait_ms > 5000) {
    free(w);
    char message[200];
    snprintf(message, sizeof message, "expected IPv4 addresses, maxTtl 1-%d and waitMs 1-5000, got %s, %d, %d, %s", MAX_TRACE_TTL, target, max_ttl, wait_ms, local);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return NULL;
  }
  w->max_ttl = max_ttl;
  w->wait_ms = wait_ms;
  napi_create_promise(env, &w->deferred, &promise);
  napi_create_string_utf8(env, "natpunch:traceHops", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, trace_execute, trace_complete, w, &w->work);
  napi_queue_async_work(env, w->work);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "primeSyn", NULL, prime_syn, NULL, NULL, NULL, napi_enumerable, NULL },
    { "primedConnect", NULL, primed_connect, NULL, NULL, NULL, napi_enumerable, NULL },
    { "endQuiet", NULL, end_quiet, NULL, NULL, NULL, napi_enumerable, NULL },
    { "connectState", NULL, connect_state, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "traceHops", NULL, trace_hops, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

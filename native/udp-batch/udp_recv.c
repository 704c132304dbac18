/*
 * natpunch udp-batch, receive side and addressed sends: read many datagrams per system call
 * (recvmmsg(2), with UDP GRO where the kernel has it) from a node:dgram socket whose reading
 * natpunch has taken over, and send many datagrams to many destinations with one sendmmsg(2).
 * docs/decisions/009-receive-batching.md says why and what it costs.
 *
 * Both sides describe datagrams in one layout, a "meta" Int32Array of RECORD_INTS ints each:
 *   [0] offset in the slab   [1] length   [2] family (4 or 6)   [3] port
 *   [4..7] the address's bytes in network order (4 or 16 of them)
 *   [8..19] (receive only) the address as text (inet_ntop(3)), NUL-terminated, so JavaScript
 *           makes a string only for an address it has not seen (it keeps a cache).
 *
 * createReceiver(fd, slab, meta, slots, slotSize, headroom, onBatch) -> handle
 *   dup(2)s fd and polls the duplicate with a uv_poll_t on Node's loop. libuv keeps one watcher
 *   per fd number (and node:dgram's handle re-arms its own for POLLOUT whenever its send queue
 *   is not empty), while epoll(7) registers (file, fd number) pairs: a second number for the
 *   same socket gets a registration of its own and the two never collide. The caller stops
 *   node:dgram's reading first (its handle's recvStop()). On readable: recvmmsg(MSG_DONTWAIT)
 *   into `slots` slots of `slotSize` bytes of `slab` (each read `headroom` bytes into its slot,
 *   so a caller can write a header before a datagram and send it on without copying), then one
 *   call onBatch(count, truncated) per recvmmsg. Up to BATCHES_PER_WAKEUP reads per wake-up,
 *   and none after a read that did not fill every slot (the queue was empty then: one more
 *   read would only return EAGAIN, a system call per wake-up for nothing). The poll is
 *   level-triggered, so what is left, or came since, wakes it again after other work has run.
 *   Datagrams longer than their slot arrive cut short (MSG_TRUNC) and are dropped and counted.
 * enableGro(fd) -> 0 | -errno
 *   UDP_GRO (udp(7), Linux >= 5.0): the kernel may hand a run of same-flow datagrams over as
 *   one read with a UDP_GRO control message giving the segment size; the receiver splits it
 *   into one record per datagram. A coalesced read can be up to 64 KiB, so slots must be that
 *   large, or its datagrams are lost.
 * closeReceiver(handle)
 *   Stops polling and closes the duplicate; the socket itself stays node:dgram's.
 * setForward(handle, index, spec, counters) / clearForward(handle, index)
 *   A TURN relay's fast path (src/turn/fast-path.ts, decision 009): rule `index` (< 64) says
 *   "ChannelData from this source address and port on this channel goes, as channel
 *   `outChannel`, to this address through this fd, for the next ttlMs milliseconds". A read
 *   whose every datagram matches a live rule exactly (one channel, its length field filling the
 *   datagram) never reaches JavaScript: each datagram's channel number is rewritten in place and
 *   the read is sent on from the slab (a GRO read as UDP GSO messages), so relaying between two
 *   allocations costs no copy and no JavaScript per datagram. Everything else (a rule that does
 *   not match, has expired, or padding) goes to onBatch as before, where the server decides.
 *   `spec` is an Int32Array: [0] source family, [1] source port, [2..5] source address bytes,
 *   [6] channel, [7] out fd, [8] 1 if the out fd is an IPv6 socket, [9] destination family,
 *   [10] destination port, [11..14] destination address bytes, [15] out channel, [16] ttlMs.
 *   `counters` is a Float64Array of 3 per rule that the fast path adds to: datagrams and data
 *   bytes sent, and datagrams dropped (the kernel did not take them), for the server's books.
 * sendMany(fd, ipv6Socket, slab, meta, first, count, gso) -> sent | -errno
 *   Sends records first..first+count-1 of `meta` (each to its own address) with one
 *   sendmmsg(2), MSG_DONTWAIT; returns how many datagrams the kernel took, from the front, or
 *   -errno when it took none. With `gso`, a run of records to the same address whose bytes lie
 *   back to back in the slab, of one size (the last may be shorter), goes as one UDP GSO
 *   message (UDP_SEGMENT): a relay forwarding a burst from one client to one peer pays the IP
 *   stack once per run instead of once per datagram. -EIO/-EINVAL then mean "no GSO here":
 *   the caller sends again without it.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udp_batch.h"

#ifndef UDP_GRO
#define UDP_GRO 104 /* linux/udp.h */
#endif

#define RECORD_INTS 20
#define TEXT_BYTES 48
/* Messages per recvmmsg/sendmmsg call; the slot count is capped here. */
#define MAX_SLOTS 256
/* Segments one GRO read may carry (UDP_MAX_SEGMENTS is 64 up to Linux 6.8, 128 since). */
#define MAX_GRO_SEGMENTS 128
#define BATCHES_PER_WAKEUP 8

/* Rules per receiver: the allocations pairs a relay socket forwards without JavaScript. */
#define MAX_FORWARDS 64
#define SPEC_INTS 17
/* Messages one flush sends, and pieces (reads or datagrams) one GSO message gathers. */
#define FORWARD_MESSAGES 64
#define FORWARD_IOVS 64

struct forward {
  bool used;
  int family; /* 4 or 6 */
  uint16_t port, channel, out_channel;
  uint8_t address[16];
  int out_fd;
  struct sockaddr_storage to;
  socklen_t to_len;
  uint64_t expires; /* uv_now(3) milliseconds */
};

struct receiver {
  uv_poll_t poll;
  napi_env env;
  int fd; /* the duplicate; -1 once closed */
  napi_ref slab_ref, meta_ref, callback_ref;
  napi_async_context async;
  /* Holds a worker's teardown until the poll handle is closed (see async_cleanup). */
  napi_async_cleanup_hook_handle cleanup;
  uint8_t *slab;
  int32_t *meta;
  size_t meta_records;
  uint32_t slots, slot_size, headroom;
  bool closing, close_done, finalized;
  struct mmsghdr msgs[MAX_SLOTS];
  struct iovec iov[MAX_SLOTS];
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(sizeof(int))];
  } control[MAX_SLOTS];
  struct sockaddr_storage names[MAX_SLOTS];
  uv_loop_t *loop;
  /* The fast path's rules (setForward), and what one read queues for sendmmsg. */
  struct forward forwards[MAX_FORWARDS];
  uint32_t forward_top; /* 1 + the highest index in use; 0: no rules, nothing is looked at */
  double *counters;
  napi_ref counters_ref;
  bool no_forward_gso; /* the kernel refused UDP GSO once: one message per datagram */
  uint32_t queued;
  struct mmsghdr out_msgs[FORWARD_MESSAGES];
  struct iovec out_iov[FORWARD_MESSAGES][FORWARD_IOVS];
  char out_control[FORWARD_MESSAGES][GSO_CONTROL_SIZE];
  uint16_t out_rule[FORWARD_MESSAGES];
  uint32_t out_datagrams[FORWARD_MESSAGES];
  size_t out_segment[FORWARD_MESSAGES], out_bytes[FORWARD_MESSAGES];
};

static napi_value throw_error(napi_env env, const char *message) {
  napi_throw_error(env, "ERR_NATPUNCH_UDP_RECEIVE", message);
  return NULL;
}

/* Frees what the JS side and libuv are both done with: the struct outlives the later of the
 * poll handle's close callback and the handle object's finalizer. */
static void release(struct receiver *r) {
  if (!r->close_done || !r->finalized) return;
  free(r);
}

static void on_closed(uv_handle_t *handle) {
  struct receiver *r = handle->data;
  r->close_done = true;
  /* The handle is closed: a worker's teardown may go on (and unload this module). */
  if (r->cleanup != NULL) napi_remove_async_cleanup_hook(r->cleanup);
  r->cleanup = NULL;
  release(r);
}

static void stop(struct receiver *r) {
  if (r->closing) return;
  r->closing = true;
  /* uv_poll_stop takes the fd out of epoll (EPOLL_CTL_DEL) before we close it. */
  uv_poll_stop(&r->poll);
  close(r->fd);
  r->fd = -1;
  napi_env env = r->env;
  napi_delete_reference(env, r->slab_ref);
  napi_delete_reference(env, r->meta_ref);
  napi_delete_reference(env, r->callback_ref);
  if (r->counters_ref != NULL) napi_delete_reference(env, r->counters_ref);
  r->forward_top = 0;
  napi_async_destroy(env, r->async);
  uv_close((uv_handle_t *)&r->poll, on_closed);
}

/*
 * The environment is going away (a worker ends) with the receiver still open. A synchronous
 * cleanup hook is not enough: uv_close(3) finishes on a later loop turn, and a worker's loop
 * makes that turn after its addons are unloaded, calling on_closed in unmapped code. An async
 * cleanup hook holds the teardown until on_closed removes it (N-API 8).
 */
static void async_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  struct receiver *r = arg;
  r->cleanup = handle;
  stop(r);
}

static void finalize(napi_env env, void *data, void *hint) {
  struct receiver *r = data;
  stop(r);
  r->finalized = true;
  release(r);
}

/* Writes one record: where the bytes are and who sent them. */
static void put_record(struct receiver *r, size_t index, size_t offset, size_t length, const struct sockaddr_storage *from) {
  int32_t *m = r->meta + index * RECORD_INTS;
  m[0] = (int32_t)offset;
  m[1] = (int32_t)length;
  char *text = (char *)(m + 8);
  if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    m[2] = 6;
    m[3] = ntohs(a->sin6_port);
    memcpy(m + 4, &a->sin6_addr, 16);
    inet_ntop(AF_INET6, &a->sin6_addr, text, TEXT_BYTES);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    m[2] = 4;
    m[3] = ntohs(a->sin_port);
    memset(m + 4, 0, 16);
    memcpy(m + 4, &a->sin_addr, 4);
    inet_ntop(AF_INET, &a->sin_addr, text, TEXT_BYTES);
  }
}

/* The live rule for a datagram from `from` on `channel`, or NULL. */
static struct forward *find_forward(struct receiver *r, const struct sockaddr_storage *from, uint16_t channel, uint64_t now) {
  int family;
  uint16_t port;
  const void *address;
  if (from->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)from;
    family = 6, port = ntohs(a->sin6_port), address = &a->sin6_addr;
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)from;
    family = 4, port = ntohs(a->sin_port), address = &a->sin_addr;
  }
  for (uint32_t i = 0; i < r->forward_top; i++) {
    struct forward *f = &r->forwards[i];
    if (f->used && f->channel == channel && f->port == port && f->family == family &&
        memcmp(f->address, address, family == 6 ? 16 : 4) == 0) {
      return f->expires > now ? f : NULL;
    }
  }
  return NULL;
}

/* Sends what forward_read queued, a sendmmsg per run of one fd; what the kernel does not take is dropped and counted. */
static void flush_forwards(struct receiver *r) {
  uint32_t at = 0;
  while (at < r->queued) {
    uint32_t end = at + 1;
    int fd = r->forwards[r->out_rule[at]].out_fd;
    while (end < r->queued && r->forwards[r->out_rule[end]].out_fd == fd) end++;
    int sent;
    do sent = sendmmsg(fd, r->out_msgs + at, end - at, MSG_DONTWAIT);
    while (sent < 0 && errno == EINTR);
    if (sent < 0 && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOPROTOOPT) && !r->no_forward_gso) {
      /* No UDP GSO on this path (udp(7)): later reads go one datagram per message. These are lost. */
      r->no_forward_gso = true;
    }
    if (sent < 0) sent = 0;
    for (uint32_t i = at + (uint32_t)sent; i < end; i++) r->counters[r->out_rule[i] * 3 + 2] += r->out_datagrams[i];
    at = end;
  }
  r->queued = 0;
}

/*
 * Queues `datagrams` datagrams of `segment` bytes (the last may be shorter) lying at bytes[0,
 * length) for rule `rule`. Pieces for one rule of one segment size gather into one UDP GSO
 * message through an iovec each, while every datagram before them is full-sized (udp(7): only
 * the last segment may be shorter), as the JavaScript sender's runs did: several small GRO reads,
 * or single datagrams, leave as one message, and the hops after the relay see as few packets as
 * the sender's own GSO made.
 */
static void queue_forward(struct receiver *r, uint16_t rule, uint8_t *bytes, size_t length, size_t segment, uint32_t datagrams) {
  if (r->queued > 0 && !r->no_forward_gso) {
    uint32_t p = r->queued - 1;
    struct msghdr *h = &r->out_msgs[p].msg_hdr;
    /* The same size, or one datagram shorter than the message's: it ends the message. */
    bool fits = r->out_segment[p] == segment || (datagrams == 1 && length < r->out_segment[p]);
    if (r->out_rule[p] == rule && fits && r->out_bytes[p] % r->out_segment[p] == 0 &&
        h->msg_iovlen < FORWARD_IOVS && r->out_datagrams[p] + datagrams <= MAX_GSO_SEGMENTS &&
        r->out_bytes[p] + length <= MAX_GSO_BYTES) {
      r->out_iov[p][h->msg_iovlen].iov_base = bytes;
      r->out_iov[p][h->msg_iovlen].iov_len = length;
      h->msg_iovlen++;
      if (r->out_datagrams[p] == 1) set_udp_segment(h, r->out_control[p], r->out_segment[p]);
      r->out_datagrams[p] += datagrams;
      r->out_bytes[p] += length;
      return;
    }
  }
  if (r->queued == FORWARD_MESSAGES) flush_forwards(r);
  struct forward *f = &r->forwards[rule];
  uint32_t i = r->queued++;
  struct msghdr *h = &r->out_msgs[i].msg_hdr;
  memset(h, 0, sizeof *h);
  r->out_iov[i][0].iov_base = bytes;
  r->out_iov[i][0].iov_len = length;
  h->msg_name = &f->to;
  h->msg_namelen = f->to_len;
  h->msg_iov = r->out_iov[i];
  h->msg_iovlen = 1;
  if (datagrams > 1) set_udp_segment(h, r->out_control[i], segment);
  r->out_rule[i] = rule;
  r->out_datagrams[i] = datagrams;
  r->out_segment[i] = segment;
  r->out_bytes[i] = length;
}

/*
 * Forwards read `i` (length bytes of `segment`-byte datagrams) by a rule, if every datagram in
 * it is ChannelData on that rule's channel whose length field fills it exactly (RFC 8656 §12.5
 * lets UDP ChannelData carry padding: such a datagram goes to JavaScript, which trims it).
 * Returns whether it did; the read then makes no records.
 */
static bool forward_read(struct receiver *r, int i, size_t base, size_t length, size_t segment, uint64_t now) {
  uint8_t *bytes = r->slab + base;
  if (length < 4 || (bytes[0] & 0xc0) != 0x40) return false;
  uint16_t channel = (uint16_t)(bytes[0] << 8 | bytes[1]);
  struct forward *f = find_forward(r, &r->names[i], channel, now);
  if (f == NULL) return false;
  size_t data = 0;
  uint32_t datagrams = 0;
  for (size_t at = 0; at < length; at += segment) {
    size_t piece = length - at < segment ? length - at : segment;
    const uint8_t *d = bytes + at;
    if (piece < 4 || d[0] != bytes[0] || d[1] != bytes[1] || (size_t)(d[2] << 8 | d[3]) + 4 != piece) return false;
    data += piece - 4;
    datagrams++;
  }
  for (size_t at = 0; at < length; at += segment) {
    bytes[at] = (uint8_t)(f->out_channel >> 8);
    bytes[at + 1] = (uint8_t)(f->out_channel & 0xff);
  }
  uint16_t rule = (uint16_t)(f - r->forwards);
  if (datagrams == 1) {
    queue_forward(r, rule, bytes, length, segment, 1);
  } else if (r->no_forward_gso) {
    for (size_t at = 0; at < length; at += segment) queue_forward(r, rule, bytes + at, length - at < segment ? length - at : segment, segment, 1);
  } else {
    /* A GSO message carries at most MAX_GSO_SEGMENTS datagrams and MAX_GSO_BYTES; a GRO read may hold more. */
    size_t per = MAX_GSO_BYTES / segment < MAX_GSO_SEGMENTS ? MAX_GSO_BYTES / segment : MAX_GSO_SEGMENTS;
    for (size_t at = 0; at < length; at += segment * per) {
      size_t chunk = length - at < segment * per ? length - at : segment * per;
      queue_forward(r, rule, bytes + at, chunk, segment, (uint32_t)((chunk + segment - 1) / segment));
    }
  }
  r->counters[rule * 3] += datagrams;
  r->counters[rule * 3 + 1] += (double)data;
  return true;
}

/* One recvmmsg into the slab; returns records written (>= 0), or -errno (-EAGAIN: nothing). */
static int read_batch(struct receiver *r, uint32_t *truncated, bool *drained) {
  for (uint32_t i = 0; i < r->slots; i++) {
    struct msghdr *h = &r->msgs[i].msg_hdr;
    r->iov[i].iov_base = r->slab + (size_t)i * r->slot_size + r->headroom;
    r->iov[i].iov_len = r->slot_size - r->headroom;
    h->msg_name = &r->names[i];
    h->msg_namelen = sizeof r->names[i];
    h->msg_iov = &r->iov[i];
    h->msg_iovlen = 1;
    h->msg_control = r->control[i].bytes;
    h->msg_controllen = sizeof r->control[i].bytes;
    h->msg_flags = 0;
  }
  int n;
  do n = recvmmsg(r->fd, r->msgs, r->slots, MSG_DONTWAIT, NULL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  *drained = (uint32_t)n < r->slots;
  size_t records = 0;
  uint64_t now = r->forward_top > 0 ? uv_now(r->loop) : 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *h = &r->msgs[i].msg_hdr;
    size_t length = r->msgs[i].msg_len;
    if (h->msg_flags & MSG_TRUNC) {
      (*truncated)++;
      continue;
    }
    /* udp(7): with UDP_GRO a read may carry several datagrams of `segment` bytes each (the last
     * may be shorter), the size given in a UDP_GRO control message. */
    size_t segment = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int size;
        memcpy(&size, CMSG_DATA(c), sizeof size);
        if (size > 0) segment = (size_t)size;
      }
    }
    size_t base = (size_t)i * r->slot_size + r->headroom;
    if (segment == 0 || segment >= length) segment = length;
    if (r->forward_top > 0 && forward_read(r, i, base, length, segment, now)) continue;
    for (size_t at = 0; at < length || (length == 0 && at == 0); at += segment) {
      if (records == r->meta_records) { /* more GRO segments than records: dropped, counted */
        (*truncated)++;
        break;
      }
      size_t piece = length - at < segment ? length - at : segment;
      put_record(r, records++, base + at, piece, &r->names[i]);
      if (length == 0) break;
    }
  }
  /* Before the slab is read into again. */
  if (r->queued > 0) flush_forwards(r);
  return (int)records;
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  struct receiver *r = poll->data;
  napi_env env = r->env;
  for (int round = 0; round < BATCHES_PER_WAKEUP && !r->closing; round++) {
    uint32_t truncated = 0;
    bool drained = false;
    int records = read_batch(r, &truncated, &drained);
    if (records == -EAGAIN || records == -EWOULDBLOCK) break;
    /* Other errors (e.g. ECONNREFUSED from an ICMP error on some sockets) are reported to JS
     * as a negative count, once per wake-up: node:dgram ignores them too, but tests see them. */
    if (records == 0 && truncated == 0) {
      if (drained) break;
      continue;
    }
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value callback, recv, argv[2], result;
    napi_get_reference_value(env, r->callback_ref, &callback);
    napi_get_global(env, &recv); /* MakeCallback wants an object as `this` */
    napi_create_int32(env, records, &argv[0]);
    napi_create_uint32(env, truncated, &argv[1]);
    /* napi_make_callback, like node:dgram's own 'message' path, runs process.nextTick and
     * microtasks queued by the callback before it returns: sends a callback started through
     * node:dgram (which resolves the address in a nextTick) read the slab before it is reused. */
    napi_status status_call = napi_make_callback(env, r->async, recv, callback, 2, argv, &result);
    if (status_call == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error); /* 'uncaughtException', as an exception in 'message' would */
    }
    napi_close_handle_scope(env, scope);
    if (records < 0 || drained) break;
  }
}

static bool typed_array(napi_env env, napi_value value, napi_typedarray_type want, void **data, size_t *length) {
  napi_typedarray_type type;
  bool is;
  return napi_is_typedarray(env, value, &is) == napi_ok && is &&
         napi_get_typedarray_info(env, value, &type, length, data, NULL, NULL) == napi_ok && type == want;
}

static napi_value create_receiver(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  int32_t fd;
  uint32_t slots, slot_size, headroom;
  void *slab, *meta;
  size_t slab_length, meta_length;
  napi_valuetype callback_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      !typed_array(env, argv[1], napi_uint8_array, &slab, &slab_length) ||
      !typed_array(env, argv[2], napi_int32_array, &meta, &meta_length) ||
      napi_get_value_uint32(env, argv[3], &slots) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &slot_size) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &headroom) != napi_ok ||
      napi_typeof(env, argv[6], &callback_type) != napi_ok || callback_type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch createReceiver: expected (fd: number >= 0, slab: Uint8Array, meta: Int32Array, slots: number, slotSize: number, headroom: number, onBatch: function)");
    return NULL;
  }
  if (slots == 0 || slots > MAX_SLOTS || headroom >= slot_size || (size_t)slots * slot_size > slab_length) {
    return throw_error(env, "udp-batch createReceiver: need 1..256 slots, headroom < slotSize, and slots * slotSize <= slab.length");
  }
  /* At least one record per slot; a GRO receiver wants room for every segment of every slot
   * (up to MAX_GRO_SEGMENTS each), or the segments past the end are dropped and counted. */
  size_t records = meta_length / RECORD_INTS;
  if (records < slots) return throw_error(env, "udp-batch createReceiver: meta must hold a record of 20 ints per slot");
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return throw_error(env, "udp-batch createReceiver: no event loop");

  struct receiver *r = calloc(1, sizeof *r);
  if (r == NULL) return throw_error(env, "udp-batch createReceiver: out of memory");
  r->env = env;
  r->slab = slab;
  r->meta = meta;
  r->meta_records = records;
  r->slots = slots;
  r->slot_size = slot_size;
  r->headroom = headroom;
  r->loop = loop;
  /* fcntl(2) F_DUPFD_CLOEXEC: a second number for the same socket, not inherited by children. */
  r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (r->fd < 0) {
    char message[96];
    snprintf(message, sizeof message, "udp-batch createReceiver: dup of fd %d failed: %s", fd, strerror(errno));
    free(r);
    return throw_error(env, message);
  }
  int err = uv_poll_init(loop, &r->poll, r->fd);
  if (err == 0) {
    r->poll.data = r;
    err = uv_poll_start(&r->poll, UV_READABLE, on_readable);
    if (err != 0) {
      /* Initialised, so it must be closed through libuv; nothing JS-side exists yet. */
      close(r->fd);
      r->closing = true;
      r->finalized = true;
      uv_close((uv_handle_t *)&r->poll, on_closed);
    }
  }
  if (err != 0) {
    char message[96];
    snprintf(message, sizeof message, "udp-batch createReceiver: polling the socket failed: %s", uv_strerror(err));
    if (!r->closing) {
      close(r->fd);
      free(r);
    }
    return throw_error(env, message);
  }
  napi_value name, handle;
  napi_create_string_utf8(env, "natpunch:udp-receive", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &r->async);
  napi_create_reference(env, argv[1], 1, &r->slab_ref);
  napi_create_reference(env, argv[2], 1, &r->meta_ref);
  napi_create_reference(env, argv[6], 1, &r->callback_ref);
  napi_add_async_cleanup_hook(env, async_cleanup, r, &r->cleanup);
  if (napi_create_external(env, r, finalize, NULL, &handle) != napi_ok) {
    stop(r);
    r->finalized = true;
    return throw_error(env, "udp-batch createReceiver: could not make the handle");
  }
  return handle;
}

static napi_value close_receiver(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type;
  void *data;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external ||
      napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch closeReceiver: expected a receiver handle");
    return NULL;
  }
  stop(data);
  return NULL;
}

static napi_value enable_gro(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch enableGro: expected (fd: number >= 0)");
    return NULL;
  }
  int on = 1;
  int err = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0 ? 0 : -errno;
  napi_create_int32(env, err, &result);
  return result;
}

/* A record's address as a sockaddr for the socket's family (IPv4 on an IPv6 socket: mapped). */
static int record_address(const int32_t *m, bool ipv6_socket, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  if (m[3] < 1 || m[3] > 65535) return -1;
  if (m[2] == 4 && !ipv6_socket) {
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)m[3]);
    memcpy(&a->sin_addr, m + 4, 4);
    *len = sizeof *a;
    return 0;
  }
  if (!ipv6_socket || (m[2] != 4 && m[2] != 6)) return -1;
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
  a->sin6_family = AF_INET6;
  a->sin6_port = htons((uint16_t)m[3]);
  if (m[2] == 4) {
    a->sin6_addr.s6_addr[10] = 0xff;
    a->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&a->sin6_addr.s6_addr[12], m + 4, 4);
  } else {
    memcpy(&a->sin6_addr, m + 4, 16);
  }
  *len = sizeof *a;
  return 0;
}

/* Whether records a and b name the same destination (family, port, address bytes). */
static bool same_destination(const int32_t *a, const int32_t *b) {
  return a[2] == b[2] && a[3] == b[3] && a[4] == b[4] && a[5] == b[5] && a[6] == b[6] && a[7] == b[7];
}

static napi_value send_many(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], result;
  int32_t fd;
  bool ipv6_socket, gso = false;
  uint32_t first, count;
  void *slab, *meta;
  size_t slab_length, meta_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_bool(env, argv[1], &ipv6_socket) != napi_ok ||
      !typed_array(env, argv[2], napi_uint8_array, &slab, &slab_length) ||
      !typed_array(env, argv[3], napi_int32_array, &meta, &meta_length) ||
      napi_get_value_uint32(env, argv[4], &first) != napi_ok ||
      napi_get_value_uint32(env, argv[5], &count) != napi_ok ||
      (argc > 6 && napi_get_value_bool(env, argv[6], &gso) != napi_ok)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch sendMany: expected (fd: number >= 0, ipv6Socket: boolean, slab: Uint8Array, meta: Int32Array, first: number, count: number, gso?: boolean)");
    return NULL;
  }
  if (count > MAX_SLOTS) count = MAX_SLOTS;
  if (((size_t)first + count) * RECORD_INTS > meta_length) return throw_error(env, "udp-batch sendMany: records past the end of meta");
  static _Thread_local struct mmsghdr msgs[MAX_SLOTS];
  static _Thread_local struct iovec iov[MAX_SLOTS];
  static _Thread_local struct sockaddr_storage to[MAX_SLOTS];
  static _Thread_local uint32_t segments[MAX_SLOTS]; /* datagrams carried by each message */
  static _Thread_local char control[MAX_SLOTS][GSO_CONTROL_SIZE];
  const int32_t *records = (const int32_t *)meta + (size_t)first * RECORD_INTS;
  for (uint32_t i = 0; i < count; i++) {
    const int32_t *m = records + (size_t)i * RECORD_INTS;
    if (m[0] < 0 || m[1] < 0 || (size_t)m[0] + (size_t)m[1] > slab_length) return throw_error(env, "udp-batch sendMany: a record's bytes lie outside the slab");
  }
  uint32_t messages = 0, taken = 0;
  while (taken < count) {
    const int32_t *m = records + (size_t)taken * RECORD_INTS;
    socklen_t to_len;
    /* An address this socket cannot send to ends the batch there; the caller sends the rest its own way. */
    if (record_address(m, ipv6_socket, &to[messages], &to_len)) {
      if (taken == 0) {
        napi_create_int32(env, -EAFNOSUPPORT, &result);
        return result;
      }
      break;
    }
    uint32_t n = 1;
    size_t size = (size_t)m[1], total = size;
    if (gso && size > 0) {
      /* Same destination, the next bytes in the slab, equal size (a shorter one ends the run: udp(7)). */
      while (taken + n < count && n < MAX_GSO_SEGMENTS) {
        const int32_t *next = m + (size_t)n * RECORD_INTS;
        const int32_t *last = next - RECORD_INTS;
        if (!same_destination(m, next) || next[0] != last[0] + last[1] || next[1] <= 0 || (size_t)next[1] > size ||
            total + (size_t)next[1] > MAX_GSO_BYTES) break;
        total += (size_t)next[1];
        n++;
        if ((size_t)next[1] < size) break;
      }
    }
    iov[messages].iov_base = (uint8_t *)slab + m[0];
    iov[messages].iov_len = total;
    struct msghdr *h = &msgs[messages].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &to[messages];
    h->msg_namelen = to_len;
    h->msg_iov = &iov[messages];
    h->msg_iovlen = 1;
    if (n > 1) set_udp_segment(h, control[messages], size);
    segments[messages++] = n;
    taken += n;
  }
  int sent;
  do sent = sendmmsg(fd, msgs, messages, MSG_DONTWAIT);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    napi_create_int32(env, -errno, &result);
    return result;
  }
  int32_t datagrams = 0;
  for (int i = 0; i < sent; i++) datagrams += (int32_t)segments[i];
  napi_create_int32(env, datagrams, &result);
  return result;
}

static struct receiver *receiver_of(napi_env env, napi_value value) {
  napi_valuetype type;
  void *data;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external || napi_get_value_external(env, value, &data) != napi_ok) return NULL;
  return data;
}

static napi_value set_forward(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  struct receiver *r;
  uint32_t index;
  void *spec_data, *counters;
  size_t spec_length, counters_length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      (r = receiver_of(env, argv[0])) == NULL ||
      napi_get_value_uint32(env, argv[1], &index) != napi_ok || index >= MAX_FORWARDS ||
      !typed_array(env, argv[2], napi_int32_array, &spec_data, &spec_length) || spec_length < SPEC_INTS ||
      !typed_array(env, argv[3], napi_float64_array, &counters, &counters_length) || counters_length < MAX_FORWARDS * 3) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch setForward: expected (receiver, index < 64, spec: Int32Array(17), counters: Float64Array(192))");
    return NULL;
  }
  if (r->closing) return NULL;
  const int32_t *spec = spec_data;
  struct forward f = { .used = true, .family = spec[0] == 6 ? 6 : 4, .port = (uint16_t)spec[1], .channel = (uint16_t)spec[6],
                       .out_fd = spec[7], .out_channel = (uint16_t)spec[15] };
  memcpy(f.address, spec + 2, 16);
  int32_t to[RECORD_INTS] = { 0, 0, spec[9], spec[10], spec[11], spec[12], spec[13], spec[14] };
  if (spec[7] < 0 || spec[16] <= 0 || record_address(to, spec[8] != 0, &f.to, &f.to_len) != 0) {
    return throw_error(env, "udp-batch setForward: bad fd, ttl or destination");
  }
  f.expires = uv_now(r->loop) + (uint64_t)spec[16];
  if (r->counters_ref == NULL) {
    napi_create_reference(env, argv[3], 1, &r->counters_ref);
    r->counters = counters;
  } else if (r->counters != counters) {
    return throw_error(env, "udp-batch setForward: one counters array per receiver");
  }
  r->forwards[index] = f;
  if (index + 1 > r->forward_top) r->forward_top = index + 1;
  return NULL;
}

static napi_value clear_forward(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct receiver *r;
  uint32_t index;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      (r = receiver_of(env, argv[0])) == NULL || napi_get_value_uint32(env, argv[1], &index) != napi_ok || index >= MAX_FORWARDS) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "udp-batch clearForward: expected (receiver, index < 64)");
    return NULL;
  }
  r->forwards[index].used = false;
  while (r->forward_top > 0 && !r->forwards[r->forward_top - 1].used) r->forward_top--;
  return NULL;
}

void udp_recv_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "createReceiver", NULL, create_receiver, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeReceiver", NULL, close_receiver, NULL, NULL, NULL, napi_enumerable, NULL },
    { "enableGro", NULL, enable_gro, NULL, NULL, NULL, napi_enumerable, NULL },
    { "sendMany", NULL, send_many, NULL, NULL, NULL, napi_enumerable, NULL },
    { "setForward", NULL, set_forward, NULL, NULL, NULL, napi_enumerable, NULL },
    { "clearForward", NULL, clear_forward, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

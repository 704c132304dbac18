/*
 * Closed-loop TURN relay load for bench/turn: the packet blast after the allocations are made.
 *
 * bench/turn/index.ts makes each allocation with natpunch's TURN client from a UDP socket on
 * 127.0.0.1:CLIENTPORT, binds a channel to the sink (the peer), then closes that socket without
 * deleting the allocation and starts this program, which binds the same ports again: the server
 * sees the same 5-tuples. One flow per allocation:
 *
 *   --direction out  client -> peer: each client socket sends ChannelData (4-byte header + SIZE
 *                    payload) to the server; the server relays the payload from the relayed
 *                    address to the peer socket, which counts it.
 *   --direction in   peer -> client: the peer socket sends SIZE-byte datagrams to each relayed
 *                    address; the server relays them to the client socket as ChannelData on the
 *                    bound channel, which counts them.
 *
 * Every payload starts with a tag, the flow's index and a per-flow sequence number, so a datagram
 * counts only if it is the right size, arrived on the right socket from the right source (the
 * flow's relayed address, or the server), and, inbound, carries the flow's channel with a length
 * field equal to the payload.
 *
 * Closed loop, as bench/stun/load.c: each flow keeps at most `window` datagrams in flight and
 * tops up after every receive, so the rate is what the server relays, not what the generator can
 * push into its socket buffer. One flow is one path through one server thread, so it stays in
 * order: a datagram with sequence number N means everything before N has arrived or is lost, and
 * the window slides past N at once (a loss costs one datagram, not a wait). Only when the tail of
 * a window is lost does nothing come back; after `timeout-ms` of that the flow writes its window
 * off and starts again. Datagrams that arrive behind one with a higher sequence number are counted
 * as reordered, those that arrive after their window was written off as late (both as delivered
 * too; on a busy machine a server descheduled for longer than the timeout makes late ones).
 * Batched with sendmmsg/recvmmsg and driven by epoll, so the generator (and the sink, the same
 * thread) costs less per datagram than the server: the table checks this.
 *
 * Bounded: runs warm-up + duration and exits. Prints one JSON object on stdout.
 *
 *   load --direction out|in --server IP:PORT --peer IP:PORT --flow CLIENTPORT,CHANNEL,RELAYEDIP,RELAYEDPORT ...
 *        [--size 1200] [--window 64] [--warmup-ms 3000] [--duration-ms 5000] [--timeout-ms 50] [--server-pid PID]
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

#define MAX_FLOWS 64
#define MAX_WINDOW 1024
#define MAX_SIZE 1400
#define BATCH 64
#define CHANNEL_HEADER 4
#define TAG 0x6e705462u /* "npTb" */
#define PAYLOAD_HEADER 16 /* tag, flow index, 64-bit sequence */

struct flow {
  int client_fd;
  uint16_t channel;
  struct sockaddr_in relayed;
  /* Outbound frames carry the ChannelData header in front of the payload; inbound ones do not. */
  uint8_t frames[BATCH][CHANNEL_HEADER + MAX_SIZE];
  /* Sent: sequence numbers 0 .. sent-1. In flight: acked .. sent-1 (acked = highest seen + 1, or all written off). */
  int64_t sent, acked, delivered;
  int64_t written_to; /* `sent` when the window was last written off: anything below that arriving now is late */
  uint64_t last_progress_ns;
};

static struct flow flows[MAX_FLOWS];
static int n_flows, window = 64, size = 1200, outbound = 1, peer_fd;
static struct sockaddr_in server, peer;
static uint64_t invalid, reordered, late, stalls, send_errors;

static int64_t in_flight(const struct flow *f) {
  return f->sent - f->acked;
}

/* Sends up to `count` (at most BATCH) datagrams of flow `k`, each with the next sequence number. */
static void send_batch(int k, int count) {
  struct flow *f = &flows[k];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  const int offset = outbound ? CHANNEL_HEADER : 0;
  for (int i = 0; i < count; i++) {
    uint8_t *payload = f->frames[i] + offset;
    const uint64_t seq = (uint64_t)(f->sent + i);
    put32(payload + 8, (uint32_t)(seq >> 32));
    put32(payload + 12, (uint32_t)seq);
    /* Outbound the client socket is connected to the server; inbound the peer socket names each relayed address. */
    mmsg_entry(&msgs[i], &iov[i], f->frames[i], (size_t)(offset + size), outbound ? NULL : &f->relayed, outbound ? 0 : sizeof f->relayed);
  }
  int m = sendmmsg(outbound ? f->client_fd : peer_fd, msgs, (unsigned)count, MSG_DONTWAIT);
  if (m < 0) m = 0;
  /* The unsent datagrams' sequence numbers go out with the next batch. */
  send_errors += (uint64_t)(count - m);
  f->sent += m;
}

static void top_up(uint64_t t, uint64_t timeout_ns) {
  for (int k = 0; k < n_flows; k++) {
    struct flow *f = &flows[k];
    int64_t free_slots = window - in_flight(f);
    if (free_slots <= 0 && t - f->last_progress_ns > timeout_ns) {
      /* Nothing came back for a while: whatever is in flight is gone; start the window again. */
      f->acked = f->written_to = f->sent;
      f->last_progress_ns = t;
      stalls++;
      free_slots = window;
    }
    while (free_slots > 0) {
      int n = free_slots < BATCH ? (int)free_slots : BATCH;
      int64_t before = f->sent;
      send_batch(k, n);
      if (f->sent - before < n) break; /* socket buffer full: the next round tries again */
      free_slots -= n;
    }
  }
}

/* The flow a received payload belongs to, or -1 if it is not one of ours. */
static int accept_payload(const uint8_t *p, unsigned n, int expected_flow) {
  if (n != (unsigned)size || get32(p) != TAG) return -1;
  uint32_t k = get32(p + 4);
  if (k >= (uint32_t)n_flows || (expected_flow >= 0 && k != (uint32_t)expected_flow)) return -1;
  return (int)k;
}

static void credit(int k, const uint8_t *payload, uint64_t t) {
  struct flow *f = &flows[k];
  int64_t seq = (int64_t)(((uint64_t)get32(payload + 8) << 32) | get32(payload + 12));
  if (seq >= f->sent) { /* never sent: not ours after all */
    invalid++;
    return;
  }
  if (seq < f->written_to) late++;
  else if (seq < f->acked) reordered++; /* behind a later one */
  if (seq >= f->acked) f->acked = seq + 1;
  f->delivered++;
  f->last_progress_ns = t;
}

/*
 * Drains socket `fd`: the peer socket (k = -1; outbound, any flow, told apart by the source,
 * which must be the flow's relayed address) or the client socket of flow `k` (inbound; connected
 * to the server, so the kernel has already checked the source). Anything else that arrives (a
 * datagram against the direction measured) is invalid.
 */
static void drain(int fd, int k, uint64_t t) {
  static uint8_t buffers[BATCH][2048];
  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  struct sockaddr_in from[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) mmsg_entry(&msgs[i], &iov[i], buffers[i], sizeof buffers[i], &from[i], sizeof from[i]);
    int m = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
    if (m <= 0) break;
    for (int i = 0; i < m; i++) {
      const uint8_t *b = buffers[i];
      const unsigned n = msgs[i].msg_len;
      if (k < 0) {
        int flow = outbound ? accept_payload(b, n, -1) : -1;
        if (flow < 0 || from[i].sin_addr.s_addr != flows[flow].relayed.sin_addr.s_addr || from[i].sin_port != flows[flow].relayed.sin_port) {
          invalid++;
          continue;
        }
        credit(flow, b, t);
      } else {
        /* ChannelData: channel number, length of the data, the data (RFC 8656 §12.4); no padding over UDP. */
        if (outbound || n < CHANNEL_HEADER || ((b[0] << 8) | b[1]) != flows[k].channel || ((b[2] << 8) | b[3]) != size ||
            accept_payload(b + CHANNEL_HEADER, n - CHANNEL_HEADER, k) < 0) {
          invalid++;
          continue;
        }
        credit(k, b + CHANNEL_HEADER, t);
      }
    }
    if (m < BATCH) break;
  }
}

static void usage(const char *why) {
  fprintf(stderr, "load: %s\nusage: load --direction out|in --server IP:PORT --peer IP:PORT "
          "--flow CLIENTPORT,CHANNEL,RELAYEDIP,RELAYEDPORT ... [--size 1200] [--window 64] "
          "[--warmup-ms 3000] [--duration-ms 5000] [--timeout-ms 50] [--server-pid PID]\n", why);
  exit(2);
}

static void parse_endpoint(const char *text, struct sockaddr_in *out) {
  char ip[64];
  int port;
  if (sscanf(text, "%63[^:]:%d", ip, &port) != 2 || port <= 0 || port > 65535) usage("expected IP:PORT");
  memset(out, 0, sizeof *out);
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &out->sin_addr) != 1) usage("expected an IPv4 address");
}

/* A UDP socket bound to `local` with 4 MiB buffers (forced past rmem_max when root), non-blocking. */
static int open_socket(const struct sockaddr_in *local, const struct sockaddr_in *connect_to) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) { perror("load: socket"); exit(1); }
  int buffer = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof buffer) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  if (bind(fd, (const struct sockaddr *)local, sizeof *local) < 0) {
    char ip[32];
    inet_ntop(AF_INET, &local->sin_addr, ip, sizeof ip);
    fprintf(stderr, "load: bind %s:%u: %s\n", ip, ntohs(local->sin_port), strerror(errno));
    exit(1);
  }
  if (connect_to && connect(fd, (const struct sockaddr *)connect_to, sizeof *connect_to) < 0) { perror("load: connect"); exit(1); }
  return fd;
}

int main(int argc, char **argv) {
  struct load_timing timing = { .warmup_ms = 3000, .duration_ms = 5000, .timeout_ms = 50 };
  int handled;
  int have_server = 0, have_peer = 0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) usage("every option takes a value");
    const char *k = argv[i], *v = argv[++i];
    if (!strcmp(k, "--direction")) {
      if (!strcmp(v, "out")) outbound = 1;
      else if (!strcmp(v, "in")) outbound = 0;
      else usage("--direction must be out or in");
    } else if (!strcmp(k, "--server")) { parse_endpoint(v, &server); have_server = 1; }
    else if (!strcmp(k, "--peer")) { parse_endpoint(v, &peer); have_peer = 1; }
    else if (!strcmp(k, "--flow")) {
      if (n_flows == MAX_FLOWS) usage("at most 64 flows");
      struct flow *f = &flows[n_flows];
      int client_port, channel, relayed_port;
      char ip[64], endpoint[96];
      if (sscanf(v, "%d,%d,%63[^,],%d", &client_port, &channel, ip, &relayed_port) != 4 || client_port <= 0 ||
          client_port > 65535 || channel < 0x4000 || channel > 0x7ffe) usage("--flow: expected CLIENTPORT,CHANNEL,RELAYEDIP,RELAYEDPORT");
      snprintf(endpoint, sizeof endpoint, "%s:%d", ip, relayed_port);
      parse_endpoint(endpoint, &f->relayed);
      f->channel = (uint16_t)channel;
      f->client_fd = client_port; /* the port for now; the socket is opened below */
      n_flows++;
    }
    else if (!strcmp(k, "--size")) size = atoi(v);
    else if (!strcmp(k, "--window")) window = atoi(v);
    else if ((handled = timing_option(k, v, &timing)) < 0) usage("durations must be positive");
    else if (!handled) usage("unknown option");
  }
  if (!have_server || !have_peer || n_flows == 0) usage("--server, --peer and at least one --flow are required");
  if (size < PAYLOAD_HEADER || size > MAX_SIZE) usage("--size must be 16-1400");
  if (window < 1 || window > MAX_WINDOW) usage("--window must be 1-1024");

  int ep = epoll_create1(0);
  if (ep < 0) { perror("load: epoll_create1"); return 1; }
  peer_fd = open_socket(&peer, NULL);
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = MAX_FLOWS };
  epoll_ctl(ep, EPOLL_CTL_ADD, peer_fd, &ev);
  for (int k = 0; k < n_flows; k++) {
    struct flow *f = &flows[k];
    /* The same local address the allocation was made from: the client's IP is the server's. */
    struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr = server.sin_addr, .sin_port = htons((uint16_t)f->client_fd) };
    f->client_fd = open_socket(&local, &server);
    struct epoll_event fe = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
    epoll_ctl(ep, EPOLL_CTL_ADD, f->client_fd, &fe);
    for (int i = 0; i < BATCH; i++) {
      uint8_t *frame = f->frames[i];
      if (outbound) {
        frame[0] = f->channel >> 8; frame[1] = f->channel & 0xff;
        frame[2] = (uint8_t)(size >> 8); frame[3] = (uint8_t)size;
        frame += CHANNEL_HEADER;
      }
      for (int j = PAYLOAD_HEADER; j < size; j++) frame[j] = (uint8_t)(j * 7 + k);
      put32(frame, TAG);
      put32(frame + 4, (uint32_t)k);
    }
  }

  const uint64_t start = now_ns();
  const uint64_t measure_from = start + (uint64_t)timing.warmup_ms * 1000000u;
  const uint64_t measure_to = measure_from + (uint64_t)timing.duration_ms * 1000000u;
  const uint64_t timeout_ns = (uint64_t)timing.timeout_ms * 1000000u;
  for (int k = 0; k < n_flows; k++) flows[k].last_progress_ns = start;
  int64_t sent0 = 0, delivered0 = 0, in_flight0 = 0;
  uint64_t invalid0 = 0, reordered0 = 0, late0 = 0, stalls0 = 0, t0 = 0, t1 = 0;
  struct cpu_mark mark0, mark1;
  int measuring = 0;
  struct epoll_event events[MAX_FLOWS + 1];
  top_up(start, timeout_ns);
  for (;;) {
    int n = epoll_wait(ep, events, MAX_FLOWS + 1, 1);
    if (n < 0 && errno != EINTR) { perror("load: epoll_wait"); return 1; }
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++) {
      uint32_t k = events[i].data.u32;
      drain(k == MAX_FLOWS ? peer_fd : flows[k].client_fd, k == MAX_FLOWS ? -1 : (int)k, t);
    }
    top_up(t, timeout_ns);
    int64_t sent = 0, delivered = 0, flying = 0;
    if ((!measuring && t >= measure_from) || (measuring && t >= measure_to)) {
      for (int k = 0; k < n_flows; k++) {
        sent += flows[k].sent;
        delivered += flows[k].delivered;
        flying += in_flight(&flows[k]);
      }
    }
    if (!measuring && t >= measure_from) {
      measuring = 1;
      t0 = t;
      sent0 = sent; delivered0 = delivered; in_flight0 = flying;
      invalid0 = invalid; reordered0 = reordered; late0 = late; stalls0 = stalls;
      cpu_mark(&mark0, timing.server_pid);
    } else if (measuring && t >= measure_to) {
      t1 = t;
      cpu_mark(&mark1, timing.server_pid);
      const double seconds = (double)(t1 - t0) / 1e9;
      const int64_t counted = delivered - delivered0, sent_span = sent - sent0;
      /* What left in the span and neither arrived nor is still in flight at its end. */
      const int64_t lost = sent_span - counted - (flying - in_flight0);
      printf("{\"direction\":\"%s\",\"delivered\":%lld,\"seconds\":%.6f,\"rate\":%.1f,\"mibPerSecond\":%.2f,\"sent\":%lld,"
             "\"lost\":%lld,\"lossPercent\":%.3f,\"invalid\":%llu,\"reordered\":%llu,\"late\":%llu,\"stalls\":%llu,\"sendErrors\":%llu,"
             "\"flows\":%d,\"window\":%d,\"size\":%d,",
             outbound ? "out" : "in", (long long)counted, seconds, (double)counted / seconds,
             (double)counted * size / seconds / (1024.0 * 1024.0), (long long)sent_span, (long long)lost,
             sent_span > 0 ? 100.0 * (double)lost / (double)sent_span : 0.0, (unsigned long long)(invalid - invalid0),
             (unsigned long long)(reordered - reordered0), (unsigned long long)(late - late0), (unsigned long long)(stalls - stalls0),
             (unsigned long long)send_errors, n_flows, window, size);
      print_cpu_span(stdout, &mark0, &mark1, seconds);
      printf("}\n");
      return 0;
    }
  }
}

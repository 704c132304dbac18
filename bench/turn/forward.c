/*
 * The ceiling reference for bench/turn: the least a relay on one core does per datagram, with
 * TURN's data plane and nothing else (no allocations, permissions or channels to look up).
 *
 * It listens on 127.0.0.1:PORT like a TURN server, and has one "relayed" socket per client port
 * named on the command line, as an allocation would. ChannelData from client k loses its
 * 4-byte header and leaves relayed socket k for PEER; a datagram from PEER to relayed socket k
 * goes to client k behind the header of channel 0x4000 + k. One recvfrom and one sendto per
 * datagram: no batching, the same system calls per datagram as a relay built on a plain event
 * loop. Like libuv (32 reads per readable UDP handle per loop turn), it reads at most READS_PER_TURN
 * datagrams from a socket before going on to the next readable one: a socket drained until empty
 * is refilled by a fast load as quickly as it is read, and starves the other flows.
 *
 *   forward PORT PEERIP:PEERPORT CLIENTPORT...
 *     prints "ready PORT RELAYEDPORT..." (one relayed port per client port) once bound; runs until killed
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define MAX_CLIENTS 64
#define READS_PER_TURN 32

static int udp_socket(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  /* The same receive buffer StunServer gives natpunch's listening socket. */
  int size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("forward: bind");
    exit(1);
  }
  return fd;
}

static uint16_t local_port(int fd) {
  struct sockaddr_in addr;
  socklen_t len = sizeof addr;
  getsockname(fd, (struct sockaddr *)&addr, &len);
  return ntohs(addr.sin_port);
}

int main(int argc, char **argv) {
  if (argc < 4 || argc - 3 > MAX_CLIENTS) {
    fprintf(stderr, "usage: forward PORT PEERIP:PEERPORT CLIENTPORT... (1-64 clients)\n");
    return 2;
  }
  char peer_ip[64];
  int peer_port;
  struct sockaddr_in peer = { .sin_family = AF_INET };
  if (sscanf(argv[2], "%63[^:]:%d", peer_ip, &peer_port) != 2 || inet_pton(AF_INET, peer_ip, &peer.sin_addr) != 1) {
    fprintf(stderr, "forward: %s: expected IPv4:PORT\n", argv[2]);
    return 2;
  }
  peer.sin_port = htons((uint16_t)peer_port);
  const int n_clients = argc - 3;
  struct sockaddr_in clients[MAX_CLIENTS];
  int relayed[MAX_CLIENTS];
  int ep = epoll_create1(0);
  const int listener = udp_socket((uint16_t)atoi(argv[1]));
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = MAX_CLIENTS };
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  printf("ready %u", local_port(listener));
  for (int k = 0; k < n_clients; k++) {
    clients[k] = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3 + k])) };
    clients[k].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    relayed[k] = udp_socket(0);
    struct epoll_event rev = { .events = EPOLLIN, .data.u32 = (uint32_t)k };
    epoll_ctl(ep, EPOLL_CTL_ADD, relayed[k], &rev);
    printf(" %u", local_port(relayed[k]));
  }
  printf("\n");
  fflush(stdout);

  /* Room for a ChannelData header in front of what a peer sends, so it goes out without a copy. */
  unsigned char buf[4 + 2048];
  struct epoll_event events[MAX_CLIENTS + 1];
  for (;;) {
    int n = epoll_wait(ep, events, MAX_CLIENTS + 1, -1);
    if (n < 0 && errno != EINTR) { perror("forward: epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) {
      const uint32_t k = events[i].data.u32;
      for (int reads = 0; reads < READS_PER_TURN; reads++) {
        struct sockaddr_in from;
        socklen_t from_len = sizeof from;
        if (k == MAX_CLIENTS) {
          ssize_t got = recvfrom(listener, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
          if (got < 0) break;
          for (int c = 0; c < n_clients; c++) {
            if (from.sin_port != clients[c].sin_port || got < 4) continue;
            sendto(relayed[c], buf + 4, (size_t)got - 4, 0, (struct sockaddr *)&peer, sizeof peer);
            break;
          }
        } else {
          ssize_t got = recvfrom(relayed[k], buf + 4, sizeof buf - 4, 0, (struct sockaddr *)&from, &from_len);
          if (got < 0) break;
          if (from.sin_port != peer.sin_port || from.sin_addr.s_addr != peer.sin_addr.s_addr) continue;
          const unsigned channel = 0x4000 + k;
          buf[0] = channel >> 8; buf[1] = channel & 0xff; buf[2] = (unsigned char)(got >> 8); buf[3] = (unsigned char)got;
          sendto(listener, buf, (size_t)got + 4, 0, (struct sockaddr *)&clients[k], sizeof clients[k]);
        }
      }
    }
  }
}

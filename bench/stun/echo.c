/*
 * The ceiling reference for bench/stun: the least a UDP server on one core can do per request.
 * One blocking socket, one recvfrom and one sendto per datagram, no batching (as a STUN server
 * answering one request at a time does). It answers each STUN-looking datagram with itself,
 * its type turned into Binding success (0x0101), so the load generator's checks apply to it
 * unchanged: every byte after the type, transaction id included, is echoed as received.
 *
 *   echo PORT     (0 picks a free port)  — prints "ready PORT" once bound; runs until killed
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: echo PORT\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int size = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
    perror("echo: bind");
    return 1;
  }
  printf("ready %u\n", ntohs(addr.sin_port));
  fflush(stdout);
  unsigned char buf[2048];
  for (;;) {
    struct sockaddr_in from;
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
    if (n < 20 || buf[0] > 1) continue;
    buf[0] = 0x01;
    buf[1] = 0x01;
    sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, from_len);
  }
}
